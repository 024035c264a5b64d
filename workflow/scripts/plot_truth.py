"""plot_truth: the synthetic ground truth, domains g1..gk and spectra (the paper's Fig. 2)."""
import xarray as xr

from xasnmf.figures import fig_truth, save_figure
from xasnmf.workflow import script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    save_figure(fig_truth(xr.load_dataset(snakemake.input[0])), snakemake.output.png,  # noqa: F821
                snakemake.output.pdf)  # noqa: F821
