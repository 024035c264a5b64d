# Stage 4: the modified ONMF at the chosen rank, best of several starts.


rule fit_onmf:
    input:
        cube=f"{RESULTS}/{{dataset}}/preprocessed.nc",
        rank=f"{RESULTS}/{{dataset}}/rank.json",
    output:
        f"{RESULTS}/{{dataset}}/onmf.nc",
    params:
        fit=fit_params,
    log:
        f"{RESULTS}/logs/fit_onmf/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_onmf/{{dataset}}.tsv"
    threads: config["threads"]["fit_onmf"]
    resources:
        mem_mb=mem_mb_cube,
        runtime=runtime_min,
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/fit_onmf.py"
