"""Scorer (issue #4): Hungarian matching on cosine, spectrum RMSE, unmatched extras, BCV check, CLI."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest
import xarray as xr

from xasnmf.cli import main
from xasnmf.errors import InputError
from xasnmf.provenance import write_netcdf
from xasnmf.score import format_summary, match_domains, score_bcv, score_fit
from xasnmf.synthetic import synthesize

K = 6


@pytest.fixture(scope="module")
def truth():
    return synthesize(shape=(60, 80), n_domains=K, n_energies=40, noise=0.01, seed=1)


def _fit_ds(W, truth, *, spectrum=None):
    """A Dataset in the fit-file layout: W(component, y, x), spectrum(component, energy)."""
    r = W.shape[0]
    X0 = truth["absorbance"].values.reshape(-1, truth.sizes["energy"]).astype(np.float64)
    if spectrum is None:
        Wm = np.nan_to_num(W.reshape(r, -1)).T
        spectrum = (Wm.T @ X0) / Wm.sum(axis=0)[:, None]
    return xr.Dataset(
        {"W": (("component", "y", "x"), W), "spectrum": (("component", "energy"), spectrum),
         "H": (("component", "energy"), spectrum - truth["reference"].values[None, :])},
        coords={"component": np.arange(1, r + 1), "y": truth["y"].values,     # 1-based, as `xasnmf fit` "x": truth["x"].values,
                "energy": truth["energy"].values},
        attrs={"rank": r, "seed": 0})


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_truth_itself_scores_one(truth):
    W = truth["truth_W"].values.astype(np.float64)
    s = score_fit(_fit_ds(W, truth, spectrum=truth["truth_H"].values), truth)
    assert s["passed"] and s["all_matched"]
    assert s["unmatched_fit"] == [] and s["unmatched_true"] == []
    for d in s["domains"]:
        assert d["fit"] == d["true"]
        assert d["cosine"] == pytest.approx(1.0, abs=1e-12)
        assert d["spectrum_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert s["min_cosine"] == pytest.approx(1.0, abs=1e-12)
    assert s["label_accuracy"] == 1.0
    json.dumps(s, allow_nan=False)


def test_shuffled_rescaled_copy_recovers_permutation(truth):
    rng = np.random.default_rng(5)
    perm = rng.permutation(K)                      # fit component i is true domain perm[i]
    scale = rng.uniform(0.2, 5.0, K)
    W = truth["truth_W"].values.astype(np.float64)[perm] * scale[:, None, None]
    s = score_fit(_fit_ds(W, truth), truth)
    assert s["match"]["pairs"] == sorted([[int(i), int(perm[i])] for i in range(K)], key=lambda p: p[1])
    for d in s["domains"]:
        assert perm[d["fit"]] == d["true"]
        assert d["fit_component"] == d["fit"] + 1 and d["true_component"] == d["true"] + 1
        assert d["cosine"] == pytest.approx(1.0, abs=1e-12)
    assert s["passed"] and s["label_accuracy"] == 1.0


def test_spectrum_rmse_matches_independent_computation(truth):
    perm = np.array([3, 0, 5, 1, 4, 2])
    W = truth["truth_W"].values.astype(np.float64)[perm] * 2.0
    fit = _fit_ds(W, truth)
    s = score_fit(fit, truth)
    X0 = truth["absorbance"].values.reshape(-1, 40).astype(np.float64)
    H = truth["truth_H"].values
    for i in range(K):
        j = perm[i]
        w = W[i].ravel()
        spec = w @ X0 / w.sum()                    # weighted-mean spectrum, written out again
        expect = np.sqrt(np.mean((spec - H[j]) ** 2))
        assert s["domains"][j]["spectrum_rmse"] == pytest.approx(expect, rel=1e-9)
        # noise 0.01 averaged over >= 2 % of 4800 pixels: small but not zero
        assert 1e-5 < expect < 0.01
    assert s["spectrum_rmse_max"] == pytest.approx(max(d["spectrum_rmse"] for d in s["domains"]))


def test_noisy_maps_cosines_equal_independent_values_and_nan_pixels_ignored(truth):
    rng = np.random.default_rng(2)
    Wt = truth["truth_W"].values.astype(np.float64)
    W = np.clip(Wt + 0.3 * rng.random(Wt.shape), 0, None)
    W[:, :5, :] = np.nan                           # masked rows
    s = score_fit(_fit_ds(W, truth), truth)
    keep = np.isfinite(W[0]).ravel()
    for j in range(K):
        expect = _cos(W[j].ravel()[keep], Wt[j].ravel()[keep])
        assert s["domains"][j]["cosine"] == pytest.approx(expect, rel=1e-12)
        assert s["domains"][j]["fit"] == j
    assert s["n_pixels"] == keep.sum() == 55 * 80
    assert s["min_cosine"] < 0.95 and not s["passed"]
    assert "<--" in format_summary(s)


def test_hungarian_beats_greedy_and_is_optimal():
    # greedy would take the 0.7 pair (fit 0 -> true 0) and be left with 0.1; optimum is 0.6 + 0.6
    C_target = np.array([[0.7, 0.6], [0.6, 0.1]])
    # build non-negative maps with exactly these cosines: true = unit basis vectors e0, e1 (plus a third axis)
    def col(c0, c1):
        rest = np.sqrt(max(0.0, 1 - c0 ** 2 - c1 ** 2))
        return np.array([c0, c1, rest])
    A = np.stack([col(*C_target[0]), col(*C_target[1])], axis=1)
    B = np.eye(3)[:, :2]
    mt = match_domains(A, B)
    assert mt.pairs == [(1, 0), (0, 1)]
    assert mt.min_cosine == pytest.approx(0.6) and mt.cosine == pytest.approx([0.6, 0.6])
    # random instance: the total matches the brute-force optimum
    rng = np.random.default_rng(0)
    A, B = rng.random((50, 4)), rng.random((50, 4))
    mt = match_domains(A, B)
    C = np.array(mt.cosine_matrix)
    best = max(sum(C[p[j], j] for j in range(4)) for p in itertools.permutations(range(4)))
    assert sum(mt.cosine) == pytest.approx(best)


def test_extra_fitted_component_is_unmatched(truth):
    Wt = truth["truth_W"].values.astype(np.float64)
    # split domain 2 into two fitted components (left / right halves): one of them is extra
    left = Wt[2].copy()
    left[:, 40:] = 0
    right = Wt[2] - left
    W = np.concatenate([Wt[:2], right[None], Wt[3:], left[None]])   # fit 2 = right half, fit 6 = left half
    s = score_fit(_fit_ds(W, truth), truth)
    assert s["fit_rank"] == K + 1 and len(s["unmatched_fit"]) == 1
    extra = s["unmatched_fit"][0]
    assert extra in (2, K)
    kept = ({2, K} - {extra}).pop()
    assert s["domains"][2]["fit"] == kept
    n_l, n_r = left.sum(), right.sum()
    assert s["domains"][2]["cosine"] == pytest.approx(np.sqrt(max(n_l, n_r) / (n_l + n_r)), rel=1e-9)
    assert s["unmatched_fit_best_cosine"][0] == pytest.approx(np.sqrt(min(n_l, n_r) / (n_l + n_r)), rel=1e-9)
    assert s["all_matched"] and not s["passed"]
    assert "extra fitted components" in format_summary(s)


def test_missing_component_is_unmatched_true(truth):
    Wt = truth["truth_W"].values.astype(np.float64)
    W = np.delete(Wt, 4, axis=0)
    s = score_fit(_fit_ds(W, truth), truth)
    assert s["unmatched_true"] == [4]
    assert s["domains"][4]["fit"] is None and s["domains"][4]["cosine"] is None
    assert s["domains"][4]["spectrum_rmse"] is None
    assert not s["all_matched"] and not s["passed"]
    assert s["min_cosine"] == pytest.approx(1.0, abs=1e-12)
    assert "true domains not found (unmatched): g5" in format_summary(s)
    json.dumps(s, allow_nan=False)


def test_shape_mismatch_is_input_error(truth):
    W = truth["truth_W"].values[:, :30, :].astype(np.float64)
    fit = xr.Dataset({"W": (("component", "y", "x"), W)})
    with pytest.raises(InputError, match="60 x 80"):
        score_fit(fit, truth)


def _bcv(selected, ranks=(4, 5, 6, 7, 8, 9), attrs=True):
    err = [abs(r - (selected if selected else 7)) + 1.0 for r in ranks]
    a = {"selected_rank": selected, "one_se_rank": selected - 1, "method": "svd"} if attrs else {}
    return xr.Dataset({"mean_error": (("rank",), np.array(err))}, coords={"rank": list(ranks)}, attrs=a)


def test_score_bcv(truth):
    ok = score_bcv(_bcv(K), truth)
    assert ok["selected_correct"] and ok["true_rank"] == K and ok["one_se_rank"] == K - 1
    assert ok["one_se_correct"] is False and ok["method"] == "svd"
    bad = score_bcv(_bcv(K + 1), truth)
    assert not bad["selected_correct"]
    argmin = score_bcv(_bcv(None, attrs=False), truth)
    assert argmin["selected_rank"] == 7 and "argmin" in argmin["note"]
    text = format_summary({"bcv": bad})
    assert f"selected rank {K + 1}, true {K} -> WRONG" in text
    with pytest.raises(InputError, match="mean_error"):
        score_bcv(xr.Dataset(), truth)


def test_cli_score_json_csv(tmp_path, truth, capsys):
    perm = np.array([1, 0, 2, 3, 5, 4])
    W = truth["truth_W"].values.astype(np.float64)[perm]
    write_netcdf(truth, tmp_path / "truth.nc")
    write_netcdf(_fit_ds(np.delete(W, 5, axis=0), truth), tmp_path / "fit.nc")  # true domain perm[5] = 4 missing
    write_netcdf(_bcv(K), tmp_path / "bcv.nc")
    rc = main(["score", str(tmp_path / "fit.nc"), "--truth", str(tmp_path / "truth.nc"), "--bcv",
               str(tmp_path / "bcv.nc"), "--json", str(tmp_path / "s.json"), "--csv", str(tmp_path / "s.csv")])
    out = capsys.readouterr().out
    assert rc == 0 and "FAIL" in out and "CORRECT" in out
    res = json.loads((tmp_path / "s.json").read_text())
    assert res["fit"]["unmatched_true"] == [4] and res["bcv"]["selected_correct"] is True
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == K
    assert [r["status"] for r in rows].count("unmatched_true") == 1
    assert rows[0]["fit"] == "1" and rows[0]["fit_component"] == "2" and rows[0]["name"] == "g1"
    assert float(rows[0]["cosine"]) == pytest.approx(1.0)
    rc = main(["score", str(tmp_path / "fit.nc"), "--truth", str(tmp_path / "truth.nc"), "--strict"])
    assert rc == 1
    assert main(["score", str(tmp_path / "fit.nc"), "--truth", str(tmp_path / "nope.nc")]) == 2
    assert "nope.nc" in capsys.readouterr().err
