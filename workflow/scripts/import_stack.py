"""import_stack: read a beamline stack into the canonical cube (xasnmf import)."""
from xasnmf.workflow import option_args, run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    opts = dict(snakemake.params.options)  # noqa: F821
    path = opts.pop("path")
    opts.setdefault("region", 0)
    run_cli(["import", path, "-o", snakemake.output[0]] + option_args(opts))  # noqa: F821
