"""Figures (Figs. 1-7) from small real pipeline outputs: map counts, BCV marks, scale bars, masks, saving."""

from __future__ import annotations

import itertools
import os
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xasnmf import figures as F  # noqa: E402
from xasnmf.errors import InputError  # noqa: E402

NY, NX, K = 24, 30, 4


@pytest.fixture(scope="module")
def outputs():
    """Synthetic cube -> preprocess (with a masked corner) -> fit, BCV, k-means, PTE, classes."""
    from xasnmf.api import bcv_cube, fit_cube
    from xasnmf.classes import classes_dataset, threshold_classes
    from xasnmf.kmeans import kmeans_dataset
    from xasnmf.peak import peak_dataset
    from xasnmf.preprocess import preprocess
    from xasnmf.synthetic import synthesize

    ds = synthesize(shape=(NY, NX), n_domains=K, n_energies=30, seed=0)
    mask = np.ones((NY, NX), bool)
    mask[:4, :5] = False
    pre = preprocess(ds, norm="edge", mask=mask)
    pre["reference"] = ds["reference"]
    fit = fit_cube(pre, rank=K, n_restarts=1, max_iter=200)
    bcv = bcv_cube(pre, ranks=[3, 4, 5], n_folds=3, seeds=[0, 1], method="svd", max_iter=100)
    km = kmeans_dataset(pre, K, n_init=2)
    pte = peak_dataset(pre, window=2.5)
    res = threshold_classes(pte["peak_energy"].values, fit["W"].values, distinct=True)
    cl = classes_dataset(res, y=pre["y"].variable, x=pre["x"].variable)
    return {"synth": ds, "pre": pre, "fit": fit, "bcv": bcv, "km": km, "pte": pte, "classes": cl}


def in_um(ds, step=2.0):
    """The same dataset with x, y in micrometres (``step`` um per pixel)."""
    return ds.assign_coords(x=("x", np.arange(ds.sizes["x"]) * step, {"units": "um"}),
                            y=("y", np.arange(ds.sizes["y"]) * step, {"units": "um"}))


def fake_fit(r, ny, nx, *, um=False, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.random((r, ny, nx)).astype(np.float32)
    W[:, : ny // 5, : nx // 4] = np.nan
    E = np.linspace(7700.0, 7740.0, 60)
    S = np.stack([np.tanh((E - 7720 - 0.4 * i) / 3) for i in range(r)])
    u, step = ("um", 0.5) if um else ("pixel", 1.0)
    return xr.Dataset({"W": (("component", "y", "x"), W), "spectrum": (("component", "energy"), S)},
                      coords={"y": ("y", np.arange(ny) * step, {"units": u}),
                              "x": ("x", np.arange(nx) * step, {"units": u}),
                              "energy": ("energy", E, {"units": "eV"}), "component": np.arange(1, r + 1)})


def map_axes(fig, gid="map"):
    return [ax for ax in fig.axes if ax.get_gid() == gid]


def by_gid(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if getattr(a, "get_gid", lambda: None)() == gid]


def texts(fig):
    out = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    return [t for t in out if t]


def has_um_text(fig):
    """A text naming micrometres as a unit ("10 µm", "um"; not "minimum")."""
    return any(re.search(r"(?<![A-Za-z])(um|µm)(?![A-Za-z])", t) for t in texts(fig))


# ---------------------------------------------------------------------------------------------- Figs. 3-5

def test_bcv_domains_maps_spectra_and_rank_marks(outputs):
    bcv, fit = outputs["bcv"], outputs["fit"]
    fig = F.fig_bcv_domains(bcv, fit, prefix="B", title="real")
    assert isinstance(fig, Figure)
    maps = map_axes(fig)
    assert len(maps) == K
    assert [ax.get_title() for ax in maps] == [f"B{i}" for i in range(1, K + 1)]
    sel, one = int(bcv.attrs["selected_rank"]), int(bcv.attrs["one_se_rank"])
    (star,) = by_gid(fig, "selected_rank")
    assert star.get_xdata().tolist() == [sel]
    assert star.get_ydata()[0] == pytest.approx(float(bcv["mean_error"].sel(rank=sel)))
    (dia,) = by_gid(fig, "one_se_rank")
    assert dia.get_xdata().tolist() == [one]
    assert dia.get_marker() != star.get_marker()
    (vline,) = by_gid(fig, "selected_rank_line")
    assert set(np.asarray(vline.get_xdata(), float)) == {sel}
    # error bars: the mean line goes through mean_error at every rank
    (ax_bcv,) = map_axes(fig, "bcv")
    mean_line = [ln for ln in ax_bcv.get_lines() if ln.get_gid() == "mean_error"] or \
        [c.lines[0] for c in ax_bcv.containers if c.get_gid() == "mean_error"]
    np.testing.assert_allclose(mean_line[0].get_ydata(), bcv["mean_error"].values)
    assert ax_bcv.get_xlabel() == "Rank r"
    # (C): one spectrum per domain, the fit's spectrum, energy axis
    (ax_s,) = map_axes(fig, "spectra")
    lines = [ln for ln in ax_s.get_lines() if str(ln.get_gid()).startswith("spectrum:")]
    assert [ln.get_label() for ln in lines] == [f"B{i}" for i in range(1, K + 1)]
    np.testing.assert_allclose(lines[1].get_ydata(), fit["spectrum"].values[1], rtol=1e-6)
    assert ax_s.get_xlabel() == "Energy (eV)"
    assert len({(ln.get_linestyle(), ln.get_marker()) for ln in lines}) == K     # greyscale-distinguishable


def test_selected_rank_marker_follows_the_attribute_and_falls_back_to_argmin(outputs):
    bcv, fit = outputs["bcv"].copy(), outputs["fit"]
    bcv.attrs["selected_rank"] = 3
    (star,) = by_gid(F.fig_bcv_domains(bcv, fit), "selected_rank")
    assert star.get_xdata().tolist() == [3]
    del bcv.attrs["selected_rank"]
    del bcv.attrs["one_se_rank"]
    fig = F.fig_bcv_domains(bcv, fit)
    (star,) = by_gid(fig, "selected_rank")
    assert star.get_xdata().tolist() == [int(bcv["rank"].values[np.nanargmin(bcv["mean_error"].values)])]
    assert by_gid(fig, "one_se_rank") == []
    bcv.attrs["selected_rank"] = 9
    with pytest.raises(InputError, match="not one of the ranks"):
        F.fig_bcv_domains(bcv, fit)


@pytest.mark.parametrize("r,ny,nx,um", [(1, 20, 26, False), (7, 18, 60, True), (12, 40, 14, False)])
def test_any_rank_and_shape_gives_r_maps_that_do_not_overlap(outputs, r, ny, nx, um):
    fit = fake_fit(r, ny, nx, um=um)
    fig = F.fig_bcv_domains(outputs["bcv"], fit, prefix="A")
    maps = map_axes(fig)
    assert len(maps) == r
    boxes = [ax.get_position() for ax in fig.axes]
    for a, b in itertools.combinations(boxes, 2):     # no axes (maps, colour bars, plots) overlap
        assert a.x1 <= b.x0 + 1e-9 or b.x1 <= a.x0 + 1e-9 or a.y1 <= b.y0 + 1e-9 or b.y1 <= a.y0 + 1e-9
    for bb in boxes:
        assert 0 <= bb.x0 and bb.x1 <= 1 + 1e-9 and 0 <= bb.y0 and bb.y1 <= 1 + 1e-9
    # every map keeps the image aspect (equal aspect, the axes box is the image)
    w, h = fig.get_size_inches()
    for ax in maps:
        p = ax.get_position()
        assert (p.height * h) / (p.width * w) == pytest.approx(ny / nx, rel=1e-6)
    assert has_um_text(fig) == um


def drawn_text_boxes(fig):
    """Window extents of every text that is drawn: titles, labels, ticks in view, legends, figure texts."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    items = []
    for ax in fig.axes:
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        items += [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]     # ticks in view only
        items += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        items += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        if ax.get_legend():
            items += ax.get_legend().get_texts()
    items += fig.texts
    uniq = {id(t): t for t in items if t.get_visible() and t.get_text().strip()}
    return [(t.get_text(), t.get_window_extent(r)) for t in uniq.values()]


def assert_no_text_overlap(fig):
    boxes = drawn_text_boxes(fig)
    assert len(boxes) > 5
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), f"{ta!r} overlaps {tb!r}"
    W, H = fig.get_size_inches() * fig.dpi
    for t, b in boxes:
        assert b.x0 >= -1 and b.y0 >= -1 and b.x1 <= W + 1 and b.y1 <= H + 1, f"{t!r} is cut off"


def test_many_narrow_maps_keep_titles_and_ticks_apart():
    fit = fake_fit(12, 40, 14)                        # tall narrow maps, 12 of them, pixel ticks
    bcv = xr.Dataset({"mean_error": ("rank", [3.0, 2.0, 2.1, 2.2]), "se": ("rank", [0.1, 0.1, 0.1, 0.1])},
                     coords={"rank": [9, 10, 11, 12]}, attrs={"selected_rank": 10, "one_se_rank": 10})
    assert_no_text_overlap(F.fig_bcv_domains(bcv, fit, prefix="B"))
    km = xr.Dataset({"domain": (("component", "y", "x"), (fit.W.values > 0.5).astype(float)),
                     "centroid": fit.spectrum}, coords=fit.coords)
    assert_no_text_overlap(F.fig_kmeans(km))          # titles "C10 (49 %)" wider than a map


@pytest.mark.parametrize("um", [False, True])
@pytest.mark.parametrize("kind", ["pte", "truth", "bcv", "kmeans", "classes"])
def test_real_figures_have_no_overlapping_text(outputs, kind, um):
    u = in_um if um else (lambda d: d)
    o = outputs
    fig = {"pte": lambda: F.fig_peak_energy_map(u(o["pte"]), roi=(2, 10, 5, 20), title="Peak-top energy"),
           "truth": lambda: F.fig_truth(u(o["synth"])),
           "bcv": lambda: F.fig_bcv_domains(o["bcv"], u(o["fit"]), title="Synthetic"),
           "kmeans": lambda: F.fig_kmeans(u(o["km"])),
           "classes": lambda: F.fig_classes(u(o["pte"]), u(o["classes"]), u(o["fit"]))}[kind]()
    assert_no_text_overlap(fig)
    assert has_um_text(fig) == um


# ---------------------------------------------------------------------------------------------- Figs. 1, 2, 6, 7

def test_peak_energy_map_roi_colorbar_and_masked_grey(outputs):
    pte = outputs["pte"]
    fig = F.fig_peak_energy_map(pte, roi=(2, 10, 5, 20), title="PTE")
    (ax,) = map_axes(fig)
    (rect,) = by_gid(fig, "roi")
    # pixel coordinates: pixel j spans j - 0.5 .. j + 0.5
    assert rect.get_x() == pytest.approx(4.5) and rect.get_width() == pytest.approx(15)
    assert rect.get_y() == pytest.approx(1.5) and rect.get_height() == pytest.approx(8)
    assert to_rgba(rect.get_edgecolor()) == to_rgba("red")
    assert "Peak-top energy (eV)" in texts(fig)
    im = ax.get_images()[0]
    arr = im.get_array()
    assert np.ma.getmaskarray(arr)[:4, :5].all() and not np.ma.getmaskarray(arr)[10:, 10:].any()
    assert to_rgba(im.get_cmap().get_bad()) == to_rgba(F.MASKED_COLOR)
    assert im.get_cmap().name.startswith("cividis")
    # ... and hatched: the hatch rectangles cover exactly the NaN pixels (area in pixel units)
    (hatch,) = by_gid(fig, "masked_hatch")
    assert hatch.get_hatch() == F.HATCH
    polys = hatch.get_path().to_polygons()
    area = sum(abs(np.ptp(q[:, 0]) * np.ptp(q[:, 1])) for q in polys)
    assert area == pytest.approx(np.isnan(pte["peak_energy"].values).sum())
    with pytest.raises(InputError, match="not inside"):
        F.fig_peak_energy_map(pte, roi=(0, NY + 1, 0, 5))


def test_roi_in_um_coordinates(outputs):
    fig = F.fig_peak_energy_map(in_um(outputs["pte"], 2.0), roi=(2, 10, 5, 20))
    (rect,) = by_gid(fig, "roi")
    assert rect.get_x() == pytest.approx(9.0) and rect.get_width() == pytest.approx(30.0)
    assert has_um_text(fig)


def test_scale_bar_only_in_um_and_of_a_round_length(outputs):
    fig_px = F.fig_peak_energy_map(outputs["pte"])
    assert not has_um_text(fig_px)
    assert by_gid(fig_px, "scalebar") == []
    (ax,) = map_axes(fig_px)
    assert len(ax.get_xticks()) >= 2 and ax.get_xlabel() == "x (pixel)"

    fig_um = F.fig_peak_energy_map(in_um(outputs["pte"], 2.0))      # 60 um wide -> 10 um bar
    (ax,) = map_axes(fig_um)
    assert len(ax.get_xticks()) == 0
    (bar,) = by_gid(fig_um, "scalebar")
    assert abs(np.diff(bar.get_xdata())[0]) == pytest.approx(10.0)
    (label,) = by_gid(fig_um, "scalebar_label")
    assert label.get_text() == "10 µm"
    assert [F.nice_length(v) for v in (12.0, 7.3, 0.42, 250.0)] == [10.0, 5.0, 0.2, 200.0]


def test_truth_one_panel_per_domain_and_spectra(outputs):
    ds = outputs["synth"]
    fig = F.fig_truth(ds)
    maps = map_axes(fig)
    assert [ax.get_title() for ax in maps] == [f"g{i}" for i in range(1, K + 1)]
    (ax_s,) = map_axes(fig, "spectra")
    lines = [ln for ln in ax_s.get_lines() if str(ln.get_gid()).startswith("spectrum:")]
    assert len(lines) == K
    np.testing.assert_allclose(lines[2].get_ydata(), ds["truth_H"].values[2])
    np.testing.assert_allclose(maps[0].get_images()[0].get_array().filled(np.nan), ds["truth_W"].values[0])
    assert not has_um_text(fig)
    assert has_um_text(F.fig_truth(in_um(ds)))


def test_kmeans_domains_and_centroids(outputs):
    km = outputs["km"]
    fig = F.fig_kmeans(km)
    maps = map_axes(fig)
    assert len(maps) == K
    assert [ax.get_title().split()[0] for ax in maps] == [f"C{i}" for i in range(1, K + 1)]
    share = 100 * float((km["label"] == 0).sum() / (km["label"] >= 0).sum())
    assert f"({share:.0f} %)" in maps[0].get_title()
    (ax_s,) = map_axes(fig, "spectra")
    lines = [ln for ln in ax_s.get_lines() if str(ln.get_gid()).startswith("spectrum:")]
    assert [ln.get_label() for ln in lines] == [f"C{i}" for i in range(1, K + 1)]
    np.testing.assert_allclose(lines[0].get_ydata(), km["centroid"].values[0])
    # masked pixels stay masked (grey), cluster members are 1
    arr = maps[0].get_images()[0].get_array()
    assert np.ma.getmaskarray(arr)[:4, :5].all()
    assert (arr.filled(-1)[km["label"].values == 0] == 1).all()
    # the label map alone (no one-hot maps) gives the same panels
    fig2 = F.fig_kmeans(km.drop_vars("domain"))
    assert [ax.get_title() for ax in map_axes(fig2)] == [ax.get_title() for ax in maps]


def test_classes_maps_next_to_their_matched_domains(outputs):
    pte, cl, fit = outputs["pte"], outputs["classes"], outputs["fit"]
    fig = F.fig_classes(pte, cl, fit)
    cls_axes = map_axes(fig, "class_map")
    dom_axes = map_axes(fig)
    assert len(cls_axes) == 3 and len(dom_axes) == 4          # PTE map + 3 matched domains
    assert [ax.get_title().split()[0] for ax in cls_axes] == ["D1", "D2", "D3"]
    best = cl["best_domain"].values
    assert [ax.get_title().split("\n")[0] for ax in dom_axes[1:]] == [f"B{b}" for b in best]
    for j, ax in enumerate(dom_axes[1:]):
        assert f"{float(cl['cosine'].values[j, best[j] - 1]):.2f}" in ax.get_title()
        assert ax.get_position().x0 == pytest.approx(cls_axes[j].get_position().x0)     # same column
        assert ax.get_position().y1 < cls_axes[j].get_position().y0                     # below its class
    e_hi, e_lo = cl.attrs["e_high"], cl.attrs["e_low"]
    (thi,) = by_gid(fig, "threshold:e_high")
    (tlo,) = by_gid(fig, "threshold:e_low")
    assert set(thi.get_ydata()) == {e_hi} and set(tlo.get_ydata()) == {e_lo}
    alltext = " ".join(texts(fig))
    assert f"{e_hi:.2f} eV" in alltext and f"{e_lo:.2f} eV" in alltext
    np.testing.assert_array_equal(cls_axes[0].get_images()[0].get_array().filled(np.nan),
                                  cl["indicator"].values[0])
    bad = cl.copy()
    bad["best_domain"] = ("class", np.array([1, 2, K + 3], dtype=np.int32))
    with pytest.raises(InputError, match="does not fit"):
        F.fig_classes(pte, bad, fit)


# ---------------------------------------------------------------------------------------------- saving

def test_save_figure_writes_png_and_pdf_atomically_and_closes(tmp_path):
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2.0, 1.0))
    fig.add_subplot().plot([0, 1], [0, 1])
    num = fig.number
    out = F.save_figure(fig, tmp_path / "sub" / "fig.png", tmp_path / "sub" / "fig.pdf")
    assert [p.name for p in out] == ["fig.png", "fig.pdf"]
    png, pdf = (tmp_path / "sub" / "fig.png").read_bytes(), (tmp_path / "sub" / "fig.pdf").read_bytes()
    assert png.startswith(b"\x89PNG") and pdf.startswith(b"%PDF")
    assert mpimg.imread(tmp_path / "sub" / "fig.png").shape[:2] == (150, 300)      # 150 dpi
    assert sorted(os.listdir(tmp_path / "sub")) == ["fig.pdf", "fig.png"]          # no temp file left
    assert not plt.fignum_exists(num)
    # a bare stem writes both formats
    F.save_figure(F.fig_peak_energy_map(xr.Dataset({"peak_energy": (("y", "x"), np.full((3, 4), 7.0))},
                                                   coords={"y": np.arange(3.0), "x": np.arange(4.0)})),
                  tmp_path / "stem")
    assert (tmp_path / "stem.png").stat().st_size > 0 and (tmp_path / "stem.pdf").stat().st_size > 0


def test_save_figure_failure_leaves_no_partial_file(tmp_path):
    fig = Figure()
    fig.add_subplot()

    def broken(fh, **kw):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    fig.savefig = broken
    with pytest.raises(RuntimeError, match="disk full"):
        F.save_figure(fig, tmp_path / "a.png")
    assert os.listdir(tmp_path) == []
    with pytest.raises(InputError, match="cannot write"):
        F.save_figure(Figure(), tmp_path / "a.jpg")
    assert os.listdir(tmp_path) == []


def test_style_is_applied_and_restored():
    before = matplotlib.rcParams["font.size"]
    fig = F.fig_bcv_domains(xr.Dataset({"mean_error": ("rank", [2.0, 1.0])}, coords={"rank": [1, 2]}),
                            fake_fit(2, 10, 12))
    assert matplotlib.rcParams["font.size"] == before
    assert map_axes(fig)[0].title.get_fontsize() == F.STYLE["axes.titlesize"]


def test_domain_maps_are_scaled_by_a_high_percentile_so_a_hot_pixel_does_not_darken_them():
    fit = fake_fit(2, 20, 20)
    W = fit["W"].values.copy()
    W[0, 10, 10] = 1000.0                                     # one hot pixel
    fit["W"] = (("component", "y", "x"), W)
    fig = F.fig_bcv_domains(xr.Dataset({"mean_error": ("rank", [2.0, 1.0])}, coords={"rank": [1, 2]}), fit)
    shown = map_axes(fig)[0].get_images()[0].get_array().filled(np.nan)
    v = W[0][np.isfinite(W[0]) & (W[0] > 0)]
    np.testing.assert_allclose(shown, W[0] / np.percentile(v, F.WEIGHT_QUANTILE), rtol=1e-6)
    assert np.nanmedian(shown) > 0.3                          # not crushed to black by the hot pixel
    cbars = [ax for ax in fig.axes if ax.get_ylabel() == F.WEIGHT_LABEL]
    assert len(cbars) == 1 and cbars[0]._colorbar.extend == "max"
