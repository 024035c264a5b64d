# Stage 1-2: obtain the cube (synthesize or import) and preprocess it.


rule synthesize_cube:
    output:
        f"{RESULTS}/{{dataset}}/cube.nc",
    wildcard_constraints:
        dataset=_alternatives(SYNTHETIC),
    params:
        synthetic=synthetic_params,
    log:
        f"{RESULTS}/logs/synthesize_cube/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/synthesize_cube.py"


rule import_stack:
    input:
        import_sources,
    output:
        f"{RESULTS}/{{dataset}}/cube.nc",
    wildcard_constraints:
        dataset=_alternatives(IMPORTED),
    params:
        options=import_params,
    log:
        f"{RESULTS}/logs/import_stack/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=mem_mb_cube,
        runtime=runtime_min,
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/import_stack.py"


rule preprocess_cube:
    input:
        raw_cube_input,
    output:
        f"{RESULTS}/{{dataset}}/preprocessed.nc",
    params:
        options=preprocess_params,
    log:
        f"{RESULTS}/logs/preprocess_cube/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=mem_mb_cube,
        runtime=runtime_min,
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/preprocess_cube.py"
