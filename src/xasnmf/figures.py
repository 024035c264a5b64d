"""Publication figures of Tanimoto et al. (2020), Figs. 1-7, from the xasnmf NetCDF outputs.

Every ``fig_*`` function takes the xarray Datasets the pipeline writes and
returns a :class:`matplotlib.figure.Figure` (nothing is shown or saved);
:func:`save_figure` writes it as PNG (150 dpi) and/or PDF, atomically, and
closes it.  The workflow's figure rules call::

    fig = fig_bcv_domains(xr.open_dataset("bcv.nc"), xr.open_dataset("fit.nc"), prefix="B")
    save_figure(fig, "fig4.png", "fig4.pdf")

=====================  ====================================================
function               paper figure
=====================  ====================================================
fig_peak_energy_map    Fig. 1: peak-top-energy map, ROI rectangle in red
fig_truth              Fig. 2: ground-truth domains g1..gk and spectra
fig_bcv_domains        Figs. 3-5: (A) BCV error vs rank, (B) domains, (C) spectra
fig_kmeans             Fig. 6: k-means domains C1..Ck and centroid spectra
fig_classes            Fig. 7: PTE map, classes D1-D3 and matched ONMF domains
=====================  ====================================================

Conventions shared by all figures (one style, :data:`STYLE`, applied with
:func:`matplotlib.rc_context`):

* Maps are drawn in the coordinates of the dataset (``x``, ``y``), row 0 at
  the top, with equal aspect (so non-square pixels keep their true shape).
  When ``x`` has ``units = "um"`` the ticks are dropped and a scale bar
  (a round length of about 20 % of the width, labelled in µm) is drawn on the
  first map of each group; otherwise the axes carry pixel ticks.
* Colour maps survive greyscale: ``viridis`` for domain weights and class
  membership, ``cividis`` for energies.  Masked / unfitted pixels (NaN) are a
  neutral light grey (:data:`MASKED_COLOR`), hatched, so that in greyscale they
  cannot be mistaken for the light end of a colour map.
* Domain maps are scaled by their own 99th percentile of the non-zero pixels
  (``W / W_99``, clipped at 1, one shared colour bar with an arrow when values
  are clipped), since ONMF columns have arbitrary scale and a few hot pixels
  would otherwise darken a whole map.
* Spectra differ in line style *and* marker (:func:`line_styles`), so they
  can be told apart in greyscale; energy axes read "Energy (eV)".
* The peak-top-energy colour range is the 1st-99th percentile of the fitted
  pixels (a few failed fits do not wash out the map); the colour bar shows
  arrows where values are clipped.

* Layout is computed in inches (no layout engine): the map grid (rows x
  columns, :func:`choose_grid`) is the one that makes the maps largest for the
  image aspect and the space available, never narrower than the map titles;
  gaps leave room for pixel tick labels, so no text overlaps (the tests draw
  every figure and check).  Fig. 7 stacks (A) over (B) for wide images.

All options are keyword-only.  Works for 1 to ~12 components, non-square
images and masked (NaN) pixels.  Figures are pyplot-free (an Agg canvas), so
they need no display and leak nothing if not closed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .provenance import atomic_path

__all__ = [
    "STYLE", "MASKED_COLOR", "fig_peak_energy_map", "fig_truth", "fig_bcv_domains", "fig_kmeans",
    "fig_classes", "save_figure", "line_styles", "nice_length", "choose_grid", "WEIGHT_QUANTILE",
]

#: Colour of masked / unfitted pixels (also hatched with MASKED_HATCH, see _imshow).
MASKED_COLOR = "#d4d4d4"
MASKED_HATCH = "#8c8c8c"
HATCH = "////"

#: The one style of every figure (applied with ``matplotlib.rc_context``).
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "legend.handlelength": 2.6,
    "figure.titlesize": 9,
    "axes.linewidth": 0.6,
    "axes.titlepad": 3.0,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.major.pad": 2.0,
    "ytick.major.pad": 2.0,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.5,
    "image.cmap": "viridis",
    "image.origin": "upper",
    "mathtext.default": "regular",
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "hatch.linewidth": 0.5,
}

MAP_CMAP = "viridis"
ENERGY_CMAP = "cividis"
ROI_COLOR = "red"
FIG_WIDTH = 7.2            # in, a two-column figure
_LINESTYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "v", "D", "x", "+", "*", "<", ">", "p", "h")
_UM_UNITS = {"um", "µm", "μm", "micron", "microns", "micrometer", "micrometre", "micrometers",
             "micrometres"}


def _styled(func):
    """Build the figure inside the module style."""
    import matplotlib

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------------------------
# geometry, colours, small helpers
# ----------------------------------------------------------------------------------------------

@dataclass
class _Geom:
    """Where a (y, x) map lies in its own coordinates."""

    ny: int
    nx: int
    extent: tuple[float, float, float, float]   # left, right, bottom, top (imshow, origin upper)
    um: bool
    width: float                                # |right - left|, in coordinate units
    height: float

    @property
    def aspect(self) -> float:
        """Displayed height / width."""
        return self.height / self.width if self.width > 0 else 1.0

    def index_to_data(self, axis: str, i0: int, i1: int) -> tuple[float, float]:
        """Edges (data coordinates) of the pixel index range ``i0:i1`` (end-exclusive)."""
        if axis == "x":
            a, b = self.extent[0], self.extent[1]
            n = self.nx
        else:
            a, b = self.extent[3], self.extent[2]      # top edge is row 0
            n = self.ny
        step = (b - a) / n
        return a + i0 * step, a + i1 * step


def _step(c: np.ndarray) -> float:
    d = np.diff(c)
    d = d[np.isfinite(d) & (d != 0)]
    return float(np.median(d)) if d.size else 1.0


def _geom(ds, name: str = "map") -> _Geom:
    """Geometry of the (y, x) grid of ``ds``."""
    for c in ("y", "x"):
        if c not in ds.coords and c not in ds.dims:
            raise InputError(f"no '{c}' coordinate", source=name, fix="use a file written by xasnmf")
    ny, nx = int(ds.sizes["y"]), int(ds.sizes["x"])
    ux = str(ds["x"].attrs.get("units", "pixel")).strip().lower() if "x" in ds.coords else "pixel"
    uy = str(ds["y"].attrs.get("units", "pixel")).strip().lower() if "y" in ds.coords else "pixel"
    if "x" in ds.coords and "y" in ds.coords:
        x = np.asarray(ds["x"].values, dtype=np.float64)
        y = np.asarray(ds["y"].values, dtype=np.float64)
    else:
        x, y = np.arange(nx, dtype=np.float64), np.arange(ny, dtype=np.float64)
    um = ux in _UM_UNITS
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        x, y, um = np.arange(nx, dtype=np.float64), np.arange(ny, dtype=np.float64), False
    if um and uy not in _UM_UNITS:      # mixed units: no physical aspect, fall back to pixels
        x, y, um = np.arange(nx, dtype=np.float64), np.arange(ny, dtype=np.float64), False
    sx, sy = _step(x), _step(y)
    left, right = x[0] - sx / 2, x[0] + sx * (nx - 0.5)
    top, bottom = y[0] - sy / 2, y[0] + sy * (ny - 0.5)
    return _Geom(ny=ny, nx=nx, extent=(left, right, bottom, top), um=um,
                 width=abs(right - left), height=abs(bottom - top))


def nice_length(target: float) -> float:
    """Largest 1, 2 or 5 x 10^k not above ``target`` (> 0)."""
    if not (np.isfinite(target) and target > 0):
        raise ValueError(f"target length must be positive, got {target!r}")
    p = 10.0 ** math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * p <= target * (1 + 1e-9):
            return m * p
    return p  # pragma: no cover


def _fmt_len(v: float) -> str:
    return f"{v:g}"


def _scale_bar(ax, geom: _Geom):
    """A bar of a round length (~20 % of the width) with its label in µm, lower right."""
    import matplotlib.patheffects as pe

    length = nice_length(0.2 * geom.width)
    x0, x1 = ax.get_xlim()
    yb, yt = ax.get_ylim()            # (bottom, top) as displayed
    sx = 1.0 if x1 >= x0 else -1.0
    xe = x1 - 0.05 * (x1 - x0)
    xs = xe - sx * length
    yy = yb + 0.07 * (yt - yb)
    halo = [pe.Stroke(linewidth=3.4, foreground="black"), pe.Normal()]
    line, = ax.plot([xs, xe], [yy, yy], color="white", lw=2.2, solid_capstyle="butt",
                    path_effects=halo, gid="scalebar", zorder=5)
    txt = ax.text((xs + xe) / 2, yy + 0.035 * (yt - yb), f"{_fmt_len(length)} µm", color="white",
                  ha="center", va="bottom", fontsize=7, gid="scalebar_label", zorder=5,
                  path_effects=[pe.withStroke(linewidth=1.8, foreground="black")])
    ax.set_xlim(x0, x1)
    ax.set_ylim(yb, yt)
    return line, txt


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=MASKED_COLOR)


def _binary_cmap():
    from matplotlib.colors import ListedColormap

    v = _cmap(MAP_CMAP)
    return ListedColormap([v(0.0), v(1.0)], name="member").with_extremes(bad=MASKED_COLOR)


def line_styles(n: int) -> list[dict]:
    """Matplotlib line keyword sets, distinct in colour, line style and marker (greyscale-safe)."""
    import matplotlib

    colors = matplotlib.colormaps["tab10"].colors
    out = []
    for i in range(n):
        out.append({"color": colors[i % len(colors)], "linestyle": _LINESTYLES[i % len(_LINESTYLES)],
                    "marker": _MARKERS[i % len(_MARKERS)]})
    return out


def _imshow(ax, data, geom: _Geom, *, cmap, norm=None, vmin=None, vmax=None):
    """The map, NaN pixels light grey and hatched (so they stay apart from every colour in greyscale)."""
    a = np.asarray(data, dtype=np.float64)
    interp = "nearest" if max(geom.ny, geom.nx) <= 800 else "antialiased"
    im = ax.imshow(np.ma.masked_invalid(a), cmap=cmap, norm=norm,
                   vmin=vmin, vmax=vmax, extent=geom.extent, origin="upper", interpolation=interp,
                   aspect="equal")
    _hatch_nan(ax, ~np.isfinite(a), geom)
    return im


def _hatch_nan(ax, bad: np.ndarray, geom: _Geom):
    """Hatch the pixels where ``bad`` (one rectangle per run of bad pixels in a row)."""
    if not bad.any():
        return None
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MPath

    x0, y0 = geom.extent[0], geom.extent[3]
    sx = (geom.extent[1] - geom.extent[0]) / geom.nx
    sy = (geom.extent[2] - geom.extent[3]) / geom.ny
    d = np.diff(np.pad(bad.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rs, c0 = np.nonzero(d == 1)                 # run starts and ends, both in row-major order: they pair up
    _, c1 = np.nonzero(d == -1)
    xa, xb = x0 + c0 * sx, x0 + c1 * sx
    ya, yb = y0 + rs * sy, y0 + (rs + 1) * sy
    verts = np.stack([np.stack([xa, ya], 1), np.stack([xb, ya], 1), np.stack([xb, yb], 1),
                      np.stack([xa, yb], 1), np.stack([xa, ya], 1)], axis=1).reshape(-1, 2)
    codes = np.tile(np.array([MPath.MOVETO, MPath.LINETO, MPath.LINETO, MPath.LINETO, MPath.CLOSEPOLY],
                             dtype=MPath.code_type), rs.size)
    patch = PathPatch(MPath(verts, codes), facecolor="none", edgecolor=MASKED_HATCH, hatch=HATCH, lw=0.0,
                      gid="masked_hatch", zorder=2)
    ax.add_artist(patch)          # not add_patch: the limits are the image's, and that would walk every segment
    return patch


def _style_map_axes(ax, geom: _Geom, *, xlabels: bool = True, ylabels: bool = True,
                    axis_titles: bool = True, scalebar: bool = False):
    from matplotlib.ticker import MaxNLocator

    if geom.um:
        ax.set_xticks([])
        ax.set_yticks([])
        if scalebar:
            _scale_bar(ax, geom)
        return
    pos = ax.get_position()
    w_in, h_in = pos.width * ax.figure.get_figwidth(), pos.height * ax.figure.get_figheight()
    for axis, size in ((ax.xaxis, w_in), (ax.yaxis, h_in)):   # about one label per 0.3 in
        nb = max(1, min(3, int(size / 0.3)))
        axis.set_major_locator(MaxNLocator(nbins=nb, integer=True, min_n_ticks=1 if size < 0.6 else 2))
    if not xlabels:
        ax.tick_params(labelbottom=False)
    if not ylabels:
        ax.tick_params(labelleft=False)
    if axis_titles:
        if xlabels:
            ax.set_xlabel("x (pixel)", labelpad=1)
        if ylabels:
            ax.set_ylabel("y (pixel)", labelpad=1)


def _labels(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i + 1}" for i in range(n)]


#: Domain maps are shown as W / (this percentile of W over the map's non-zero pixels), clipped at 1.
WEIGHT_QUANTILE = 99.0
WEIGHT_LABEL = "W / W$_{99}$"


def _relative(maps: np.ndarray, q: float = WEIGHT_QUANTILE) -> tuple[np.ndarray, list[bool], bool]:
    """Each map divided by the ``q``-th percentile of its positive values (its maximum if that is 0).

    A few hot pixels then do not darken the whole map.  Returns the scaled maps, which maps are
    zero (or NaN) everywhere, and whether any value exceeds 1 (drawn in the top colour).
    """
    out = np.array(maps, dtype=np.float64, copy=True)
    empty = []
    for i in range(out.shape[0]):
        v = out[i][np.isfinite(out[i]) & (out[i] > 0)]
        scale = float(np.percentile(v, q)) if v.size else 0.0
        if not scale > 0 and v.size:
            scale = float(v.max())
        if scale > 0:
            out[i] /= scale
            empty.append(False)
        else:
            empty.append(True)
    with np.errstate(invalid="ignore"):
        clipped = bool(np.nanmax(out, initial=0.0) > 1.0 + 1e-9) if np.isfinite(out).any() else False
    return out, empty, clipped


def _plot_spectra(ax, energy, spectra, labels, *, ylabel: str, legend_ncol: int, legend_y: float):
    """Spectra vs energy, distinct line style + marker each; legend below the axes at ``legend_y`` (axes fraction)."""
    from matplotlib.ticker import MaxNLocator

    n = len(labels)
    sty = line_styles(n)
    ne = energy.size
    step = max(1, ne // 8)
    lines = []
    for i in range(n):
        y = np.asarray(spectra[i], dtype=np.float64)
        if not np.isfinite(y).any():
            continue
        open_marker = sty[i]["marker"] not in ("x", "+")
        ln, = ax.plot(energy, y, label=labels[i], markevery=slice((i * step) // max(n, 1) % step, None, step),
                      markerfacecolor="white" if open_marker else None, markeredgewidth=0.8, lw=1.0, ms=3.5,
                      **sty[i])
        ln.set_gid(f"spectrum:{labels[i]}")
        lines.append(ln)
    ax.set_xlabel("Energy (eV)", labelpad=2)
    ax.set_ylabel(ylabel, labelpad=2)
    ax.set_xlim(float(energy[0]), float(energy[-1]))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    _no_offset(ax.xaxis)
    if lines:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, legend_y), ncol=legend_ncol, columnspacing=1.0,
                  handletextpad=0.4, borderaxespad=0.0, handlelength=2.8)
    return lines


def _no_offset(axis):
    from matplotlib.ticker import ScalarFormatter

    f = ScalarFormatter(useOffset=False)
    f.set_scientific(False)
    axis.set_major_formatter(f)


def _check_var(ds, name: str, dims: tuple[str, ...], what: str):
    if name not in ds:
        raise InputError(f"no variable '{name}'", source=what, fix=f"pass the {what} dataset written by xasnmf")
    if tuple(ds[name].dims) != dims:
        raise InputError(f"'{name}' has dimensions {tuple(ds[name].dims)}, expected {dims}", source=what)
    return ds[name]


def _robust_limits(v: np.ndarray, lo_q: float = 1.0, hi_q: float = 99.0) -> tuple[float, float, str]:
    f = v[np.isfinite(v)]
    if f.size == 0:
        return 0.0, 1.0, "neither"
    lo, hi = (float(t) for t in np.percentile(f, [lo_q, hi_q]))
    if not hi > lo:
        lo, hi = float(f.min()), float(f.max())
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    ext = {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}
    return lo, hi, ext[(bool(f.min() < lo), bool(f.max() > hi))]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A pyplot-free Figure on an Agg canvas: no GUI backend is touched and nothing is
    # registered with pyplot, so nothing leaks if a caller forgets to close it.
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


# ----------------------------------------------------------------------------------------------
# layout: every position is computed in inches, so labels cannot overlap
# ----------------------------------------------------------------------------------------------

TITLE_H = 0.22      # one-line title above each map
TITLE_PAD = 4.5     # pt between a map and its title (clears the top y tick label)
TITLE2_H = 0.36     # two-line title
GX = 0.08           # gap between map columns (um: no tick labels)
GX_PIX = 0.2        # ... with pixel tick labels, which must not meet the neighbour's
GY = 0.05           # gap between a map and the title of the map below it
PIX_L = 0.46        # left band of pixel tick labels and "y (pixel)"
PIX_B = 0.36        # bottom band of pixel tick labels and "x (pixel)"
UM_L = 0.04
UM_B = 0.04
CB_GAP = 0.08
CB_W = 0.10
CB_LAB = 0.50       # colour-bar tick labels and label (0-1 scale)
CB_LAB_E = 0.80     # ... for energies ("7730.3")
HEAD_H = 0.24       # panel header "(B)  Domains ..."
AX_L = 0.56         # left band of a line plot (tick labels and y label)
AX_B = 0.34         # bottom band of a line plot (tick labels and x label)
LEG_ROW = 0.145     # one legend row
PW_MAX = 2.4        # largest map in a grid (in)
TOP = 0.04


class _Page:
    """A figure whose axes are placed in inches from its top-left corner."""

    def __init__(self, width: float, height: float):
        self.w, self.h = float(width), float(height)
        self.fig = _figure(self.w, self.h)

    def axes(self, x, top, w, h, **kw):
        return self.fig.add_axes((x / self.w, 1 - (top + h) / self.h, w / self.w, h / self.h), **kw)

    def header(self, x, top, letter, text=None):
        self.fig.text(x / self.w, 1 - top / self.h, f"({letter})", ha="left", va="top", fontweight="bold",
                      fontsize=8, gid="panel_letter")
        if text:
            self.fig.text((x + 0.3) / self.w, 1 - top / self.h, text, ha="left", va="top", fontsize=8)


@dataclass
class _GridPlan:
    n: int
    nr: int
    nc: int
    pw: float
    ph: float
    lb: float
    bb: float
    title_h: float
    cb_band: float
    gx: float = GX

    @property
    def width(self) -> float:
        return self.lb + self.nc * self.pw + (self.nc - 1) * self.gx + self.cb_band

    @property
    def height(self) -> float:
        return self.nr * (self.title_h + self.ph) + (self.nr - 1) * GY + self.bb


def choose_grid(n: int, aspect: float, avail_w: float, max_h: float, *, um: bool = False,
                title_h: float = TITLE_H, cb_band: float = CB_GAP + CB_W + CB_LAB,
                pw_max: float = PW_MAX, min_pw: float = 0.0) -> _GridPlan:
    """The grid (rows, columns, map size) that makes ``n`` maps of height/width ``aspect`` largest.

    The grid must fit ``avail_w`` x ``max_h`` inches including titles, tick bands and the colour
    bar; grids whose maps are narrower than ``min_pw`` (the width of their titles) come last, even
    if that makes the grid taller than ``max_h``; ties go to fewer empty cells, then fewer rows.
    """
    if n < 1:
        raise ValueError("need at least one map")
    lb, bb = (UM_L, UM_B) if um else (PIX_L, PIX_B)
    gx = GX if um else GX_PIX
    best = None
    for nc in range(1, n + 1):
        nr = math.ceil(n / nc)
        if nc > 1 and math.ceil(n / (nc - 1)) == nr:
            continue                            # same rows with one column less is never worse
        pw_w = (avail_w - lb - cb_band - (nc - 1) * gx) / nc
        pw_h = ((max_h - bb - (nr - 1) * GY) / nr - title_h) / aspect
        pw = min(pw_w, pw_h, pw_max)
        if pw < min_pw <= pw_w:                 # titles would collide: take the width, grow taller
            pw = min(min_pw, pw_max)
            key = (0, round(-nr * pw * aspect, 2), -(nr * nc - n))
        else:
            key = (1 if pw >= min_pw else -1, round(pw, 2), -(nr * nc - n), -nr)
        if best is None or key > best[0]:
            best = (key, nr, nc, pw)
    _, nr, nc, pw = best
    pw = max(pw, 0.15)
    return _GridPlan(n=n, nr=nr, nc=nc, pw=pw, ph=pw * aspect, lb=lb, bb=bb, title_h=title_h, cb_band=cb_band,
                     gx=gx)


def _text_w(text: str, fontsize: float) -> float:
    """Rough width (in) of a one-line text in DejaVu Sans (0.58 em per character, a little generous)."""
    return 0.58 * len(text) * fontsize / 72.0 + 0.04


def _fit_font(text: str, width: float, fontsize: float = 7.0) -> float:
    """Largest font size (<= ``fontsize``, >= 5) at which every line of ``text`` fits ``width`` in."""
    import re

    plain = [re.sub(r"\$|_\{|\}|\\", "", line) for line in text.split("\n")]
    need = max(_text_w(line, fontsize) for line in plain) - 0.04       # the part that scales with the size
    return float(min(fontsize, max(5.0, fontsize * (width - 0.04) / need)))


def _min_title_w(labels, fontsize: float = 6.5) -> float:
    """Narrowest map whose titles still fit at ``fontsize`` (they are drawn up to the style size)."""
    return max(_text_w(t, fontsize) for t in labels) + 0.02


def _colorbar(page, im, x, top, h, label, *, binary=False, ticklabels=None, extend="neither", energy=False):
    cax = page.axes(x, top, CB_W, h)
    cb = page.fig.colorbar(im, cax=cax, extend=extend)
    cb.set_label(label, labelpad=2)
    cb.outline.set_linewidth(0.5)
    cb.ax.tick_params(labelsize=7, pad=1.5)
    if binary:
        cb.set_ticks([0.25, 0.75])
        cb.set_ticklabels(ticklabels or ["no", "yes"])
        cb.ax.tick_params(length=0)
    elif energy:
        from matplotlib.ticker import MaxNLocator

        cb.ax.yaxis.set_major_locator(MaxNLocator(nbins=max(1, min(6, int(h / 0.22))),
                                                  min_n_ticks=1 if h < 0.5 else 2))
        _no_offset(cb.ax.yaxis)
    else:                                        # a 0-1 scale
        from matplotlib.ticker import FormatStrFormatter

        cb.set_ticks([0.0, 0.5, 1.0] if h < 1.2 else [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
        cb.ax.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
    return cb


def _draw_grid(page, plan: _GridPlan, x0, top0, maps, labels, geom: _Geom, *, cmap, cbar_label,
               binary=False, ticklabels=None, extend="neither"):
    """Small multiples of ``maps`` with a shared colour bar at the right; returns the map axes."""
    axes, im = [], None
    for i in range(plan.n):
        r, c = divmod(i, plan.nc)
        x = x0 + plan.lb + c * (plan.pw + plan.gx)
        top = top0 + r * (plan.title_h + plan.ph + GY) + plan.title_h
        ax = page.axes(x, top, plan.pw, plan.ph)
        im = _imshow(ax, maps[i], geom, cmap=cmap, vmin=0.0, vmax=1.0)
        ax.set_title(labels[i], pad=TITLE_PAD, fontsize=_fit_font(labels[i], plan.pw + 0.5 * plan.gx,
                                                                 STYLE["axes.titlesize"]))
        _style_map_axes(ax, geom, xlabels=i + plan.nc >= plan.n, ylabels=(c == 0),
                        axis_titles=(r == plan.nr - 1 and c == 0), scalebar=(i == 0))
        ax.set_gid("map")
        axes.append(ax)
    span = plan.nr * plan.ph + (plan.nr - 1) * (GY + plan.title_h)
    ch = min(span, 0.8) if binary else min(span, max(plan.ph, 2.2))
    xc = x0 + plan.lb + plan.nc * plan.pw + (plan.nc - 1) * plan.gx + CB_GAP
    _colorbar(page, im, xc, top0 + plan.title_h + (span - ch) / 2, ch, cbar_label, binary=binary,
              ticklabels=ticklabels, extend=extend)
    return axes


def _legend_layout(n: int, ax_w: float) -> tuple[int, float]:
    ncol = max(1, min(n, int(ax_w // 0.6)))
    rows = math.ceil(n / ncol)
    return ncol, rows * LEG_ROW + 0.06


def _spectra_block(page, x0, top0, w, h, letter, title, energy, spectra, labels, ylabel):
    """Header + spectra axes + legend below, inside the box (x0, top0, w, h)."""
    ax_w = w - AX_L - 0.22
    ncol, leg_h = _legend_layout(len(labels), ax_w)
    ax_h = h - HEAD_H - AX_B - leg_h
    page.header(x0 + 0.02, top0, letter, title)
    ax = page.axes(x0 + AX_L, top0 + HEAD_H, ax_w, ax_h)
    _plot_spectra(ax, energy, spectra, labels, ylabel=ylabel, legend_ncol=ncol, legend_y=-(AX_B + 0.03) / ax_h)
    ax.set_gid("spectra")
    return ax


def _spectra_min_h(n: int, w: float, ax_h: float = 1.7) -> float:
    _, leg_h = _legend_layout(n, w - AX_L - 0.22)
    return HEAD_H + ax_h + AX_B + leg_h


def _maps_spectra_figure(maps, labels, geom, energy, spectra, *, spec_labels=None, map_title, spec_title, spec_ylabel,
                         cbar_label, binary=False, ticklabels=None, suptitle=None):
    """(A) maps grid at the left, (B) spectra at the right (Figs. 2 and 6)."""
    n = len(maps)
    maps_w = 4.4
    spec_w = FIG_WIDTH - maps_w
    st = 0.22 if suptitle else 0.0
    plan = choose_grid(n, geom.aspect, maps_w, 4.6, um=geom.um, min_pw=_min_title_w(labels))
    H = max(TOP + st + HEAD_H + plan.height + 0.05, TOP + st + _spectra_min_h(n, spec_w) + 0.05, 2.6)
    page = _Page(FIG_WIDTH, H)
    body = H - TOP - st - 0.05
    mt = TOP + st + (body - HEAD_H - plan.height) / 2
    x_maps = max(0.0, (maps_w - plan.width) / 2)
    page.header(x_maps + 0.02, mt, "A", map_title)
    axes = _draw_grid(page, plan, x_maps, mt + HEAD_H, maps, labels, geom,
                      cmap=_binary_cmap() if binary else _cmap(MAP_CMAP), cbar_label=cbar_label, binary=binary,
                      ticklabels=ticklabels)
    _spectra_block(page, maps_w, TOP + st, spec_w, body, "B", spec_title, energy, spectra,
                   spec_labels or labels, spec_ylabel)
    if suptitle:
        page.fig.suptitle(suptitle, y=1 - TOP / H, va="top")
    return page.fig, axes


# ----------------------------------------------------------------------------------------------
# Fig. 1: peak-top-energy map
# ----------------------------------------------------------------------------------------------

def _pte_limits(v, vmin, vmax, also=()):
    lo, hi, _ = _robust_limits(v)
    lo = lo if vmin is None else float(vmin)
    hi = hi if vmax is None else float(vmax)
    for e in also:                               # keep marks (thresholds) inside the range
        pad = 0.03 * (hi - lo)
        lo, hi = min(lo, e - pad), max(hi, e + pad)
    f = v[np.isfinite(v)]
    ext = {(False, False): "neither", (True, False): "min", (False, True): "max",
           (True, True): "both"}[(bool(f.size and f.min() < lo), bool(f.size and f.max() > hi))]
    return lo, hi, ext


@_styled
def fig_peak_energy_map(pte_ds, *, roi=None, title=None, vmin=None, vmax=None):
    """Fig. 1: 2D map of the peak-top energy, with the clipped ROI drawn as a red rectangle.

    Parameters
    ----------
    pte_ds : xarray.Dataset
        Output of :func:`xasnmf.peak.peak_dataset` (``peak_energy(y, x)``, eV, NaN where unfitted).
    roi : (y0, y1, x0, x1), optional, keyword-only
        Pixel indices (end-exclusive, as in ``preprocess(roi=...)``) of the region analysed.
    title : str, optional, keyword-only
    vmin, vmax : float, optional, keyword-only
        Colour range in eV (default: 1st-99th percentile of the fitted pixels).

    Returns
    -------
    matplotlib.figure.Figure
        The map axes has ``gid == "map"``, the ROI rectangle ``gid == "roi"``.
    """
    pe = _check_var(pte_ds, "peak_energy", ("y", "x"), "peak-top-energy")
    geom = _geom(pte_ds, "peak-top-energy")
    v = np.asarray(pe.values, dtype=np.float64)
    lo, hi, ext = _pte_limits(v, vmin, vmax)
    a = geom.aspect
    pw = min(6.0, max(3.0, 4.0 / max(a, 0.3) ** 0.5))
    if pw * a > 5.0:
        pw = 5.0 / a
    ph = pw * a
    lb, bb = (UM_L, UM_B) if geom.um else (PIX_L, PIX_B)
    th = 0.28 if title else 0.1
    W = lb + pw + CB_GAP + CB_W + CB_LAB_E
    H = th + ph + bb + 0.06
    page = _Page(W, H)
    ax = page.axes(lb, th, pw, ph)
    im = _imshow(ax, v, geom, cmap=_cmap(ENERGY_CMAP), vmin=lo, vmax=hi)
    ax.set_gid("map")
    _colorbar(page, im, lb + pw + CB_GAP, th, ph, "Peak-top energy (eV)", extend=ext, energy=True)
    _style_map_axes(ax, geom, scalebar=True)
    if roi is not None:
        try:
            y0, y1, x0, x1 = (int(t) for t in roi)
        except (TypeError, ValueError):
            raise InputError(f"ROI must be four pixel indices (y0, y1, x0, x1), got {roi!r}", source="roi") from None
        if not (0 <= y0 < y1 <= geom.ny and 0 <= x0 < x1 <= geom.nx):
            raise InputError(f"ROI {(y0, y1, x0, x1)} is not inside the {geom.ny} x {geom.nx} map", source="roi",
                             fix="give end-exclusive pixel indices 0 <= y0 < y1 <= ny, 0 <= x0 < x1 <= nx")
        from matplotlib.patches import Rectangle

        xa, xb = geom.index_to_data("x", x0, x1)
        ya, yb = geom.index_to_data("y", y0, y1)
        ax.add_patch(Rectangle((min(xa, xb), min(ya, yb)), abs(xb - xa), abs(yb - ya), fill=False,
                               edgecolor=ROI_COLOR, lw=1.5, gid="roi", zorder=4))
    if title:
        ax.set_title(title, pad=4)
    return page.fig


# ----------------------------------------------------------------------------------------------
# Fig. 2: ground truth
# ----------------------------------------------------------------------------------------------

@_styled
def fig_truth(synth_ds, *, title=None):
    """Fig. 2: (A) the ground-truth domains g1..gk (membership maps), (B) their spectra ``truth_H``.

    Parameters
    ----------
    synth_ds : xarray.Dataset
        Output of :func:`xasnmf.synthetic.synthesize` (``truth_W``, ``truth_H``).
    title : str, optional, keyword-only

    Returns
    -------
    matplotlib.figure.Figure
    """
    W = _check_var(synth_ds, "truth_W", ("component", "y", "x"), "synthetic")
    H = _check_var(synth_ds, "truth_H", ("component", "energy"), "synthetic")
    k = int(W.sizes["component"])
    if int(H.sizes["component"]) != k:
        raise InputError(f"truth_W has {k} domains but truth_H {H.sizes['component']}", source="synthetic")
    names = ([str(s) for s in synth_ds["truth_name"].values] if "truth_name" in synth_ds
             else _labels("g", k))
    fig, _ = _maps_spectra_figure(np.asarray(W.values, dtype=np.float64), names, _geom(synth_ds, "synthetic"),
                                  np.asarray(synth_ds["energy"].values, dtype=np.float64),
                                  np.asarray(H.values, dtype=np.float64),
                                  map_title=f"Ground-truth domains {names[0]}–{names[-1]}" if k > 1
                                  else f"Ground-truth domain {names[0]}",
                                  spec_title="Ground-truth spectra", spec_ylabel="Normalized absorbance",
                                  cbar_label="Membership", suptitle=title)
    return fig


# ----------------------------------------------------------------------------------------------
# Figs. 3-5: BCV + ONMF domains + spectra
# ----------------------------------------------------------------------------------------------

def _bcv_axes(ax, bcv_ds):
    """(A): mean BCV error +- SE vs rank, the trials behind it, the selected and one-SE ranks."""
    from matplotlib.ticker import MaxNLocator

    mean = np.asarray(_check_var(bcv_ds, "mean_error", ("rank",), "BCV").values, dtype=np.float64)
    ranks = np.asarray(bcv_ds["rank"].values, dtype=np.int64)
    se = (np.asarray(bcv_ds["se"].values, dtype=np.float64) if "se" in bcv_ds
          else np.full(mean.shape, np.nan))
    rset = set(ranks.tolist())
    sel = bcv_ds.attrs.get("selected_rank")
    if sel is None or not np.isfinite(float(sel)):
        if not np.isfinite(mean).any():
            raise InputError("no finite mean BCV error at any rank", source="BCV")
        sel = int(ranks[int(np.nanargmin(mean))])
    sel = int(sel)
    if sel not in rset:
        raise InputError(f"selected_rank {sel} is not one of the ranks {ranks.tolist()}", source="BCV")
    one = bcv_ds.attrs.get("one_se_rank")
    one = int(one) if one is not None and np.isfinite(float(one)) and int(one) in rset else None

    if "trial_error" in bcv_ds and bcv_ds["trial_error"].dims == ("rank", "seed"):
        te = np.asarray(bcv_ds["trial_error"].values, dtype=np.float64)
        ex = (np.asarray(bcv_ds["excluded"].values, dtype=bool) if "excluded" in bcv_ds
              else np.zeros(te.shape, bool))
        ns = te.shape[1]
        off = (np.arange(ns) - (ns - 1) / 2) * (0.3 / max(ns - 1, 1)) if ns > 1 else np.zeros(1)
        xs = ranks[:, None] + off[None, :]
        keep = np.isfinite(te) & ~ex
        ax.plot(xs[keep], te[keep], ls="none", marker="o", ms=2.8, mfc="none", mec="0.5", mew=0.6,
                label="trials (per seed)", zorder=2, gid="trials")
        drop = np.isfinite(te) & ex
        if drop.any():
            ax.plot(xs[drop], te[drop], ls="none", marker="x", ms=3.2, color="0.5", mew=0.7,
                    label="trials, excluded", zorder=2, gid="trials_excluded")
    ok = np.isfinite(mean)
    ax.errorbar(ranks[ok], mean[ok], yerr=np.where(np.isfinite(se[ok]), se[ok], 0.0), color="black", lw=1.0,
                marker="o", ms=3.2, capsize=2.0, elinewidth=0.8, label="mean ± SE", zorder=3, gid="mean_error")
    i_sel = int(np.flatnonzero(ranks == sel)[0])
    if one is not None and np.isfinite(se[i_sel]):
        ax.axhline(mean[i_sel] + se[i_sel], color="0.45", lw=0.7, ls=":", zorder=1, gid="one_se_threshold",
                   label="min + 1 SE")
    ax.axvline(sel, color="0.35", lw=0.7, ls="--", zorder=1, gid="selected_rank_line")
    ax.plot([sel], [mean[i_sel]], ls="none", marker="*", ms=10, mfc="#d62728", mec="black", mew=0.6,
            zorder=5, gid="selected_rank", label=f"selected r = {sel} (minimum)")
    if one is not None:
        i_one = int(np.flatnonzero(ranks == one)[0])
        ax.plot([one], [mean[i_one]], ls="none", marker="D", ms=7.5, mfc="none", mec="#1f77b4", mew=1.2,
                zorder=4, gid="one_se_rank", label=f"one-SE rule r = {one}")
    ax.set_xlabel("Rank r", labelpad=2)
    ax.set_ylabel("BCV error", labelpad=2)
    if ranks.size <= 16:
        ax.set_xticks(ranks)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(ranks.min() - 0.6, ranks.max() + 0.6)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    _no_offset(ax.yaxis)
    ax.legend(loc="best", fontsize=6.5, handlelength=1.6, borderaxespad=0.4, labelspacing=0.3, frameon=True,
              framealpha=0.9, edgecolor="none", facecolor="white")
    return sel, one


@_styled
def fig_bcv_domains(bcv_ds, fit_ds, *, prefix="A", title=None, spectrum="spectrum"):
    """Figs. 3-5: (A) BCV error vs rank, (B) domain maps <prefix>1..r, (C) their spectra.

    Parameters
    ----------
    bcv_ds : xarray.Dataset
        Output of :func:`xasnmf.api.bcv_dataset` / ``bcv_cube`` (``mean_error``, ``se``,
        ``trial_error``, ``excluded``; attributes ``selected_rank``, ``one_se_rank``).
    fit_ds : xarray.Dataset
        Output of :func:`xasnmf.api.fit_cube` (``W(component, y, x)``, ``spectrum(component, energy)``).
    prefix : str, keyword-only
        Domain label prefix: "A" for the synthetic data (Fig. 3), "B" for real data (Figs. 4, 5).
    title : str, optional, keyword-only
    spectrum : str, keyword-only
        Fit variable plotted in (C): ``"spectrum"`` (W-weighted mean normalized spectrum),
        ``"spectrum_wtx0"`` (the paper's W^T X0) or ``"H"``.

    Returns
    -------
    matplotlib.figure.Figure
        Map axes carry ``gid == "map"``, the BCV axes ``gid == "bcv"``, the selected-rank
        marker ``gid == "selected_rank"`` and the one-SE marker ``gid == "one_se_rank"``.
    """
    W = _check_var(fit_ds, "W", ("component", "y", "x"), "fit")
    S = _check_var(fit_ds, spectrum, ("component", "energy"), "fit")
    r = int(W.sizes["component"])
    geom = _geom(fit_ds, "fit")
    maps, empty, clipped = _relative(W.values)
    labels = _labels(prefix, r)
    map_labels = [f"{lab} (empty)" if e else lab for lab, e in zip(labels, empty)]
    ylabel = {"spectrum": "Normalized absorbance", "spectrum_wtx0": "$W^T X_0$ (a.u.)",
              "H": "Difference spectrum"}.get(spectrum, spectrum)
    energy = np.asarray(fit_ds["energy"].values, dtype=np.float64)

    left_w = 3.05
    right_x = left_w + 0.1
    right_w = FIG_WIDTH - right_x
    st = 0.22 if title else 0.0
    hA = hC = 1.7
    _, leg_h = _legend_layout(r, left_w - AX_L - 0.22)
    fixed = HEAD_H + AX_B + 0.1 + HEAD_H + AX_B + leg_h
    left_h = fixed + hA + hC
    plan = choose_grid(r, geom.aspect, right_w, max(left_h, 4.2) - HEAD_H, um=geom.um,
                       min_pw=_min_title_w(map_labels))
    body = max(left_h, HEAD_H + plan.height)
    extra = body - left_h
    hA += extra / 2
    hC += extra / 2
    H = TOP + st + body + 0.05
    page = _Page(FIG_WIDTH, H)
    t0 = TOP + st
    page.header(0.02, t0, "A", "Bi-cross-validation")
    axA = page.axes(AX_L, t0 + HEAD_H, left_w - AX_L - 0.22, hA)
    axA.set_gid("bcv")
    _bcv_axes(axA, bcv_ds)
    tC = t0 + HEAD_H + hA + AX_B + 0.1
    _spectra_block(page, 0.0, tC, left_w, body - (tC - t0), "C", "Domain spectra", energy,
                   np.asarray(S.values, dtype=np.float64), labels, ylabel)
    mt = t0 + (body - HEAD_H - plan.height) / 2
    x_maps = right_x + max(0.0, (right_w - plan.width) / 2)
    page.header(x_maps + 0.02, mt, "B", f"Domains {labels[0]}–{labels[-1]}" if r > 1 else f"Domain {labels[0]}")
    _draw_grid(page, plan, x_maps, mt + HEAD_H, maps, map_labels, geom, cmap=_cmap(MAP_CMAP),
               cbar_label=WEIGHT_LABEL, extend="max" if clipped else "neither")
    if title:
        page.fig.suptitle(title, y=1 - TOP / H, va="top")
    return page.fig


# ----------------------------------------------------------------------------------------------
# Fig. 6: k-means
# ----------------------------------------------------------------------------------------------

@_styled
def fig_kmeans(km_ds, *, prefix="C", title=None):
    """Fig. 6: (A) k-means domains C1..Ck (with their share of the pixels), (B) centroid spectra.

    Parameters
    ----------
    km_ds : xarray.Dataset
        Output of :func:`xasnmf.kmeans.kmeans_dataset` (``domain`` or ``label``, ``centroid``).
    prefix : str, keyword-only
    title : str, optional, keyword-only

    Returns
    -------
    matplotlib.figure.Figure
    """
    C = _check_var(km_ds, "centroid", ("component", "energy"), "k-means")
    k = int(C.sizes["component"])
    if "domain" in km_ds:
        D = np.asarray(_check_var(km_ds, "domain", ("component", "y", "x"), "k-means").values, dtype=np.float64)
    else:
        lab = np.asarray(_check_var(km_ds, "label", ("y", "x"), "k-means").values)
        D = np.where(lab[None] >= 0, (lab[None] == np.arange(k)[:, None, None]).astype(float), np.nan)
    if D.shape[0] != k:
        raise InputError(f"{D.shape[0]} domain maps but {k} centroids", source="k-means")
    n_valid = int(np.isfinite(D[0]).sum())
    labels = _labels(prefix, k)
    map_labels = []
    for i in range(k):
        s = np.nansum(D[i]) / n_valid * 100 if n_valid else np.nan
        map_labels.append(labels[i] if not np.isfinite(s) else
                          f"{labels[i]} ({s:.0f} %)" if s >= 1 or s == 0 else f"{labels[i]} ({s:.1f} %)")
    fig, _ = _maps_spectra_figure(D, map_labels, _geom(km_ds, "k-means"),
                                  np.asarray(km_ds["energy"].values, dtype=np.float64),
                                  np.asarray(C.values, dtype=np.float64), spec_labels=labels,
                                  map_title=f"k-means domains {labels[0]}–{labels[-1]}" if k > 1
                                  else f"k-means domain {labels[0]}",
                                  spec_title="Centroid spectra", spec_ylabel="Absorbance (cluster mean)",
                                  cbar_label="In cluster", binary=True, suptitle=title)
    return fig


# ----------------------------------------------------------------------------------------------
# Fig. 7: peak-top-energy classes vs ONMF domains
# ----------------------------------------------------------------------------------------------

@_styled
def fig_classes(pte_ds, classes_ds, fit_ds, *, prefix=None, title=None, vmin=None, vmax=None):
    """Fig. 7: (A) PTE map, thresholds on its colour bar; (B) classes D1-D3 over their best-matching ONMF domains.

    Parameters
    ----------
    pte_ds : xarray.Dataset
        :func:`xasnmf.peak.peak_dataset` output (``peak_energy``).
    classes_ds : xarray.Dataset
        :func:`xasnmf.classes.classes_dataset` output (``indicator`` or ``class_map``,
        ``best_domain`` (1-based), ``cosine``; attributes ``e_high``, ``e_low`` in eV).
    fit_ds : xarray.Dataset
        The fit the classes were matched to (``W``).
    prefix : str, optional, keyword-only
        Domain label prefix (default: taken from ``classes_ds.domain``, i.e. "B").
    title : str, optional, keyword-only
    vmin, vmax : float, optional, keyword-only
        PTE colour range in eV (default 1st-99th percentile, widened to show both thresholds).

    Returns
    -------
    matplotlib.figure.Figure
        (B) top row: D1, D2, D3 (``gid == "class_map"``); bottom row: the domains matching
        them (``gid == "map"``, as is the PTE map of (A)).
    """
    pe = np.asarray(_check_var(pte_ds, "peak_energy", ("y", "x"), "peak-top-energy").values, dtype=np.float64)
    W = np.asarray(_check_var(fit_ds, "W", ("component", "y", "x"), "fit").values, dtype=np.float64)
    r = W.shape[0]
    if W.shape[1:] != pe.shape:
        raise InputError(f"fit maps {W.shape[1:]} and PTE map {pe.shape} differ in size", source="fit",
                         fix="use a fit and a PTE map made from the same cube")
    for att in ("e_high", "e_low"):
        if att not in classes_ds.attrs:
            raise InputError(f"no attribute '{att}'", source="classes", fix="pass the xasnmf classes NetCDF")
    e_high, e_low = float(classes_ds.attrs["e_high"]), float(classes_ds.attrs["e_low"])
    best = np.asarray(_check_var(classes_ds, "best_domain", ("class",), "classes").values, dtype=np.int64)
    if best.shape != (3,) or (best < 1).any() or (best > r).any():
        raise InputError(f"best_domain {best.tolist()} does not fit a rank-{r} fit", source="classes",
                         fix="use the classes file made with this fit")
    if "indicator" in classes_ds:
        ind = np.asarray(classes_ds["indicator"].values, dtype=np.float64)
    else:
        cmap_ = np.asarray(_check_var(classes_ds, "class_map", ("y", "x"), "classes").values)
        ind = np.stack([np.where(cmap_ > 0, (cmap_ == c).astype(float), np.nan) for c in (1, 2, 3)])
    if ind.shape != (3,) + pe.shape:
        raise InputError(f"class maps {ind.shape} do not match the PTE map {pe.shape}", source="classes")
    if prefix is None:
        dl = [str(s) for s in classes_ds["domain"].values] if "domain" in classes_ds.coords else []
        prefix = dl[0].rstrip("0123456789") if dl else "B"
    cos = np.asarray(classes_ds["cosine"].values, dtype=np.float64) if "cosine" in classes_ds else None
    if cos is not None and cos.shape != (3, r):
        cos = None
    geom = _geom(pte_ds, "peak-top-energy")
    lo, hi, ext = _pte_limits(pe, vmin, vmax, also=(e_low, e_high))

    a = geom.aspect
    lb, bb = (UM_L, UM_B) if geom.um else (PIX_L, PIX_B)
    st = 0.22 if title else 0.0
    cb_band = CB_GAP + CB_W + CB_LAB
    gx = GX if geom.um else GX_PIX
    txt_h = 0.32
    stacked = a < 0.6                     # wide images: (A) on top at full width, (B) below
    if stacked:
        left_w, right_x = FIG_WIDTH, 0.0
    else:
        left_w, right_x = 2.75, 2.87
    right_w = FIG_WIDTH - right_x
    pw = min((right_w - lb - cb_band - 2 * gx) / 3, 2.2 / a)
    ph = pw * a
    hB = HEAD_H + 2 * (TITLE2_H + ph) + GY + bb
    pwA = min(left_w - lb - CB_GAP - CB_W - CB_LAB_E - (0.1 if stacked else 0.0), (2.4 if stacked else 3.6) / a)
    phA = pwA * a
    hA = HEAD_H + 0.05 + phA + bb + txt_h
    body = hA + 0.1 + hB if stacked else max(hA, hB)
    H = TOP + st + body + 0.05
    page = _Page(FIG_WIDTH, H)
    t0 = TOP + st

    tA = t0 if stacked else t0 + (body - hA) / 2
    xA = max(0.0, (left_w - (lb + pwA + CB_GAP + CB_W + CB_LAB_E)) / 2) if stacked else 0.0
    page.header(xA + 0.02, tA, "A", "Peak-top energy")
    axA = page.axes(xA + lb, tA + HEAD_H + 0.05, pwA, phA)
    im = _imshow(axA, pe, geom, cmap=_cmap(ENERGY_CMAP), vmin=lo, vmax=hi)
    axA.set_gid("map")
    _style_map_axes(axA, geom, scalebar=True)
    cb = _colorbar(page, im, xA + lb + pwA + CB_GAP, tA + HEAD_H + 0.05, phA,
                   "Peak-top energy (eV)" if phA >= 1.5 else "PTE (eV)", extend=ext, energy=True)
    cb.ax.axhline(e_high, color="red", lw=1.3, ls="-", gid="threshold:e_high")
    cb.ax.axhline(e_low, color="red", lw=1.3, ls=(0, (2, 1)), gid="threshold:e_low")
    page.fig.text((xA + lb) / page.w, 1 - (tA + HEAD_H + 0.05 + phA + bb + 0.04) / H,
                  f"$E_{{high}}$ = {e_high:.2f} eV (solid red)\n$E_{{low}}$ = {e_low:.2f} eV (dashed red)",
                  ha="left", va="top", fontsize=7, gid="thresholds")

    tB = t0 + hA + 0.1 if stacked else t0 + (body - hB) / 2
    x_grid = right_x + max(0.0, (right_w - (lb + 3 * pw + 2 * gx + cb_band)) / 2)
    page.header(x_grid + 0.02, tB, "B", "Classes D1–D3 (top) and best-matching ONMF domains (bottom)")
    rules = ["PTE > $E_{high}$", "$E_{low}$ < PTE ≤ $E_{high}$", "PTE ≤ $E_{low}$"]
    Wrel, _, _ = _relative(W)
    row_top = [tB + HEAD_H + TITLE2_H, tB + HEAD_H + TITLE2_H + ph + GY + TITLE2_H]
    imd = imb = None
    t_ds = [f"D{j + 1} ({int(np.nansum(ind[j]))} px)\n{rules[j]}" for j in range(3)]
    subs = [f"cos = {cos[j, int(best[j]) - 1]:.2f}" if cos is not None else f"best for D{j + 1}" for j in range(3)]
    t_bs = [f"{prefix}{int(best[j])}\n{subs[j]}" for j in range(3)]
    fs_d = min(_fit_font(t, pw) for t in t_ds)          # one size per row
    fs_b = min(_fit_font(t, pw) for t in t_bs)
    for j in range(3):
        x = x_grid + lb + j * (pw + gx)
        axd = page.axes(x, row_top[0], pw, ph)
        imd = _imshow(axd, ind[j], geom, cmap=_binary_cmap(), vmin=0.0, vmax=1.0)
        axd.set_title(t_ds[j], pad=TITLE_PAD, fontsize=fs_d, linespacing=1.25)
        _style_map_axes(axd, geom, xlabels=False, ylabels=(j == 0), axis_titles=False, scalebar=(j == 0))
        axd.set_gid("class_map")
        b = int(best[j]) - 1
        axb = page.axes(x, row_top[1], pw, ph)
        imb = _imshow(axb, Wrel[b], geom, cmap=_cmap(MAP_CMAP), vmin=0.0, vmax=1.0)
        axb.set_title(t_bs[j], pad=TITLE_PAD, fontsize=fs_b, linespacing=1.25)
        _style_map_axes(axb, geom, xlabels=True, ylabels=(j == 0), axis_titles=(j == 0), scalebar=False)
        axb.set_gid("map")
    xc = x_grid + lb + 3 * pw + 2 * gx + CB_GAP
    ch = min(ph, 0.8)
    _colorbar(page, imd, xc, row_top[0] + (ph - ch) / 2, ch, "In class", binary=True)
    shown = np.asarray(best, dtype=np.int64) - 1
    _colorbar(page, imb, xc, row_top[1], ph, WEIGHT_LABEL,
              extend="max" if np.nanmax(Wrel[shown], initial=0.0) > 1.0 + 1e-9 else "neither")
    if title:
        page.fig.suptitle(title, y=1 - TOP / H, va="top")
    return page.fig

# ----------------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------------

_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def save_figure(fig, *paths, dpi: int = 150):
    """Write ``fig`` to each path (format from the suffix: .png at ``dpi``, .pdf, .svg), atomically; close it.

    A path without a suffix writes both ``<path>.png`` and ``<path>.pdf``.  Each file is
    first written to a temporary name in the same folder and then moved into place with
    :func:`os.replace`, so a reader (or Snakemake) never sees a half-written figure and a
    failure leaves no partial file.  The figure is closed even when writing fails.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import matplotlib

    try:
        if not paths:
            raise InputError("no output path given", source="save_figure", fix="pass e.g. 'fig3.png', 'fig3.pdf'")
        targets: list[tuple[Path, str]] = []
        for p in paths:
            p = Path(p)
            suf = p.suffix.lower()
            if suf == "":
                targets += [(p.with_name(p.name + ".png"), "png"), (p.with_name(p.name + ".pdf"), "pdf")]
            elif suf in _FORMATS:
                targets.append((p, _FORMATS[suf]))
            else:
                raise InputError(f"cannot write a figure as '{suf}'", source=str(p),
                                 fix="use .png, .pdf or .svg (or no suffix for both PNG and PDF)")
        written = []
        with matplotlib.rc_context(STYLE):
            for path, fmt in targets:
                meta = ({"Software": None} if fmt == "png"
                        else {"Creator": None, "Producer": None, "CreationDate": None} if fmt == "pdf"
                        else {"Date": None})
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    fig.savefig(fh, format=fmt, dpi=dpi, metadata=meta)
                written.append(path)
        return written
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
