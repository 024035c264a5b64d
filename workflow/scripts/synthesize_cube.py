"""synthesize_cube: the paper's synthetic ground truth (xasnmf synth)."""
from xasnmf.workflow import option_args, run_cli, script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    s = dict(snakemake.params.synthetic)  # noqa: F821
    argv = ["synth", "-o", snakemake.output[0], "--shape", *map(str, s.pop("shape"))]  # noqa: F821
    s["domains"] = s.pop("domains")
    run_cli(argv + option_args(s))
