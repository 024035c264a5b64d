import numpy as np
import pytest

from phantoms import partition_phantom
from xasnmf import InputError
from xasnmf.bcv import (aggregate_bcv, bcv_errors, bcv_fold_error, center_rows, fold_masks, pinv_predict,
                        split_fold)
from xasnmf.onmf import onmf


@pytest.fixture(scope="module")
def X():
    return partition_phantom(ny=30, nx=40, n=40, k=4, noise=0.01, seed=5)[0]


def dense_svd_bcv(X, rank, fold, F):
    """Independent computation: explicit index sets, dense rank-r reconstruction, np.linalg.pinv."""
    m, n = X.shape
    rows = [i for i in range(m) if i % F == fold]
    cols = [j for j in range(n) if j % F == fold]
    orow = [i for i in range(m) if i % F != fold]
    ocol = [j for j in range(n) if j % F != fold]
    XA = X[np.ix_(rows, cols)]
    XB = X[np.ix_(rows, ocol)]
    XC = X[np.ix_(orow, cols)]
    XD = X[np.ix_(orow, ocol)]
    U, s, Vt = np.linalg.svd(XD, full_matrices=False)
    XDr = (U[:, :rank] * s[:rank]) @ Vt[:rank]
    return np.sum((XA - XB @ np.linalg.pinv(XDr, rcond=1e-10) @ XC) ** 2)


def test_fold_masks_every_fth_row_and_column():
    I, J = fold_masks(45, 23, 3, 20)
    assert np.flatnonzero(I).tolist() == [3, 23, 43]
    assert np.flatnonzero(J).tolist() == [3]
    XA, XB, XC, XD = split_fold(np.arange(45 * 23).reshape(45, 23), 3, 20)
    assert XA.shape == (3, 1) and XB.shape == (3, 22) and XC.shape == (42, 1) and XD.shape == (42, 22)
    assert XA[1, 0] == 23 * 23 + 3


@pytest.mark.parametrize("rank", [1, 3, 6])
@pytest.mark.parametrize("fold", [0, 7])
def test_svd_bcv_equals_dense_numpy(X, rank, fold):
    X64 = X.astype(np.float64)
    expected = dense_svd_bcv(X64, rank, fold, 20)
    got = bcv_fold_error(X64, rank=rank, fold=fold, n_folds=20, method="svd", nuisance="none", dtype="float64").error
    assert got == pytest.approx(expected, rel=1e-8)
    grid = bcv_errors(X64, ranks=[rank], n_folds=20, seeds=[0, 1], folds=[fold], method="svd", dtype="float64")
    assert grid.shape == (1, 2, 1)
    assert grid[0, 0, 0] == pytest.approx(expected, rel=1e-8) and grid[0, 1, 0] == grid[0, 0, 0]


def test_offset_nuisance_is_dense_bcv_of_row_centred_matrix(X):
    X64 = X.astype(np.float64)
    Xc = X64 - X64.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(center_rows(X64), Xc)
    expected = dense_svd_bcv(Xc, 3, 2, 20)
    got = bcv_fold_error(X64, rank=3, fold=2, method="svd", nuisance="offset", dtype="float64").error
    assert got == pytest.approx(expected, rel=1e-8)


def test_offset_scale_nuisance_projects_constant_and_training_mean_spectrum(X):
    X64 = X.astype(np.float64)
    b = np.linspace(0.0, 1.0, X.shape[1])
    fold = 5
    train = np.arange(X.shape[0]) % 20 != fold
    x0_mean = X64[train].mean(axis=0) + b
    # independent projector: least-squares removal of span{1, x0_mean} from each row
    V = np.stack([np.ones(X.shape[1]), x0_mean], 1)
    P = np.eye(X.shape[1]) - V @ np.linalg.pinv(V)
    expected = dense_svd_bcv(X64 @ P, 4, fold, 20)
    got = bcv_fold_error(X64, rank=4, fold=fold, method="svd", nuisance="offset+scale", reference=b,
                         dtype="float64").error
    assert got == pytest.approx(expected, rel=1e-8)
    grid = bcv_errors(X64, ranks=[4], seeds=[0], folds=[fold], method="svd", nuisance="offset+scale",
                      reference=b, dtype="float64")
    assert grid[0, 0, 0] == pytest.approx(expected, rel=1e-8)


def test_offset_nuisance_keeps_partition_structure():
    """X P = W (P H)^T: projecting the offset out of a partition phantom keeps its rank and adds none."""
    Xc, W, H, _ = partition_phantom(ny=30, nx=40, n=40, k=4, noise=0.0, seed=2)
    rng = np.random.default_rng(0)
    Xo = Xc + rng.normal(0, 0.05, (Xc.shape[0], 1))  # a random per-pixel offset: one extra component
    s_off = np.linalg.svd(Xo, compute_uv=False)
    s_proj = np.linalg.svd(center_rows(Xo), compute_uv=False)
    assert s_off[4] / s_off[0] > 1e-3           # the offset is a fifth structured component
    assert s_proj[4] / s_proj[0] < 1e-10        # gone after projection
    assert s_proj[3] / s_proj[0] > 1e-3         # the four domains remain


def test_pinv_predict_with_zero_column_matches_numpy_pinv():
    rng = np.random.default_rng(1)
    W = np.abs(rng.standard_normal((60, 4)))
    W[:, 2] = 0.0  # a rank-deficient ONMF fit
    H = rng.standard_normal((15, 4))
    XB = rng.standard_normal((5, 15))
    XC = rng.standard_normal((60, 3))
    expected = XB @ np.linalg.pinv(W @ H.T, rcond=1e-10) @ XC
    got = pinv_predict(XB, W, H, XC)
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    assert np.all(np.isfinite(got))


def test_onmf_bcv_equals_independent_computation(X):
    X32 = X.astype(np.float32)
    t = bcv_fold_error(X32, rank=3, fold=4, seed=11, n_folds=20, method="onmf", nuisance="none", init="random")
    rows = np.arange(X.shape[0]) % 20 == 4
    cols = np.arange(X.shape[1]) % 20 == 4
    XD = X32[~rows][:, ~cols]
    fit = onmf(XD, 3, n_restarts=1, init="random", seed=11)
    model = fit.W.astype(np.float64) @ fit.H.T.astype(np.float64)
    pred = X32[rows][:, ~cols].astype(np.float64) @ np.linalg.pinv(model, rcond=1e-10) @ \
        X32[~rows][:, cols].astype(np.float64)
    expected = np.sum((X32[rows][:, cols] - pred) ** 2)
    assert t.error == pytest.approx(expected, rel=1e-6)
    assert t.n_iter == fit.n_iter and t.stop_reason == fit.stop_reason


def test_aggregation_drops_planted_outlier_and_picks_argmin():
    rng = np.random.default_rng(0)
    ranks = [2, 3, 4, 5]
    base = np.array([10.0, 6.0, 5.0, 5.5])
    err = base[:, None, None] + 0.01 * rng.standard_normal((4, 5, 6))
    err[2, 3, :] += 50.0  # seed 3 at rank 4 is a failed fit
    agg = aggregate_bcv(err, ranks)
    # the bare MAD rule also drops ordinary trials of 5 nearly identical ones; the relative floor does not
    assert aggregate_bcv(err, ranks, outlier_min_rel=0.0).excluded.sum() > 1
    assert agg.excluded[2].tolist() == [False, False, False, True, False]
    assert agg.excluded.sum() == 1
    keep = [0, 1, 2, 4]
    assert agg.mean_error[2] == pytest.approx(err[2, keep].mean())
    assert agg.selected_rank == 4
    vals = err[2, keep].ravel()
    assert agg.se[2] == pytest.approx(vals.std(ddof=1) / np.sqrt(vals.size))
    # without the outlier rule the planted failure (mean 5 + 50/5 = 15) makes rank 5 (5.5) win
    assert aggregate_bcv(err, ranks, outlier_rule="none").selected_rank == 5


def test_one_se_rank_by_hand():
    ranks = [1, 2, 3]
    err = np.zeros((3, 1, 4))
    err[0, 0] = [10, 10, 10, 10]
    err[1, 0] = [5.0, 5.2, 4.8, 5.0]      # mean 5.0
    err[2, 0] = [4.5, 5.3, 4.3, 5.1]      # mean 4.8, se = std/2
    agg = aggregate_bcv(err, ranks)
    se3 = np.std([4.5, 5.3, 4.3, 5.1], ddof=1) / 2
    assert agg.se[2] == pytest.approx(se3)
    assert agg.selected_rank == 3
    assert agg.one_se_rank == (2 if 5.0 <= 4.8 + se3 else 3) == 2


def test_bad_fold_and_rank_are_clear_errors(X):
    with pytest.raises(InputError, match="fold"):
        bcv_fold_error(X, rank=2, fold=20, n_folds=20)
    with pytest.raises(InputError, match="rank"):
        bcv_fold_error(X, rank=0, fold=0)
    with pytest.raises(InputError, match="method"):
        bcv_fold_error(X, rank=2, fold=0, method="pca")
    with pytest.raises(InputError, match="nuisance"):
        bcv_fold_error(X, rank=2, fold=0, nuisance="rows")
    with pytest.raises(InputError, match="too small"):
        bcv_fold_error(X[:, :10], rank=2, fold=0, n_folds=20)
