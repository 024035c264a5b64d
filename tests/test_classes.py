"""Peak-top-energy threshold classes (Table II), the threshold search, Table III and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xasnmf.classes import domain_peaks, domain_peaks_csv, threshold_classes
from xasnmf.cli import main
from xasnmf.errors import InputError
from xasnmf.provenance import write_netcdf


def planted_map(seed=0):
    """20 x 20 map: regions R1 (PTE 709.5-710), R2 (708.5-709), R3 (707.5-708); W1 = 2*R3, W2 = R1/2, W3 = R2."""
    rng = np.random.default_rng(seed)
    region = rng.integers(0, 3, (20, 20))                 # 0 = R1 high, 1 = R2 mid, 2 = R3 low
    lo = np.array([709.5, 708.5, 707.5])
    pte = lo[region] + rng.uniform(0, 0.5, (20, 20))
    W = np.stack([2.0 * (region == 2), 0.5 * (region == 0), 1.0 * (region == 1),
                  rng.uniform(0, 1, (20, 20))]).astype(float)
    W[:, 0, 0] = np.nan                                    # masked in the fit
    pte[1, 1] = np.nan                                     # unfitted pixel
    return pte, W, region


def test_known_optimal_thresholds_exact():
    pte, W, region = planted_map()
    valid = np.isfinite(pte) & np.isfinite(W).all(axis=0)
    res = threshold_classes(pte, W, n_grid=1000)           # grid finer than the 398 pixels: every PTE a candidate
    # perfect D1 <-> W2 needs max(R2) <= E_high < min(R1); the smallest such candidate is max(R2), etc.
    assert res.e_high == pte[valid & (region == 1)].max()
    assert res.e_low == pte[valid & (region == 2)].max()
    np.testing.assert_array_equal(res.best, [1, 2, 0])
    np.testing.assert_allclose(res.cosine[[0, 1, 2], [1, 2, 0]], 1.0, atol=1e-12)
    np.testing.assert_array_equal(res.class_map[valid], region[valid] + 1)
    assert res.class_map[0, 0] == 0 and res.class_map[1, 1] == 0 and res.n_pixels == valid.sum()
    assert np.isnan(res.indicators[:, 1, 1]).all()
    assert not res.constrained


def _brute_scores(pte, W, cand):
    valid = np.isfinite(pte) & np.isfinite(W).all(axis=0)
    p = pte[valid]
    Wv = W[:, valid]
    hi, lo = [], []
    for t in cand:
        for sel, out in ((p > t, hi), (p <= t, lo)):
            d = sel.astype(float)
            if d.sum() == 0:
                out.append(0.0)
                continue
            out.append(max(float(w @ d) / (np.linalg.norm(w) * np.linalg.norm(d)) for w in Wv))
    return np.array(hi), np.array(lo)


def test_search_matches_brute_force_on_soft_maps():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:30, 0:30]
    pte = 708.0 + 0.05 * xx + rng.normal(0, 0.1, (30, 30))
    W = np.stack([np.clip(1 - xx / 12, 0, None), np.exp(-((xx - 15) / 5.0) ** 2), np.clip(xx / 15 - 1, 0, None)])
    W += rng.uniform(0, 0.2, W.shape)
    res = threshold_classes(pte, W, n_grid=50)
    hi, lo = _brute_scores(pte, W, res.candidates)
    np.testing.assert_allclose(res.score_high, hi, atol=1e-12)
    np.testing.assert_allclose(res.score_low, lo, atol=1e-12)
    assert res.e_high == res.candidates[np.argmax(hi)] and res.e_low == res.candidates[np.argmax(lo)]
    assert res.e_low < res.e_high
    assert res.best[0] == 2 and res.best[2] == 0         # high PTE at large x matches W3, low matches W1
    # candidates are observed PTE quantiles
    assert np.isin(res.candidates, pte).all() and res.candidates.size <= 50


def test_constraint_e_low_below_e_high_enforced():
    rng = np.random.default_rng(5)
    pte = rng.uniform(707, 710, (12, 12))
    W = np.ones((1, 12, 12))        # one flat domain: alone, D_low wants everything, D_high too
    res = threshold_classes(pte, W, n_grid=40)
    hi, lo = _brute_scores(pte, W, res.candidates)
    assert res.candidates[np.argmax(lo)] >= res.candidates[np.argmax(hi)]   # independent optima conflict
    assert res.constrained and res.e_low < res.e_high
    c = res.candidates
    S = np.where(c[:, None] < c[None, :], lo[:, None] + hi[None, :], -np.inf)
    il, ih = np.unravel_index(np.argmax(S), S.shape)
    assert (res.e_low, res.e_high) == (c[il], c[ih])


def test_bad_inputs():
    pte, W, _ = planted_map()
    with pytest.raises(InputError, match="PTE grid"):
        threshold_classes(pte, W[:, :10])
    with pytest.raises(InputError, match="at least 3"):
        threshold_classes(pte, W, n_grid=2)
    with pytest.raises(InputError, match="distinct"):
        threshold_classes(np.full((20, 20), 708.0), W)


E = np.linspace(705, 712, 71)
SPECTRA = np.stack([np.exp(-0.5 * ((E - c) / 0.7) ** 2) for c in (707.0, 708.3, 709.6)])


def test_domain_peaks_sides():
    dp = domain_peaks(E, SPECTRA, e_high=709.0, e_low=708.0, best=np.array([2, 1, 0]), window=0.8)
    np.testing.assert_allclose(dp.energy, [707.0, 708.3, 709.6], atol=1e-6)
    assert dp.matched == ["B3", "B2", "B1"] and dp.expected == [True, True, True]
    dp2 = domain_peaks(E, SPECTRA, e_high=709.0, e_low=708.0, best=np.array([0, 1, 2]), window=0.8)
    assert dp2.expected == [False, True, False]
    lines = domain_peaks_csv(dp2).splitlines()
    assert lines[1] == "B1,707.000,0,D1,PTE > E_high,false"
    assert lines[3] == "B3,709.600,0,D3,PTE <= E_low,false"
    with pytest.raises(InputError, match="best domains"):
        domain_peaks(E, SPECTRA, e_high=709.0, e_low=708.0, best=np.array([0, 1, 5]))


def test_cli_classes_and_domain_peaks(tmp_path, capsys):
    pte, W, region = planted_map()
    coords = {"y": np.arange(20.0), "x": np.arange(20.0)}
    pds = xr.Dataset({"peak_energy": (("y", "x"), pte, {"units": "eV"})}, coords=coords,
                     attrs={"peak_window_eV": 0.8, "peak_offset_model": 0})
    # FIT spectra: B1 (matches D3) low, B2 (D1) high, B3 (D2) mid
    spec = np.stack([SPECTRA[0], SPECTRA[2], SPECTRA[1], SPECTRA[1]])
    fit = xr.Dataset({"W": (("component", "y", "x"), W), "spectrum": (("component", "energy"), spec)},
                     coords={**coords, "energy": E})
    write_netcdf(pds, tmp_path / "PTE.nc")
    write_netcdf(fit, tmp_path / "FIT.nc")
    assert main(["classes", str(tmp_path / "PTE.nc"), str(tmp_path / "FIT.nc"), "--grid", "1000",
                 "-o", str(tmp_path / "T2.csv")]) == 0
    t2 = pd.read_csv(tmp_path / "T2.csv", index_col=0)
    assert list(t2.index) == ["D1", "D2", "D3"] and list(t2.columns) == ["B1", "B2", "B3", "B4"]
    np.testing.assert_allclose([t2.loc["D1", "B2"], t2.loc["D2", "B3"], t2.loc["D3", "B1"]], 1.0, atol=1e-4)
    cls = xr.load_dataset(tmp_path / "T2.nc")
    valid = np.isfinite(pte) & np.isfinite(W).all(axis=0)
    assert cls.attrs["e_high"] == pytest.approx(pte[valid & (region == 1)].max())
    np.testing.assert_array_equal(cls["best_domain"].values, [2, 3, 1])
    assert (tmp_path / "T2.md").exists() and (tmp_path / "T2.tex").exists()
    assert main(["domain-peaks", str(tmp_path / "FIT.nc"), "--classes", str(tmp_path / "T2.nc"),
                 "-o", str(tmp_path / "T3.csv")]) == 0
    t3 = pd.read_csv(tmp_path / "T3.csv")
    np.testing.assert_allclose(t3["peak_energy_eV"], [707.0, 709.6, 708.3, 708.3], atol=1e-3)
    assert list(t3["on_expected_side"].iloc[:3]) == [True, True, True]   # B1<-D3, B2<-D1, B3<-D2
    assert "on the expected side: yes" in (tmp_path / "T3.md").read_text()
    capsys.readouterr()
    assert main(["classes", str(tmp_path / "FIT.nc"), str(tmp_path / "FIT.nc"), "-o", str(tmp_path / "x.csv")]) == 2
    assert "peak_energy" in capsys.readouterr().err


def test_distinct_domains_option_matches_brute_force():
    rng = np.random.default_rng(11)
    pte = rng.uniform(707, 710, (15, 15))
    W = np.stack([np.ones((15, 15)),                  # a domain covering everything ...
                  rng.uniform(0, 1, (15, 15))])       # ... beats a featureless one for every class
    plain = threshold_classes(pte, W, n_grid=30)
    assert plain.best[0] == plain.best[2] == 0        # the flat domain is the best match of both classes
    res = threshold_classes(pte, W, n_grid=30, distinct=True)
    assert res.constrained and res.distinct and res.best[0] != res.best[2]
    # brute force over all pairs E_low < E_high and domains j (D_high) != k (D_low)
    p, Wv, c = pte.ravel(), W.reshape(2, -1), res.candidates
    cos = lambda w, d: 0.0 if d.sum() == 0 else float(w @ d) / (np.linalg.norm(w) * np.linalg.norm(d))
    best = (-1.0, None)
    for a, tl in enumerate(c):
        for b, th in enumerate(c):
            if not tl < th:
                continue
            for j in range(2):
                for k in range(2):
                    if j != k:
                        v = cos(Wv[j], (p > th).astype(float)) + cos(Wv[k], (p <= tl).astype(float))
                        if v > best[0] + 1e-12:
                            best = (v, (tl, th, j, k))
    tl, th, j, k = best[1]
    assert (res.e_low, res.e_high) == (tl, th)
    assert (res.best[0], res.best[2]) == (j, k)
