# Stage 5: the checks: k-means (Table I), peak-top-energy classes (Tables II, III), synthetic score.


rule kmeans_domains:
    input:
        cube=f"{RESULTS}/{{dataset}}/preprocessed.nc",
        rank=f"{RESULTS}/{{dataset}}/rank.json",
    output:
        f"{RESULTS}/{{dataset}}/kmeans.nc",
    params:
        compare=compare_params,
    log:
        f"{RESULTS}/logs/kmeans_domains/{{dataset}}.log",
    threads: config["threads"]["kmeans_domains"]
    resources:
        mem_mb=mem_mb_cube,
        runtime=runtime_min,
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/kmeans_domains.py"


rule peak_energy:
    input:
        f"{RESULTS}/{{dataset}}/{{stage}}.nc",
    output:
        f"{RESULTS}/{{dataset}}/peak/{{stage}}.nc",
    wildcard_constraints:
        stage="cube|preprocessed",
    params:
        compare=compare_params,
    log:
        f"{RESULTS}/logs/peak_energy/{{dataset}}-{{stage}}.log",
    threads: 1
    resources:
        mem_mb=mem_mb_cube,
        runtime=runtime_min,
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/peak_energy.py"


rule compare_kmeans:
    input:
        fit=f"{RESULTS}/{{dataset}}/onmf.nc",
        kmeans=f"{RESULTS}/{{dataset}}/kmeans.nc",
    output:
        csv=report(f"{RESULTS}/{{dataset}}/tables/table1_kmeans.csv", category="{dataset}",
                   subcategory="tables", caption="../report/table1.rst"),
        md=f"{RESULTS}/{{dataset}}/tables/table1_kmeans.md",
        tex=f"{RESULTS}/{{dataset}}/tables/table1_kmeans.tex",
        nc=f"{RESULTS}/{{dataset}}/tables/table1_kmeans.nc",
    log:
        f"{RESULTS}/logs/compare_kmeans/{{dataset}}.log",
    threads: 1
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/compare_kmeans.py"


rule threshold_classes:
    input:
        pte=f"{RESULTS}/{{dataset}}/peak/preprocessed.nc",
        fit=f"{RESULTS}/{{dataset}}/onmf.nc",
    output:
        csv=report(f"{RESULTS}/{{dataset}}/tables/table2_classes.csv", category="{dataset}",
                   subcategory="tables", caption="../report/table2.rst"),
        md=f"{RESULTS}/{{dataset}}/tables/table2_classes.md",
        tex=f"{RESULTS}/{{dataset}}/tables/table2_classes.tex",
        nc=f"{RESULTS}/{{dataset}}/tables/table2_classes.nc",
    params:
        compare=compare_params,
    log:
        f"{RESULTS}/logs/threshold_classes/{{dataset}}.log",
    threads: 1
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/threshold_classes.py"


rule domain_peak_energy:
    input:
        fit=f"{RESULTS}/{{dataset}}/onmf.nc",
        classes=f"{RESULTS}/{{dataset}}/tables/table2_classes.nc",
    output:
        csv=report(f"{RESULTS}/{{dataset}}/tables/table3_domain_peaks.csv", category="{dataset}",
                   subcategory="tables", caption="../report/table3.rst"),
        md=f"{RESULTS}/{{dataset}}/tables/table3_domain_peaks.md",
        tex=f"{RESULTS}/{{dataset}}/tables/table3_domain_peaks.tex",
    log:
        f"{RESULTS}/logs/domain_peak_energy/{{dataset}}.log",
    threads: 1
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/domain_peak_energy.py"


rule score_synthetic:
    input:
        fit=f"{RESULTS}/{{dataset}}/onmf.nc",
        truth=f"{RESULTS}/{{dataset}}/cube.nc",
        bcv=f"{RESULTS}/{{dataset}}/bcv.nc",
    output:
        json=report(f"{RESULTS}/{{dataset}}/score.json", category="{dataset}", subcategory="tables",
                    caption="../report/score.rst"),
        csv=f"{RESULTS}/{{dataset}}/score.csv",
    wildcard_constraints:
        dataset=_alternatives(SYNTHETIC),
    log:
        f"{RESULTS}/logs/score_synthetic/{{dataset}}.log",
    threads: 1
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/score_synthetic.py"
