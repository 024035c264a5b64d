"""preprocess_cube: ROI, binning, normalization, masks, reference spectrum (xasnmf preprocess)."""
from xasnmf.workflow import option_args, run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    run_cli(["preprocess", snakemake.input[0], "-o", snakemake.output[0]]  # noqa: F821
            + option_args(dict(snakemake.params.options)))  # noqa: F821
