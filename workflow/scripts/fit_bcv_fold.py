"""fit_bcv_fold: one (rank, seed, fold) bi-cross-validation trial (xasnmf bcv-job)."""
from xasnmf.workflow import option_args, run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    b = snakemake.params.bcv  # noqa: F821
    w = snakemake.wildcards  # noqa: F821
    opts = {k: b[k] for k in ("method", "nuisance", "init", "restarts", "max_iter", "tol", "dtype") if k in b}
    run_cli(["bcv-job", snakemake.input[0], "--rank", w.rank, "--seed", w.seed, "--fold", w.fold,  # noqa: F821
             "--folds", b["folds"], "-o", snakemake.output[0]] + option_args(opts))  # noqa: F821
