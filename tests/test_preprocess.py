"""Preprocessing: normalizations, crop/bin/erange, masks, references, and the shared Fe L-edge stack."""

from __future__ import annotations

import numpy as np
import pytest

from xasnmf import qc
from xasnmf.cube import cube_matrix, make_cube
from xasnmf.errors import InputError
from xasnmf.preprocess import preprocess

E = np.concatenate([np.arange(700.0, 703.0, 0.375), np.arange(703.0, 712.0, 0.202), np.arange(712.0, 720.0, 0.5)])


def _spectra(ny=4, nx=6, seed=0):
    """Baseline line + Gaussian white line + a small step, different per pixel; shape (ny, nx, n)."""
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0.2, 1.0, size=(ny, nx, 1))
    off = rng.uniform(0.1, 0.5, size=(ny, nx, 1))
    slope = rng.uniform(-0.002, 0.002, size=(ny, nx, 1))
    step = rng.uniform(0.05, 0.2, size=(ny, nx, 1))
    g = np.exp(-0.5 * ((E - 708.0) / 0.8) ** 2)
    s = 1.0 / (1.0 + np.exp(-(E - 708.0) / 0.5))
    return off + slope * (E - 700.0) + amp * g + step * s


def _cube(a, **kw):
    return make_cube(a, E, **kw)


def test_edge_paper_rule_first_to_zero_last_to_one():
    a = _spectra()
    out = preprocess(_cube(a), norm="edge")
    v = out["absorbance"].values.astype(float)
    expected = (a - a[..., :1]) / (a[..., -1:] - a[..., :1])
    np.testing.assert_allclose(v, expected, rtol=1e-5, atol=1e-6)
    assert out["absorbance"].attrs["normalized"] == 1
    assert "first energy -> 0" in out["absorbance"].attrs["norm_rule"]
    assert "norm=edge" in out.attrs["history"].splitlines()[-1]


def test_edge_with_pre_post_windows():
    a = _spectra()
    out = preprocess(_cube(a), norm="edge", pre="700:702", post="716:720")
    pre = (E >= 700) & (E <= 702)
    post = (E >= 716) & (E <= 720)
    lo, hi = a[..., pre].mean(-1, keepdims=True), a[..., post].mean(-1, keepdims=True)
    np.testing.assert_allclose(out["absorbance"].values, (a - lo) / (hi - lo), rtol=1e-5, atol=1e-6)


def test_preedge_peak_line_baseline_removes_slope():
    a = _spectra()
    out = preprocess(_cube(a), norm="preedge-peak", pre="700:703", baseline="line")
    v = out["absorbance"].values
    pre = (E >= 700) & (E <= 703)
    # independently: fit a line per pixel with polyfit
    exp = np.empty_like(a)
    for j in range(a.shape[0]):
        for i in range(a.shape[1]):
            c = np.polyfit(E[pre], a[j, i, pre], 1)
            r = a[j, i] - np.polyval(c, E)
            exp[j, i] = r / r[E > E[pre].max()].max()
    np.testing.assert_allclose(v, exp, rtol=1e-4, atol=1e-5)
    assert np.nanmax(v[..., E > 703]) == pytest.approx(1.0, abs=1e-6)


def test_preedge_area_uses_uneven_steps():
    a = _spectra()
    out = preprocess(_cube(a), norm="preedge-area", pre="700:703", edge="705:712")
    w = (E >= 705) & (E <= 712)
    areas = np.trapezoid(out["absorbance"].values[..., w].astype(float), E[w], axis=-1)
    np.testing.assert_allclose(areas, 1.0, rtol=1e-5)


def test_roi_bin_erange_and_coordinates():
    a = _spectra(ny=7, nx=9)
    y = np.arange(7) * 0.5
    x = 100 + np.arange(9) * 0.25
    out = preprocess(_cube(a, y=y, x=x, xy_units="um"), roi="1:7,2:9", bin=2, erange="701:715", norm="none")
    sel = (E >= 701) & (E <= 715)
    crop = a[1:7, 2:8][..., sel]  # 6 x 6 after dropping the leftover column
    exp = crop.reshape(3, 2, 3, 2, -1).mean(axis=(1, 3))
    np.testing.assert_allclose(out["absorbance"].values, exp, rtol=1e-6)
    np.testing.assert_allclose(out["y"].values, y[1:7].reshape(3, 2).mean(1))
    np.testing.assert_allclose(out["x"].values, x[2:8].reshape(3, 2).mean(1))
    np.testing.assert_array_equal(out["energy"].values, E[sel])
    assert out["y"].attrs["units"] == "um"
    assert out["absorbance"].attrs["normalized"] == 0


def test_bin_masks_block_with_a_masked_pixel():
    a = _spectra(ny=4, nx=4)
    a[0, 1, 3] = np.nan
    reason = np.zeros((4, 4), np.int8)
    reason[0, 1] = qc.NONFINITE
    ds = _cube(a, mask=(reason == 0))
    ds["qc_reason"] = (("y", "x"), reason)
    out = preprocess(ds, bin=2, norm="none")
    np.testing.assert_array_equal(out["mask"].values, [[0, 1], [1, 1]])
    assert int(out["qc_reason"].values[0, 0]) == qc.NONFINITE


def test_small_edge_step_pixels_are_masked_and_nan():
    a = _spectra()
    a[1, 2] = 0.3  # flat: zero step
    a[3, 5] = a[3, 5, 0] + 0.001 * (a[3, 5] - a[3, 5, 0])  # tiny step
    out = preprocess(_cube(a), norm="edge")
    r = out["qc_reason"].values
    assert r[1, 2] == qc.BAD_NORMALIZATION and r[3, 5] == qc.SMALL_EDGE_STEP
    assert (out["mask"].values == 0).sum() == 2
    assert np.isnan(out["absorbance"].values[1, 2]).all() and np.isnan(out["absorbance"].values[3, 5]).all()
    # masked pixels are the NaN rows; cube_matrix sees the others
    cm = cube_matrix(out)
    assert cm.X0.shape == (22, E.size) and np.isfinite(cm.X0).all()


def test_min_signal_masks_weak_pixels():
    rng = np.random.default_rng(1)
    a = _spectra()
    a = a + rng.normal(0, 0.005, size=a.shape)
    a[0, 0] = 0.2 + rng.normal(0, 0.005, size=E.size)  # noise only
    out = preprocess(_cube(a), norm="preedge-peak", pre="700:703", min_signal=10, min_step_fraction=0)
    r = out["qc_reason"].values
    assert r[0, 0] == qc.LOW_SIGNAL
    assert (r == 0).sum() == a.shape[0] * a.shape[1] - 1
    noise = (a[0, 0, (E >= 700) & (E <= 703)]).std(ddof=1)
    assert out["qc_noise"].values[0, 0] == pytest.approx(noise, rel=1e-4)


def test_reference_mean_region_and_file(tmp_path):
    a = _spectra()
    out = preprocess(_cube(a), norm="preedge-peak", pre="700:703", reference="mean")
    v = out["absorbance"].values.astype(float)
    np.testing.assert_allclose(out["reference"].values, v.reshape(-1, E.size).mean(0), rtol=1e-5, atol=1e-7)
    out = preprocess(_cube(a), norm="preedge-peak", pre="700:703", reference="region:1:3,2:4")
    np.testing.assert_allclose(out["reference"].values, v[1:3, 2:4].reshape(-1, E.size).mean(0), rtol=1e-5, atol=1e-7)
    # a file on a finer grid, interpolated then normalized by the same rule
    ef = np.linspace(699.0, 721.0, 500)
    rf = 0.3 + 0.7 * np.exp(-0.5 * ((ef - 709.0) / 1.0) ** 2)
    np.savetxt(tmp_path / "ref.r", np.column_stack([ef, rf]))
    out = preprocess(_cube(a), norm="preedge-peak", pre="700:703", reference=str(tmp_path / "ref.r"))
    ri = np.interp(E, ef, rf)
    ri = ri - ri[(E >= 700) & (E <= 703)].mean()
    np.testing.assert_allclose(out["reference"].values, ri / ri[E > 703].max(), rtol=1e-5, atol=1e-6)


def test_user_mask_applies_on_input_grid(tmp_path):
    a = _spectra(ny=4, nx=6)
    m = np.ones((4, 6), bool)
    m[0, :] = False
    m[2, 5] = False
    np.save(tmp_path / "m.npy", m)
    out = preprocess(_cube(a), norm="none", mask=str(tmp_path / "m.npy"), roi="0:4,1:6")
    np.testing.assert_array_equal(out["mask"].values, m[:, 1:6].astype(np.int8))
    assert (out["qc_reason"].values == qc.OUTSIDE_MASK).sum() == (~m[:, 1:6]).sum()


# ----------------------------------------------------------------------------- shared STXM stack
@pytest.fixture(scope="module")
def stxm_od(stxm_dir):
    import warnings

    from xasnmf.io import import_stack

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the real stack has no bad pixel: no warning expected
        return import_stack(stxm_dir / "71214078.hdr", i0=str(stxm_dir / "i0.xsp"))


def _msk(path):
    lines = path.read_text().splitlines()
    return np.array([[c == "O" for c in ln.ljust(125)] for ln in lines])


def test_stxm_msk_mask_count(stxm_od, stxm_dir):
    text = (stxm_dir / "mask_file.msk").read_text()
    n_sel = text.count("O")
    out = preprocess(stxm_od, norm="none", mask=str(stxm_dir / "mask_file.msk"))
    assert int(out["mask"].sum()) == n_sel
    assert 0.27 < n_sel / 125 ** 2 < 0.29
    np.testing.assert_array_equal(out["mask"].values == 1, _msk(stxm_dir / "mask_file.msk"))


def test_stxm_default_edge_norm_refuses_with_distribution(stxm_od):
    od = stxm_od["absorbance"].values.astype(float)
    med = np.median(od[..., -1] - od[..., 0])
    assert med < 0  # independent check of the premise
    with pytest.raises(InputError) as ei:
        preprocess(stxm_od, norm="edge", reference="mean")
    msg = str(ei.value)
    assert "median edge step" in msg and f"{med:.4g}" in msg and "95%" in msg and "preedge-peak" in msg


def test_stxm_preedge_peak_signal_mask_matches_analysts(stxm_od, stxm_dir):
    out = preprocess(stxm_od, norm="preedge-peak", pre="700:705", min_signal=8, reference="mean")
    used = out["mask"].values == 1
    frac = used.mean()
    assert 0.22 < frac < 0.32
    ana = _msk(stxm_dir / "mask_file.msk")
    assert (used == ana).mean() > 0.93  # same pixels as the analysts' Fe mask
    # independent signal: peak above the 700-705 eV mean, in OD
    od = stxm_od["absorbance"].values.astype(float)
    e = stxm_od["energy"].values
    base = od[..., (e >= 700) & (e <= 705)].mean(-1)
    peak = (od[..., e > 705] - base[..., None]).max(-1)
    assert np.median(peak[used]) > 0.15 and np.median(peak[~used]) < 0.1
    assert out["reference"].shape == (e.size,)
    assert 707.5 <= e[int(np.argmax(out["reference"].values))] <= 710.5


def test_stxm_reference_file_reduced_r(stxm_od, stxm_dir):
    out = preprocess(stxm_od, norm="preedge-peak", pre="700:705", min_signal=8,
                     reference=str(stxm_dir / "reduced.r"))
    e = out["energy"].values
    ref = out["reference"].values
    # PROVENANCE.md: the Fe(II)-rich reference has its white line at 708.25 eV
    assert e[int(np.argmax(ref))] == pytest.approx(708.25, abs=0.25)
    assert np.max(ref) == pytest.approx(1.0, abs=1e-6)  # normalized by the same rule (peak -> 1)
    tab = np.loadtxt(stxm_dir / "reduced.r")
    raw = np.interp(e, tab[:, 0], tab[:, 1])
    raw = raw - raw[(e >= 700) & (e <= 705)].mean()
    np.testing.assert_allclose(ref, raw / raw[e > 705].max(), rtol=1e-5, atol=1e-6)


def test_masked_pixels_are_nan_in_fit_maps_non_square(tmp_path):
    """preprocess -> fit: masked pixels are NaN in every output map at the same (y, x)."""
    import xarray as xr

    from xasnmf.cli import main
    from xasnmf.provenance import write_netcdf

    a = _spectra(ny=5, nx=8, seed=3)
    m = np.ones((5, 8), bool)
    m[0, 7] = m[4, 0] = m[2, 3] = False
    np.save(tmp_path / "m.npy", m)
    write_netcdf(_cube(a), tmp_path / "cube.nc")
    assert main(["preprocess", str(tmp_path / "cube.nc"), "-o", str(tmp_path / "pre.nc"), "--norm", "preedge-peak",
                 "--pre", "700:703", "--mask", str(tmp_path / "m.npy"), "--reference", "mean"]) == 0
    pre = xr.load_dataset(tmp_path / "pre.nc")
    np.testing.assert_array_equal(pre["mask"].values == 1, m)
    assert main(["info", str(tmp_path / "pre.nc")]) == 0
    rc = main(["fit", str(tmp_path / "pre.nc"), "--rank", "2", "--restarts", "1", "--seed", "1", "--max-iter", "50",
               "-o", str(tmp_path / "fit.nc")])
    assert rc == 0
    fit = xr.load_dataset(tmp_path / "fit.nc")
    maps = [v for v in fit.data_vars if fit[v].dims[-2:] == ("y", "x") and fit[v].dtype.kind == "f"]
    assert maps
    for v in maps:
        arr = fit[v].values.reshape(-1, 5, 8)
        for layer in arr:
            np.testing.assert_array_equal(np.isnan(layer), ~m)


def test_reference_cube_uses_the_cubes_own_reference_normalized_by_the_same_rule():
    from xasnmf.synthetic import synthesize

    ds = synthesize(shape=(20, 24), n_energies=30, seed=1)
    ref = ds["reference"].values.astype(np.float64)
    ds["reference"] = ("energy", (2.0 * ref + 0.5).astype(np.float32))  # off the normalized scale on purpose
    out = preprocess(ds, norm="edge", reference="cube")
    r = 2.0 * ref + 0.5
    expected = (r - r[0]) / (r[-1] - r[0])
    np.testing.assert_allclose(out["reference"].values, expected, atol=1e-5)


def test_reference_cube_without_reference_is_a_clear_error():
    from xasnmf.synthetic import synthesize

    ds = synthesize(shape=(20, 24), n_energies=30, seed=1).drop_vars("reference")
    with pytest.raises(InputError, match="no variable 'reference'"):
        preprocess(ds, norm="edge", reference="cube")
