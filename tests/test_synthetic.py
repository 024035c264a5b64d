"""Synthetic ground-truth generator (issue #4): determinism, domains, spectra, X0, CLI."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage
from scipy.special import erf

from xasnmf.cli import main
from xasnmf.cube import open_cube
from xasnmf.errors import InputError, XasnmfWarning
from xasnmf.synthetic import SPECTRUM_PARAMS, make_domains, make_spectra, synthesize

SMALL = dict(shape=(60, 80), n_domains=6, n_energies=40)


@pytest.fixture(scope="module")
def noisy():
    return synthesize(**SMALL, noise=0.01, seed=1)


@pytest.fixture(scope="module")
def clean():
    return synthesize(**SMALL, noise=0.0, seed=1)


def _independent_spectrum(e, p):
    """The spectrum model written out again, from the stored parameters."""
    raw = (0.5 * (1 + erf((e - p["edge_center"]) / (math.sqrt(2) * p["edge_width"])))
           + p["wl_height"] * np.exp(-0.5 * ((e - p["wl_center"]) / p["wl_width"]) ** 2)
           + p["pe_height"] * np.exp(-0.5 * ((e - p["pe_center"]) / p["pe_width"]) ** 2))
    return (raw - raw[0]) / (raw[-1] - raw[0]), raw


def _params(ds, j):
    return {str(n): float(v) for n, v in zip(ds["spectrum_param"].values, ds["truth_spectrum_param"].values[j])}


def test_same_seed_identical_different_seed_different(noisy):
    again = synthesize(**SMALL, noise=0.01, seed=1)
    for var in ("absorbance", "truth_W", "truth_H", "truth_label", "reference"):
        assert np.array_equal(noisy[var].values, again[var].values), var
    other = synthesize(**SMALL, noise=0.01, seed=2)
    assert not np.array_equal(noisy["truth_label"].values, other["truth_label"].values)
    assert not np.allclose(noisy["truth_H"].values, other["truth_H"].values)
    assert not np.allclose(noisy["absorbance"].values, other["absorbance"].values)


def test_noise_level_keeps_domains_and_spectra(noisy, clean):
    # independent child streams: changing the noise must not change the truth
    assert np.array_equal(noisy["truth_W"].values, clean["truth_W"].values)
    assert np.array_equal(noisy["truth_H"].values, clean["truth_H"].values)


def test_every_pixel_labelled_one_hot_partition(clean):
    k = clean.sizes["component"]
    np.testing.assert_array_equal(clean["component"].values, np.arange(1, k + 1))
    assert list(clean["truth_name"].values) == [f"g{j}" for j in range(1, k + 1)]
    lab = clean["truth_label"].values - 1               # labels are component values 1..k
    W = clean["truth_W"].values
    m = lab.size
    assert lab.shape == (60, 80) and lab.min() >= 0 and lab.max() < k
    counts = np.bincount(lab.ravel(), minlength=k)
    assert counts.min() >= 0.02 * m                      # every domain non-empty, >= min_fraction
    assert counts.max() > 2 * counts.min()               # sizes not all equal
    assert set(np.unique(W)) <= {0.0, 1.0}
    np.testing.assert_array_equal(W.sum(axis=0), 1.0)
    np.testing.assert_array_equal(np.argmax(W, axis=0), lab)
    np.testing.assert_array_equal(clean["truth_pixel_count"].values, counts)
    np.testing.assert_allclose(clean["truth_fraction"].values, counts / m)
    for j in range(k):                                   # separate regions: one piece each
        assert ndimage.label(lab == j)[1] == 1


def test_spectra_endpoints_monotone_edge_peaks_inside(clean):
    e = clean["energy"].values
    H = clean["truth_H"].values
    np.testing.assert_allclose(H[:, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(H[:, -1], 1.0, atol=1e-12)
    for j in range(H.shape[0]):
        p = _params(clean, j)
        spec, raw = _independent_spectrum(e, p)
        np.testing.assert_allclose(H[j], spec, atol=1e-12)
        edge = 0.5 * (1 + erf((e - p["edge_center"]) / (math.sqrt(2) * p["edge_width"])))
        assert np.all(np.diff(edge) >= 0) and edge[0] < 0.01 and edge[-1] > 0.99
        for c, w in ((p["wl_center"], p["wl_width"]), (p["pe_center"], p["pe_width"])):
            assert e[0] + 2 * w < c < e[-1] - w
        top = e[np.argmax(H[j])]
        assert 0 < np.argmax(H[j]) < e.size - 1
        assert abs(top - p["wl_center"]) < 1.5
        assert abs(clean["truth_peak_top_energy"].values[j] - top) <= (e[1] - e[0])
    # small differences against the common shape, but not zero
    D = H - clean["reference"].values[None, :]
    assert 0.02 < np.abs(D).max() < 0.3
    pte = clean["truth_peak_top_energy"].values
    assert 0.2 < np.ptp(pte) < 1.5                        # Table III spans 0.73 eV


def test_reference_is_the_family_nominal_member(clean):
    e = clean["energy"].values
    p = {str(n): float(v) for n, v in zip(clean["spectrum_param"].values, clean["reference_spectrum_param"].values)}
    spec, _ = _independent_spectrum(e, p)
    np.testing.assert_allclose(clean["reference"].values, spec, atol=1e-6)     # stored as float32
    assert p["wl_center"] == pytest.approx(e[0] + 29.9 / 40 * (e[-1] - e[0]))


def test_spectra_linearly_independent_enough(clean):
    H = clean["truth_H"].values
    D = H - clean["reference"].values.astype(np.float64)[None, :]
    sv = np.linalg.svd(D, compute_uv=False)
    assert sv[-1] >= 0.004 * math.sqrt(H.shape[1]) - 1e-6
    # signal singular values of W_g (H_g - b): for a partition, sqrt(pixel count) weights the rows
    counts = clean["truth_pixel_count"].values.astype(float)
    Dexact = H - np.asarray(clean["reference"].values, dtype=np.float64)
    expect = np.linalg.svd(np.sqrt(counts)[:, None] * Dexact, compute_uv=False)
    np.testing.assert_allclose(clean.attrs["truth_signal_singular_values"], expect, rtol=1e-5)


def test_clean_X0_is_W_times_H(clean, noisy):
    W = clean["truth_W"].values
    H = clean["truth_H"].values
    X0 = np.einsum("kyx,ke->yxe", W.astype(np.float64), H)
    np.testing.assert_allclose(clean["absorbance"].values, X0, atol=1e-6)
    assert clean["absorbance"].attrs["normalized"] == 1
    assert clean["absorbance"].attrs["norm_rule"] == "synthetic: spectra built with 0 at first and 1 at last energy"
    resid = noisy["absorbance"].values - X0
    assert resid.std() == pytest.approx(0.01, rel=0.03)
    assert abs(resid.mean()) < 5e-4
    assert noisy["absorbance"].attrs["normalized"] == 0 and "norm_rule" not in noisy["absorbance"].attrs
    assert noisy["absorbance"].attrs["normalized_in_expectation"] == 1


def test_thickness_scales_pixels_and_edge_normalization_removes_it(clean):
    ds = synthesize(**SMALL, noise=0.0, thickness_variation=0.2, seed=1)
    t = ds["truth_thickness"].values
    assert 0.1 < np.std(np.log(t)) < 0.3
    W, H = ds["truth_W"].values, ds["truth_H"].values
    np.testing.assert_allclose(ds["absorbance"].values, t[..., None] * np.einsum("kyx,ke->yxe", W, H), rtol=2e-6, atol=1e-7)
    a = ds["absorbance"].values.astype(np.float64)
    norm = (a - a[..., :1]) / (a[..., -1:] - a[..., :1])
    np.testing.assert_allclose(norm, clean["absorbance"].values, atol=2e-6)
    assert ds["absorbance"].attrs["normalized"] == 0
    assert ds["absorbance"].attrs["normalized_in_expectation"] == 0
    np.testing.assert_array_equal(ds["truth_W"].values, clean["truth_W"].values)


def test_overlap_gives_mixed_pixels_summing_to_one():
    ds = synthesize(**SMALL, noise=0.0, overlap=2.0, seed=1)
    W = ds["truth_W"].values.astype(np.float64)
    assert W.min() >= 0
    np.testing.assert_allclose(W.sum(axis=0), 1.0, atol=1e-6)
    mixed = np.mean(W.max(axis=0) < 0.999)
    assert 0.05 < mixed < 0.8
    np.testing.assert_array_equal(ds["truth_label"].values, np.argmax(W, axis=0) + 1)
    np.testing.assert_allclose(ds["absorbance"].values, np.einsum("kyx,ke->yxe", W, ds["truth_H"].values), atol=1e-6)
    assert ds["absorbance"].attrs["normalized"] == 1     # memberships sum to 1: still 0 .. 1


def test_make_domains_direct():
    d1 = make_domains((50, 50), 4, rng=np.random.default_rng(7), min_fraction=0.05)
    d2 = make_domains((50, 50), 4, rng=np.random.default_rng(7), min_fraction=0.05)
    np.testing.assert_array_equal(d1.label, d2.label)
    assert d1.W.shape == (4, 50, 50)
    assert np.bincount(d1.label.ravel(), minlength=4).min() >= 0.05 * 2500
    one = make_domains((20, 20), 1, rng=np.random.default_rng(0))
    assert np.all(one.label == 0) and np.all(one.W == 1)


def test_make_spectra_warns_beyond_eight_parameters():
    e = np.linspace(7700, 7740, 100)
    with pytest.warns(XasnmfWarning, match="nearly linearly dependent"):
        make_spectra(e, 10, rng=np.random.default_rng(0), max_tries=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = make_spectra(e, 8, rng=np.random.default_rng(0))
    assert s.H.shape == (8, 100) and set(s.params) == set(SPECTRUM_PARAMS)


@pytest.mark.parametrize("kwargs, where", [
    (dict(n_domains=0), "n_domains"),
    (dict(shape=(10, 10), n_domains=8), "shape"),
    (dict(shape=(3, 300)), "shape"),
    (dict(erange=(7740.0, 7700.0)), "erange"),
    (dict(noise=-0.1), "noise"),
    (dict(thickness_variation=float("nan")), "thickness_variation"),
    (dict(overlap=-1), "overlap"),
    (dict(seed=-3), "seed"),
    (dict(n_energies=5), "n_energies"),
    (dict(n_domains=30, shape=(100, 100)), "min_fraction"),
])
def test_bad_parameters_raise_input_error(kwargs, where):
    with pytest.raises(InputError) as exc:
        synthesize(**{**SMALL, **kwargs})
    assert exc.value.source.startswith(where)
    assert exc.value.fix


def test_paper_default_size_fast_and_identifiable():
    t0 = time.perf_counter()
    ds = synthesize()
    dt = time.perf_counter() - t0
    assert dt < 5.0, f"synthesize() took {dt:.1f} s"
    assert ds["absorbance"].shape == (400, 400, 100)
    assert ds["energy"].values[0] == 7700.0 and ds["energy"].values[-1] == 7740.0
    counts = np.bincount(ds["truth_label"].values.ravel() - 1, minlength=8)
    assert counts.size == 8 and counts.min() >= 0.02 * 160000
    # rank 8 above the noise: the smallest signal singular value clears the noise bulk edge
    assert min(ds.attrs["truth_signal_singular_values"]) > 2 * 0.01 * (400 + 10)


def test_cli_synth_writes_canonical_cube(tmp_path, capsys):
    out = tmp_path / "s.nc"
    rc = main(["synth", "-o", str(out), "--shape", "30", "40", "--domains", "3", "--energies", "40",
               "--erange", "7700:7740", "--noise", "0.005", "--seed", "4"])
    assert rc == 0 and "3 domains" in capsys.readouterr().out
    ds = open_cube(out)
    ref = synthesize(shape=(30, 40), n_domains=3, n_energies=40, noise=0.005, seed=4)
    np.testing.assert_array_equal(ds["absorbance"].values, ref["absorbance"].values)
    np.testing.assert_array_equal(ds["truth_W"].values, ref["truth_W"].values)
    assert ds.attrs["param_seed"] == 4 and ds.attrs["param_n_domains"] == 3
    assert ds["energy"].attrs["units"] == "eV"
    assert list(ds["truth_name"].values) == ["g1", "g2", "g3"]
    assert isinstance(xr.load_dataset(out)["truth_label"].values[0, 0], np.integer)


def test_cli_synth_bad_erange_exit_2(tmp_path, capsys):
    assert main(["synth", "-o", str(tmp_path / "x.nc"), "--erange", "7740:7700"]) == 2
    err = capsys.readouterr().err
    assert "erange" in err and "7700:7740" in err
    assert not (tmp_path / "x.nc").exists()
