"""collect_bcv: all trials of a dataset into one BCV result (xasnmf bcv-collect)."""
from xasnmf.workflow import option_args, run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    b = snakemake.params.bcv  # noqa: F821
    opts = {k: b[k] for k in ("outlier_rule", "outlier_k") if k in b}
    run_cli(["bcv-collect", *snakemake.input, "-o", snakemake.output[0]] + option_args(opts))  # noqa: F821
