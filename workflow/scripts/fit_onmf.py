"""fit_onmf: modified ONMF at the chosen rank, best of several starts (xasnmf fit)."""
from xasnmf.workflow import option_args, read_rank, run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    f = snakemake.params.fit  # noqa: F821
    opts = {k: f[k] for k in ("restarts", "init", "seed", "max_iter", "tol", "dtype", "nuisance") if k in f}
    run_cli(["fit", snakemake.input.cube, "--rank", read_rank(snakemake.input.rank),  # noqa: F821
             "-o", snakemake.output[0]] + option_args(opts))  # noqa: F821
