"""threshold_classes: Table II, peak-top-energy classes D1-D3 vs ONMF domains (xasnmf classes)."""
from xasnmf.workflow import run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    c = snakemake.params.compare  # noqa: F821
    argv = ["classes", snakemake.input.pte, snakemake.input.fit, "--grid", c.get("class_grid", 200),  # noqa: F821
            "-o", snakemake.output.csv]  # noqa: F821
    if c.get("classes_distinct", False):
        argv.append("--distinct")
    run_cli(argv)
