"""Cosine matrix (Eq. 15 as a cosine), Hungarian matching, Table I and its writers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xasnmf.cli import main
from xasnmf.compare import (cosine_matrix, cross_correlation_table, match_order, maps_cosine_table,
                            table_to_csv, table_to_latex, table_to_markdown)
from xasnmf.errors import InputError
from xasnmf.provenance import write_netcdf

# four pixels (a 2 x 2 map in C order), four maps each, small integers
A = np.array([[2, 0, 0, 1],
              [0, 3, 0, 1],
              [0, 0, 1, 1],
              [0, 0, 1, 1]], dtype=float)   # columns a1..a4, norms 2, 3, sqrt2, 2
B = np.array([[0, 1, 1, 0],
              [0, 0, 1, 4],
              [2, 0, 1, 0],
              [2, 0, 1, 0]], dtype=float)   # columns b1..b4, norms 2 sqrt2, 1, 2, 4
r2 = 1 / np.sqrt(2)
# by hand: C[i, j] = a_i . b_j / (|a_i| |b_j|)
#  a1.b = (0, 2, 2, 0)  -> (0, 2/2, 2/4, 0)
#  a2.b = (0, 0, 3, 12) -> (0, 0, 3/6, 12/12)
#  a3.b = (4, 0, 2, 0)  -> (4/4, 0, 2/(2 sqrt2), 0)
#  a4.b = (4, 1, 4, 4)  -> (4/(4 sqrt2), 1/2, 4/4, 4/8)
C_HAND = np.array([[0, 1, 0.5, 0],
                   [0, 0, 0.5, 1],
                   [1, 0, r2, 0],
                   [r2, 0.5, 1, 0.5]])


def test_cosine_matrix_by_hand():
    np.testing.assert_allclose(cosine_matrix(A, B), C_HAND, atol=1e-12)


def test_cosine_is_scale_free_unlike_printed_formula():
    # the paper's printed sqrt(|w||w'|) denominator would change by sqrt(30) here
    np.testing.assert_allclose(cosine_matrix(3 * A, 10 * B), C_HAND, atol=1e-12)
    assert cosine_matrix(A, B).max() <= 1 + 1e-12


def test_match_order_by_hand():
    # unique all-ones assignment: a1-b2, a2-b4, a3-b1, a4-b3
    perm = match_order(C_HAND)
    np.testing.assert_array_equal(perm, [1, 3, 0, 2])
    np.testing.assert_allclose(np.diag(C_HAND[:, perm]), [1, 1, 1, 1])


def test_match_order_beats_greedy():
    # greedy would take (0,0)=0.9 then (1,1)=0.1 (sum 1.0); optimum is 0.8 + 0.85
    C = np.array([[0.9, 0.8], [0.85, 0.1]])
    np.testing.assert_array_equal(match_order(C), [1, 0])


def test_match_order_rectangular():
    C = np.array([[0.1, 0.2, 0.9], [0.7, 0.1, 0.2]])       # p=2 < q=3
    perm = match_order(C)
    np.testing.assert_array_equal(perm, [2, 0, 1])
    C2 = C.T                                                  # p=3 > q=2: columns in matched-row order
    perm2 = match_order(C2)
    np.testing.assert_array_equal(perm2, [1, 0])              # col 1 matches row 0, col 0 matches row 2


def test_zero_column_gives_zero_and_flag_without_warning():
    Bz = B.copy()
    Bz[:, 2] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cm = cosine_matrix(A, Bz, return_flags=True)
    np.testing.assert_array_equal(cm.values[:, 2], 0)
    np.testing.assert_array_equal(cm.zero_cols, [False, False, True, False])
    np.testing.assert_allclose(np.delete(cm.values, 2, axis=1), np.delete(C_HAND, 2, axis=1), atol=1e-12)


def test_cosine_rejects_mismatched_and_nan():
    with pytest.raises(InputError, match="same number of pixels"):
        cosine_matrix(A, B[:3])
    bad = A.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        cosine_matrix(bad, B)


def _fit_and_km(masked_junk=True):
    """FIT-like W and KM-like one-hot maps on a 2 x 3 grid; pixel (1, 2) masked in the fit only."""
    Wm = np.stack([A[:, j].reshape(2, 2) for j in range(4)])          # (4, 2, 2)
    Dm = np.stack([B[:, j].reshape(2, 2) for j in range(4)])
    W = np.concatenate([Wm, np.full((4, 2, 1), np.nan)], axis=2)        # masked column in the fit
    D = np.concatenate([Dm, np.full((4, 2, 1), 50.0 if masked_junk else 0.0)], axis=2)
    coords = {"y": [0.0, 1.0], "x": [0.0, 1.0, 2.0]}
    fit = xr.Dataset({"W": (("component", "y", "x"), W)}, coords=coords)
    km = xr.Dataset({"domain": (("component", "y", "x"), D)}, coords=coords)
    return fit, km


def test_cross_correlation_table_excludes_nan_pixels_and_orders():
    fit, km = _fit_and_km()
    t = cross_correlation_table(fit, km)
    assert t.n_pixels == 4          # the 50.0 junk at the fit-masked pixels would change every cosine
    np.testing.assert_array_equal(t.col_order, [1, 3, 0, 2])
    np.testing.assert_allclose(t.values, C_HAND[:, [1, 3, 0, 2]], atol=1e-12)
    assert t.row_labels == ["B1", "B2", "B3", "B4"] and t.col_labels == ["C1", "C2", "C3", "C4"]
    t2 = cross_correlation_table(fit, km, match=False)
    np.testing.assert_allclose(t2.values, C_HAND, atol=1e-12)


def test_writers_round_trip():
    t = maps_cosine_table(np.stack([A[:, j].reshape(2, 2) for j in range(4)]),
                          np.stack([B[:, j].reshape(2, 2) for j in range(4)]), match=False, title="T")
    import io
    df = pd.read_csv(io.StringIO(table_to_csv(t)), index_col=0)
    assert list(df.columns) == ["C1", "C2", "C3", "C4"] and list(df.index) == ["B1", "B2", "B3", "B4"]
    np.testing.assert_allclose(df.values, C_HAND, atol=1e-4)
    md = table_to_markdown(t)
    assert "| B3 | **1.00** | 0.00 | 0.71 | 0.00 |" in md
    tex = table_to_latex(t)
    assert "\\begin{tabular}{lrrrr}" in tex
    assert "B4 & 0.71 & 0.50 & \\textbf{1.00} & 0.50 \\\\" in tex


def test_cli_compare_writes_all_formats(tmp_path, capsys):
    fit, km = _fit_and_km()
    write_netcdf(fit, tmp_path / "FIT.nc")
    write_netcdf(km, tmp_path / "KM.nc")
    out = tmp_path / "t1" / "TABLE.csv"
    assert main(["compare", str(tmp_path / "FIT.nc"), str(tmp_path / "KM.nc"), "-o", str(out)]) == 0
    df = pd.read_csv(out, index_col=0)
    np.testing.assert_allclose(df.values, C_HAND[:, [1, 3, 0, 2]], atol=1e-4)
    assert (tmp_path / "t1" / "TABLE.md").read_text().startswith("**")
    assert "tabular" in (tmp_path / "t1" / "TABLE.tex").read_text()
    nc = xr.load_dataset(tmp_path / "t1" / "TABLE.nc")
    np.testing.assert_allclose(nc["cosine"].values, C_HAND[:, [1, 3, 0, 2]], atol=1e-12)
    np.testing.assert_array_equal(nc["kmeans_original_index"].values, [1, 3, 0, 2])
    assert list(nc["onmf"].values) == ["B1", "B2", "B3", "B4"]


def test_cli_compare_bad_input_exit_2(tmp_path, capsys):
    fit, km = _fit_and_km()
    write_netcdf(fit, tmp_path / "FIT.nc")
    write_netcdf(fit, tmp_path / "NOTKM.nc")
    rc = main(["compare", str(tmp_path / "FIT.nc"), str(tmp_path / "NOTKM.nc"), "-o", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "NOTKM.nc" in err and "'domain'" in err and "Fix:" in err
    rc = main(["compare", str(tmp_path / "FIT.nc"), str(tmp_path / "missing.nc"), "-o", str(tmp_path / "t.csv")])
    assert rc == 2 and "file not found" in capsys.readouterr().err
