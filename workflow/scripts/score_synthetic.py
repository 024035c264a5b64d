"""score_synthetic: fitted domains and BCV rank against the generator's truth (xasnmf score)."""
from xasnmf.workflow import run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    i, o = snakemake.input, snakemake.output  # noqa: F821
    run_cli(["score", i.fit, "--truth", i.truth, "--bcv", i.bcv, "--json", o.json, "--csv", o.csv])
