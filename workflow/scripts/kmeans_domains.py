"""kmeans_domains: k-means clusters with k = the chosen rank (xasnmf kmeans)."""
from xasnmf.workflow import read_rank, run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    c = snakemake.params.compare  # noqa: F821
    run_cli(["kmeans", snakemake.input.cube, "--k", read_rank(snakemake.input.rank),  # noqa: F821
             "--seed", c.get("kmeans_seed", 0), "--n-init", c.get("kmeans_n_init", 10),
             "-o", snakemake.output[0]])  # noqa: F821
