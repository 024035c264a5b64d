"""peak_energy: per-pixel peak-top energy by a Gaussian fit of the white line (xasnmf peak)."""
from xasnmf.workflow import run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    c = snakemake.params.compare  # noqa: F821
    argv = ["peak", snakemake.input[0], "--window", c.get("peak_window", 0.5), "-o", snakemake.output[0]]  # noqa: F821
    if c.get("peak_energy_range"):
        argv += ["--energy-range", *c["peak_energy_range"]]
    run_cli(argv)
