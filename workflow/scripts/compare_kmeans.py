"""compare_kmeans: Table I, cosines of ONMF domains and k-means clusters (xasnmf compare)."""
from xasnmf.workflow import run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    run_cli(["compare", snakemake.input.fit, snakemake.input.kmeans, "-o", snakemake.output.csv])  # noqa: F821
