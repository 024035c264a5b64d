# Stage 3: bi-cross-validation, one job per (rank, seed, fold), then collection and rank choice.


rule fit_bcv_fold:
    input:
        f"{RESULTS}/{{dataset}}/preprocessed.nc",
    output:
        f"{RESULTS}/{{dataset}}/bcv/rank-{{rank}}/seed-{{seed}}/fold-{{fold}}.nc",
    params:
        bcv=bcv_params,
    log:
        f"{RESULTS}/logs/fit_bcv_fold/{{dataset}}/rank-{{rank}}/seed-{{seed}}/fold-{{fold}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_bcv_fold/{{dataset}}/rank-{{rank}}/seed-{{seed}}/fold-{{fold}}.tsv"
    threads: 1
    resources:
        mem_mb=mem_mb_cube,
        runtime=runtime_min,
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/fit_bcv_fold.py"


rule collect_bcv:
    input:
        bcv_job_files,
    output:
        report(f"{RESULTS}/{{dataset}}/bcv.nc", category="{dataset}", subcategory="data",
               caption="../report/bcv.rst"),
    params:
        bcv=bcv_params,
    log:
        f"{RESULTS}/logs/collect_bcv/{{dataset}}.log",
    threads: 1
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/collect_bcv.py"


rule select_rank:
    input:
        f"{RESULTS}/{{dataset}}/bcv.nc",
    output:
        f"{RESULTS}/{{dataset}}/rank.json",
    params:
        pinned=pinned_rank,
        fit=fit_params,
    log:
        f"{RESULTS}/logs/select_rank/{{dataset}}.log",
    threads: 1
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/select_rank.py"
