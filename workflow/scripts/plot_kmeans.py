"""plot_kmeans: k-means domains and centroid spectra (the paper's Fig. 6)."""
import xarray as xr

from xasnmf.figures import fig_kmeans, save_figure
from xasnmf.workflow import script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    save_figure(fig_kmeans(xr.load_dataset(snakemake.input[0]), prefix="C"), snakemake.output.png,  # noqa: F821
                snakemake.output.pdf)  # noqa: F821
