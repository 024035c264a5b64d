"""plot_bcv_domains: BCV curve, domain maps and spectra (the paper's Fig. 3/4/5 layout)."""
import xarray as xr

from xasnmf.figures import fig_bcv_domains, save_figure
from xasnmf.workflow import script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    i, o = snakemake.input, snakemake.output  # noqa: F821
    fig = fig_bcv_domains(xr.load_dataset(i.bcv), xr.load_dataset(i.fit), prefix="A",
                          title=snakemake.params.figure["dataset"])  # noqa: F821
    save_figure(fig, o.png, o.pdf)
