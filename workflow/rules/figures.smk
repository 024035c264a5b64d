# Stage 6: figures (PNG for the report, PDF for papers). Cheap: run on the submitting host.


localrules:
    collect_bcv,
    select_rank,
    compare_kmeans,
    threshold_classes,
    domain_peak_energy,
    score_synthetic,
    plot_bcv_domains,
    plot_truth,
    plot_kmeans,
    plot_peak_energy_map,
    plot_classes,


rule plot_bcv_domains:
    input:
        bcv=f"{RESULTS}/{{dataset}}/bcv.nc",
        fit=f"{RESULTS}/{{dataset}}/onmf.nc",
    output:
        png=report(f"{RESULTS}/{{dataset}}/figures/bcv_domains.png", category="{dataset}",
                   subcategory="figures", caption="../report/fig_bcv_domains.rst"),
        pdf=f"{RESULTS}/{{dataset}}/figures/bcv_domains.pdf",
    params:
        figure=figure_params,
    log:
        f"{RESULTS}/logs/plot_bcv_domains/{{dataset}}.log",
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/plot_bcv_domains.py"


rule plot_truth:
    input:
        f"{RESULTS}/{{dataset}}/cube.nc",
    output:
        png=report(f"{RESULTS}/{{dataset}}/figures/truth.png", category="{dataset}", subcategory="figures",
                   caption="../report/fig_truth.rst"),
        pdf=f"{RESULTS}/{{dataset}}/figures/truth.pdf",
    wildcard_constraints:
        dataset=_alternatives(SYNTHETIC),
    log:
        f"{RESULTS}/logs/plot_truth/{{dataset}}.log",
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/plot_truth.py"


rule plot_kmeans:
    input:
        f"{RESULTS}/{{dataset}}/kmeans.nc",
    output:
        png=report(f"{RESULTS}/{{dataset}}/figures/kmeans.png", category="{dataset}", subcategory="figures",
                   caption="../report/fig_kmeans.rst"),
        pdf=f"{RESULTS}/{{dataset}}/figures/kmeans.pdf",
    log:
        f"{RESULTS}/logs/plot_kmeans/{{dataset}}.log",
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/plot_kmeans.py"


rule plot_peak_energy_map:
    input:
        fig1_input,
    output:
        png=report(f"{RESULTS}/{{dataset}}/figures/peak_energy_map.png", category="{dataset}",
                   subcategory="figures", caption="../report/fig_peak_energy_map.rst"),
        pdf=f"{RESULTS}/{{dataset}}/figures/peak_energy_map.pdf",
    params:
        figure=figure_params,
    log:
        f"{RESULTS}/logs/plot_peak_energy_map/{{dataset}}.log",
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/plot_peak_energy_map.py"


rule plot_classes:
    input:
        pte=f"{RESULTS}/{{dataset}}/peak/preprocessed.nc",
        classes=f"{RESULTS}/{{dataset}}/tables/table2_classes.nc",
        fit=f"{RESULTS}/{{dataset}}/onmf.nc",
    output:
        png=report(f"{RESULTS}/{{dataset}}/figures/classes.png", category="{dataset}", subcategory="figures",
                   caption="../report/fig_classes.rst"),
        pdf=f"{RESULTS}/{{dataset}}/figures/classes.pdf",
    log:
        f"{RESULTS}/logs/plot_classes/{{dataset}}.log",
    conda:
        "../../envs/xasnmf.yaml"
    script:
        "../scripts/plot_classes.py"
