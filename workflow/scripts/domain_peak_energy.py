"""domain_peak_energy: Table III, peak-top energy of each ONMF domain spectrum (xasnmf domain-peaks)."""
from xasnmf.workflow import run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    run_cli(["domain-peaks", snakemake.input.fit, "--classes", snakemake.input.classes,  # noqa: F821
             "-o", snakemake.output.csv])  # noqa: F821
