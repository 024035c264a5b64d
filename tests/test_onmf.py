import warnings

import numpy as np
import pytest

from phantoms import matched_cosines, partition_phantom
from xasnmf import ConvergenceWarning, InputError
from xasnmf.onmf import domain_spectra, onmf


@pytest.fixture(scope="module")
def phantom():
    return partition_phantom(k=5, noise=0.01, seed=3)


def test_recovers_partition_domains(phantom):
    X, W, H, _ = phantom
    res = onmf(X, 5, init="kmeans", seed=0)
    cos = matched_cosines(W, res.W)
    assert cos.min() >= 0.95, cos
    assert res.converged and res.stop_reason == "tol"


def test_random_init_best_of_restarts_recovers(phantom):
    X, W, H, _ = phantom
    res = onmf(X, 5, init="random", n_restarts=5, seed=1)
    assert matched_cosines(W, res.W).min() >= 0.95
    assert res.objective == pytest.approx(res.restart_objective.min())
    assert res.restart_objective.shape == (5,)


def test_w_columns_orthogonal_nonnegative_unit(phantom):
    X, _, _, _ = phantom
    res = onmf(X, 5, seed=0)
    W = res.W.astype(np.float64)
    assert (W >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), 1.0, rtol=1e-5)
    G = W.T @ W
    off = G[~np.eye(5, dtype=bool)]
    assert off.max() < 0.05, off.max()


def test_objective_equals_direct_residual(phantom):
    X, _, _, _ = phantom
    res = onmf(X, 4, seed=0, dtype="float64", n_restarts=1)
    direct = np.sum((X - res.W @ res.H.T) ** 2)
    assert res.objective == pytest.approx(direct, rel=1e-9)
    # objective history is (near) monotone and ends at the objective
    assert res.objective_history[-1] == pytest.approx(res.objective)


def test_unit_norm_converges_printed_norm_diverges(phantom):
    """Erratum of Algorithm 1 line 10: w/||w||^2 breaks the LS h-update and diverges."""
    X, W, _, _ = phantom
    good = onmf(X, 5, seed=0, n_restarts=1, init="random")
    assert np.isfinite(good.objective) and good.stop_reason == "tol"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bad = onmf(X, 5, seed=0, n_restarts=1, init="random", w_normalization="printed", max_iter=200)
    # On this phantom the printed rule overflows within a few iterations; on others it stalls at an
    # objective that explains almost nothing.  Either way it is far from the unit-norm optimum.
    assert bad.stop_reason == "diverged", bad.objective_history[:6]
    assert not np.all(np.isfinite(bad.objective_history))
    scaled = onmf(X * 10, 5, seed=0, n_restarts=1, init="random", w_normalization="printed", max_iter=200,
                  warn=False)
    good10 = onmf(X * 10, 5, seed=0, n_restarts=1, init="random")
    assert scaled.stop_reason == "diverged" or scaled.objective > 10 * good10.objective


def test_same_seed_bit_identical_different_seed_differs(phantom):
    X, _, _, _ = phantom
    a = onmf(X, 5, seed=7, init="random", n_restarts=2)
    b = onmf(X, 5, seed=7, init="random", n_restarts=2)
    c = onmf(X, 5, seed=8, init="random", n_restarts=2)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.H, b.H)
    assert np.array_equal(a.objective_history, b.objective_history)
    assert not np.array_equal(a.W, c.W)


def test_max_iter_warns_and_records(phantom):
    X, _, _, _ = phantom
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        res = onmf(X, 3, max_iter=1, n_restarts=1)
    assert res.n_iter == 1 and not res.converged and res.stop_reason == "max_iter"


def test_components_ordered_by_decreasing_column_sum(phantom):
    X, _, _, _ = phantom
    res = onmf(X, 5, seed=2, init="random")
    sums = res.W.sum(axis=0)
    assert np.all(np.diff(sums) <= 0)


def test_rank_one_skips_projection():
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 1.0, 300)
    h = rng.standard_normal(20)
    X = np.outer(w, h)
    res = onmf(X, 1, dtype="float64", n_restarts=1)
    np.testing.assert_allclose(np.outer(res.W[:, 0], res.H[:, 0]), X, atol=1e-8)


def test_zero_column_is_reseeded_or_reported():
    # All-negative data: a non-negative W with positive contributions cannot fit, columns rectify to 0.
    X = -np.ones((200, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = onmf(X, 3, seed=0, n_restarts=1, init="random", max_reseed=2, max_iter=50)
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert res.n_reseeded > 0 or res.zero_columns == []
    for k in res.zero_columns:
        assert np.all(res.W[:, k] == 0)


def test_float32_and_float64(phantom):
    X, W, _, _ = phantom
    r32 = onmf(X, 5, dtype="float32")
    r64 = onmf(X, 5, dtype="float64")
    assert r32.W.dtype == np.float32 and r64.W.dtype == np.float64
    assert r32.objective == pytest.approx(r64.objective, rel=1e-3)


def test_domain_spectra_weighted_mean_is_domain_mean(phantom):
    X, W, _, lab = phantom
    X0 = X + 1.0
    Wn = W / np.linalg.norm(W, axis=0)
    wtx0, wm = domain_spectra(Wn, X0)
    for k in range(W.shape[1]):
        np.testing.assert_allclose(wm[k], X0[lab.ravel() == k].mean(axis=0), rtol=1e-10)
        np.testing.assert_allclose(wtx0[k], Wn[:, k] @ X0, rtol=1e-10)


@pytest.mark.parametrize("kw, word", [({"rank": 0}, "rank"), ({"rank": 99}, "rank"), ({"rank": 2, "init": "x"}, "init"),
                                      ({"rank": 2, "dtype": "float16"}, "dtype"), ({"rank": 2, "max_iter": 0}, "max_iter")])
def test_bad_parameters_clear_errors(phantom, kw, word):
    X = phantom[0][:50, :20]
    with pytest.raises(InputError, match=word):
        onmf(X, **kw)


def test_nan_input_is_an_error_not_a_traceback():
    X = np.ones((10, 5))
    X[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        onmf(X, 2)


@pytest.mark.parametrize("scale", [1e-12, 1e12])
def test_float32_fit_is_scale_invariant(phantom, scale):
    # ONMF is scale-equivariant (W the same, H and J scaled); float32 must not overflow or underflow
    # at magnitudes far from 1 (the unscaled W rows once had sums of squares ~ |X|^4).
    X, _, _, _ = phantom
    ref = onmf(X, 5, seed=0, dtype="float32")
    res = onmf(X * scale, 5, seed=0, dtype="float32")
    assert res.stop_reason == "tol" and not res.zero_columns
    cos = (res.W * ref.W).sum(axis=0) / (np.linalg.norm(res.W, axis=0) * np.linalg.norm(ref.W, axis=0))
    assert cos.min() > 0.999
    assert res.objective / scale**2 == pytest.approx(ref.objective, rel=1e-3)


def test_bad_seed_and_out_of_range_values_are_clear_errors():
    X = np.random.default_rng(0).standard_normal((50, 6))
    with pytest.raises(InputError, match="seed"):
        onmf(X, 2, seed=-1)
    with pytest.raises(InputError, match="range of float32"):
        onmf(X * 1e100, 2, dtype="float32")
    with pytest.raises(InputError, match="overflows float64"):
        onmf(X * 1e160, 2, dtype="float64")
