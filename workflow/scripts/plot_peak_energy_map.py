"""plot_peak_energy_map: peak-top-energy map of the whole stack with the ROI (the paper's Fig. 1)."""
import xarray as xr

from xasnmf.figures import fig_peak_energy_map, save_figure
from xasnmf.io._common import parse_roi
from xasnmf.workflow import script_context

with script_context(snakemake):  # noqa: F821 - injected by Snakemake
    p = snakemake.params.figure  # noqa: F821
    roi = parse_roi(p["roi"]) if p.get("roi") else None
    fig = fig_peak_energy_map(xr.load_dataset(snakemake.input[0]), roi=roi, title=p["dataset"])  # noqa: F821
    save_figure(fig, snakemake.output.png, snakemake.output.pdf)  # noqa: F821
