"""Vectorized Gaussian peak-top-energy fit vs scipy curve_fit, flags, maps, shared references."""

from __future__ import annotations

import time

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import curve_fit

from xasnmf.cli import main
from xasnmf.cube import make_cube
from xasnmf.errors import InputError
from xasnmf.peak import (FLAG_CENTRE_OUTSIDE, FLAG_FLAT, FLAG_MASKED, FLAG_MAX_AT_EDGE, FLAG_NONFINITE,
                         FLAG_NONPOSITIVE, FLAG_NOT_CONCAVE, FLAG_TOO_FEW_POINTS, fit_peaks, peak_dataset,
                         spectrum_peak_energy)
from xasnmf.provenance import write_netcdf


def gauss(x, a, mu, s):
    return a * np.exp(-0.5 * ((x - mu) / s) ** 2)


def gauss_c(x, a, mu, s, c):
    return a * np.exp(-0.5 * ((x - mu) / s) ** 2) + c


def synthetic(m=150, seed=3):
    rng = np.random.default_rng(seed)
    E = 700.0 + np.cumsum(rng.uniform(0.1, 0.45, 90))         # uneven steps
    mu = rng.uniform(706.0, 718.0, m)
    s = rng.choice([0.35, 0.6, 0.9, 1.3], m)
    a = rng.uniform(0.8, 2.0, m)
    Y = 0.2 + gauss(E[None, :], a[:, None], mu[:, None], s[:, None]) + rng.normal(0, 0.02, (m, E.size))
    return E, Y, mu


@pytest.mark.filterwarnings("ignore::scipy.optimize.OptimizeWarning")
@pytest.mark.parametrize("window", [0.5, 1.0])
def test_agrees_with_curve_fit_uneven_steps(window):
    E, Y, mu_true = synthetic()
    fit = fit_peaks(E, Y, window=window)
    ok = np.flatnonzero(fit.flag == 0)
    assert ok.size >= 0.95 * Y.shape[0]
    dev = []
    for i in ok:
        sl = slice(fit.first[i], fit.last[i] + 1)
        # the window is the points within +/- window eV of the sampled maximum, by actual energy
        imax = int(np.argmax(Y[i]))
        np.testing.assert_array_equal(np.flatnonzero(np.abs(E - E[imax]) <= window + 1e-9),
                                      np.arange(fit.first[i], fit.last[i] + 1))
        p, _ = curve_fit(gauss, E[sl], Y[i, sl], p0=[Y[i, imax], E[imax], window / 2], maxfev=20000)
        dev.append(p[1] - fit.energy[i])
    assert np.max(np.abs(dev)) < 0.02
    # and the fit finds the planted centres (noise and the 0.2 baseline limit this, not the solver)
    assert np.median(np.abs(fit.energy[ok] - mu_true[ok])) < 0.05


@pytest.mark.filterwarnings("ignore::scipy.optimize.OptimizeWarning")
def test_offset_model_agrees_with_curve_fit():
    E, Y, _ = synthetic(m=60, seed=5)
    fit = fit_peaks(E, Y, window=1.2, offset=True)
    ok = np.flatnonzero(fit.flag == 0)
    assert ok.size >= 50
    dev = []
    for i in ok:
        sl = slice(fit.first[i], fit.last[i] + 1)
        imax = int(np.argmax(Y[i]))
        p, _ = curve_fit(gauss_c, E[sl], Y[i, sl], p0=[Y[i, imax], E[imax], 0.6, 0.0], maxfev=20000)
        dev.append(p[1] - fit.energy[i])
    assert np.max(np.abs(dev)) < 0.02


def test_flags_flat_monotone_negative_and_others():
    E = 700.0 + np.arange(40) * 0.25
    flat = np.ones(40)
    mono = np.linspace(1, 2, 40)
    neg = -2 + gauss(E, 1.0, 705.0, 1.0)
    concave_fail = np.full(40, 0.1)
    concave_fail[18:23] = [0.99, 0.5, 1.0, 0.5, 0.99]    # log-parabola (weights y^2) opens upward
    spike = np.ones(40)
    spike[19:22] = [0.2, 1.5, 0.2]                         # LSQ Gaussian of the window is broad and off-centre
    good = gauss(E, 1.0, 705.1, 0.7)
    nan = good.copy()
    nan[3] = np.nan
    Y = np.stack([flat, mono, neg, concave_fail, spike, good, nan, good])
    valid = np.array([True] * 7 + [False])
    fit = fit_peaks(E, Y, window=0.5, valid=valid)
    np.testing.assert_array_equal(fit.flag, [FLAG_FLAT, FLAG_MAX_AT_EDGE, FLAG_NONPOSITIVE, FLAG_NOT_CONCAVE,
                                             FLAG_CENTRE_OUTSIDE, 0, FLAG_NONFINITE, FLAG_MASKED])
    assert np.isnan(fit.energy[[0, 1, 2, 3, 4, 6, 7]]).all()
    assert np.isnan(fit.width[[0, 1, 2, 3, 4, 6, 7]]).all()
    # a noiseless Gaussian is recovered exactly (off-grid centre, window asymmetric about it)
    np.testing.assert_allclose([fit.energy[5], fit.width[5], fit.amplitude[5]], [705.1, 0.7, 1.0], atol=1e-6)
    tiny = fit_peaks(E, good[None], window=0.1)            # one point in the window
    assert tiny.flag[0] == FLAG_TOO_FEW_POINTS and np.isnan(tiny.energy[0])


def test_energy_range_restricts_the_maximum():
    E = np.linspace(700, 730, 151)
    y = 0.1 + gauss(E, 1.0, 708.0, 0.6) + gauss(E, 2.0, 721.0, 0.8)
    assert abs(fit_peaks(E, y[None]).energy[0] - 721.0) < 0.01
    assert abs(fit_peaks(E, y[None], energy_range=(705, 712)).energy[0] - 708.0) < 0.02


def test_bad_parameters_raise_input_error():
    E = np.linspace(700, 710, 20)
    with pytest.raises(InputError, match="window"):
        fit_peaks(E, np.ones((2, 20)), window=-1)
    with pytest.raises(InputError, match=r"\(m, 20\)"):
        fit_peaks(E, np.ones((2, 19)))
    with pytest.raises(InputError, match="strictly increasing"):
        fit_peaks(E[::-1], np.ones((2, 20)))
    with pytest.raises(InputError, match="energy_range"):
        fit_peaks(E, np.ones((2, 20)), energy_range=(720, 730))


def test_90000_pixels_in_seconds():
    rng = np.random.default_rng(0)
    E = 700.0 + np.cumsum(rng.uniform(0.15, 0.4, 100))
    mu = rng.uniform(708, 714, 90000)
    Y = 0.3 + gauss(E[None, :], 1.0, mu[:, None], 0.8) + rng.normal(0, 0.03, (90000, 100))
    t0 = time.perf_counter()
    fit = fit_peaks(E, Y, window=0.5)
    dt = time.perf_counter() - t0
    assert dt < 20.0, f"{dt:.1f} s"
    ok = fit.flag == 0
    assert ok.mean() > 0.98
    assert np.median(np.abs(fit.energy[ok] - mu[ok])) < 0.1


def test_peak_dataset_masks_and_units():
    rng = np.random.default_rng(1)
    E = 705.0 + np.cumsum(rng.uniform(0.15, 0.35, 40))
    mu = np.array([[707.5, 708.0, 708.5], [709.0, 709.5, 710.0]])
    cube = 0.05 + gauss(E[None, None, :], 1.0, mu[..., None], 0.6)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    ds = peak_dataset(make_cube(cube, E, mask=mask), window=0.6)
    pe = ds["peak_energy"].values
    assert np.isnan(pe[0, 2]) and ds["peak_flag"].values[0, 2] == FLAG_MASKED
    valid = mask == 1
    np.testing.assert_allclose(pe[valid], mu[valid], atol=2e-3)   # float32 cube
    assert ds["peak_energy"].attrs["units"] == "eV" and ds["peak_width"].attrs["units"] == "eV"
    assert ds.attrs["n_fitted"] == 5 and ds.attrs["peak_window_eV"] == 0.6


def test_spectrum_peak_energy_rows():
    E = np.linspace(700, 720, 101)
    S = np.stack([0.2 + gauss(E, 1.0, c, 0.8) for c in (706.3, 709.9, 712.05)])
    fit = spectrum_peak_energy(E, S, window=1.0, offset=True)
    np.testing.assert_allclose(fit.energy, [706.3, 709.9, 712.05], atol=1e-6)
    np.testing.assert_allclose(fit.offset, 0.2, atol=1e-6)
    # without the offset term the 0.2 baseline pulls centres toward the window middle (sampled maximum)
    plain = spectrum_peak_energy(E, S, window=1.0)
    assert 1e-4 < abs(plain.energy[0] - 706.3) < 0.02


def test_cli_peak(tmp_path, capsys):
    E = np.linspace(700, 715, 61)
    mu = np.array([[706.0, 707.0], [708.0, 709.0]])
    cube = 0.05 + gauss(E[None, None, :], 1.0, mu[..., None], 0.6)
    write_netcdf(make_cube(cube, E), tmp_path / "c.nc")
    assert main(["peak", str(tmp_path / "c.nc"), "--window", "0.8", "-o", str(tmp_path / "PTE.nc")]) == 0
    ds = xr.load_dataset(tmp_path / "PTE.nc")
    np.testing.assert_allclose(ds["peak_energy"].values, mu, atol=2e-3)
    assert main(["peak", str(tmp_path / "c.nc"), "--window", "0", "-o", str(tmp_path / "x.nc")]) == 2
    assert "window" in capsys.readouterr().err


@pytest.mark.parametrize("name, expected", [("reduced.r", 708.25), ("oxidized.r", 709.67)])
def test_shared_reference_spectra(stxm_dir, name, expected):
    e, v = np.loadtxt(stxm_dir / name, unpack=True)
    fit = fit_peaks(e, v[None, :])
    assert fit.flag[0] == 0
    assert abs(fit.energy[0] - expected) <= 0.2
