"""plot_classes: PTE map, classes D1-D3 and their matched ONMF domains (the paper's Fig. 7)."""
import xarray as xr

from xasnmf.figures import fig_classes, save_figure
from xasnmf.workflow import script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    i = snakemake.input  # noqa: F821
    fig = fig_classes(xr.load_dataset(i.pte), xr.load_dataset(i.classes), xr.load_dataset(i.fit))
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
