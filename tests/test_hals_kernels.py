"""The compiled HALS kernels against a literal NumPy transcription of Algorithm 1."""

import numpy as np
import pytest

from xasnmf._hals_kernels import (CHUNK, finish_gram, gemm_block_rows, h_update, n_chunks, transpose_into,
                                  w_sweep, xh_transposed)


def algorithm1_w_sweep(W, A, B, unit=True, columns=None):
    """Lines 4-11 of Algorithm 1 (with the unit-norm erratum), column by column, in float64.

    W (m x r) is updated in place, exactly as printed: U = sum of the columns,
    W^(k) = U - w_k, u = A_k - W B_k + B_kk w_k, projection, rectification,
    normalization, U = W^(k) + w_k.
    """
    m, r = W.shape
    U = W.sum(axis=1)
    for k in range(r) if columns is None else columns:
        Wk = U - W[:, k]
        u = A[:, k] - W @ B[:, k] + B[k, k] * W[:, k]
        den = Wk @ Wk
        if den > 0:
            u = u - (Wk @ u) / den * Wk
        w = np.maximum(u, 0.0)
        nrm = np.linalg.norm(w)
        W[:, k] = w / (nrm if unit else nrm * nrm)
        U = Wk + W[:, k]
    return W


def _problem(m, n, r, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    W = rng.uniform(0, 1, (m, r))
    W /= np.linalg.norm(W, axis=0)
    H = X.T @ W
    return X, W, H


def _sweep(W, A, B, dtype, unit=True, s=None):
    """One compiled sweep from column 0; returns (return code, W = diag(s) Wt as m x r, s, D = W^T W)."""
    r, m = W.shape[1], W.shape[0]
    Wt = np.ascontiguousarray(W.T, dtype=dtype)
    s = np.ones(r) if s is None else s.copy()
    coefs = np.zeros((3, r + 1), dtype)
    G = np.full((r, r), np.nan)
    ret = w_sweep(Wt, s, np.ascontiguousarray(A.T, dtype=dtype), np.ascontiguousarray(B, dtype=dtype), 0, unit,
                  np.empty(m, dtype), np.empty(m, dtype), np.zeros((n_chunks(m), 2)), coefs, G, 1.0)
    D = np.full((r, r), np.nan, dtype)
    if ret == -1:
        finish_gram(Wt, s, G, D, coefs[2])
    return ret, (Wt.astype(np.float64) * s[:, None]).T, s, D


# m spans several chunks and ends in a partial one, so the chunk bookkeeping is exercised
@pytest.mark.parametrize("m, r", [(3 * CHUNK + 123, 6), (500, 1), (2 * CHUNK + 1, 7)])
def test_w_sweep_matches_algorithm1(m, r):
    X, W, H = _problem(m, 30, r, seed=m + r)
    A, B = X @ H, H.T @ H
    ref = algorithm1_w_sweep(W.copy(), A, B)
    ret, got, s, D = _sweep(W, A, B, np.float64)
    assert ret == -1
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(got, axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(D, ref.T @ ref, rtol=1e-10, atol=1e-13)  # Gram summed during the sweep
    # float32: same answer to single precision
    ret32, got32, _, D32 = _sweep(W, A, B, np.float32)
    assert ret32 == -1
    assert np.abs(got32 - ref).max() < 1e-5 * np.abs(ref).max()
    assert np.abs(D32 - ref.T @ ref).max() < 1e-5


def test_w_sweep_printed_normalization_matches_algorithm1():
    X, W, H = _problem(1000, 20, 4, seed=2)
    A, B = X @ H, H.T @ H
    ref = algorithm1_w_sweep(W.copy(), A, B, unit=False)
    _, got, _, D = _sweep(W, A, B, np.float64, unit=False)
    np.testing.assert_allclose(D, got.T @ got, rtol=1e-10)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-14)
    assert not np.allclose(np.linalg.norm(got, axis=0), 1.0)  # w / ||w||^2 is not unit


def test_w_sweep_uses_the_row_scales():
    # W = diag(s) Wt: a sweep over scaled rows equals the sweep over the scaled matrix
    X, W, H = _problem(5000, 20, 5, seed=4)
    A, B = X @ H, H.T @ H
    s0 = np.array([0.5, 2.0, 1.0, 3.0, 0.25])
    ref = algorithm1_w_sweep(W * s0, A, B)
    _, got, _, D = _sweep(W, A, B, np.float64, s=s0)
    np.testing.assert_allclose(D, ref.T @ ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_w_sweep_stops_at_a_column_that_rectifies_to_zero():
    # Column 1 must come out all zero: u_1 = A_1 is 0 on the support P of the other columns and
    # negative off it, so <W^(1), u_1> = 0 (no projection) and [u_1]_+ = 0.
    m, half = 3000, 1500
    rng = np.random.default_rng(5)
    W = np.zeros((m, 3))
    W[:, 0] = rng.uniform(0, 1, m)
    W[:half, 2] = rng.uniform(0.1, 1, half)      # support P = first half
    A = np.empty((m, 3))
    A[:half, 0] = rng.uniform(0.1, 1, half)       # w_0 stays on P ...
    A[half:, 0] = -1.0                            # ... and is zero off it
    A[:half, 1], A[half:, 1] = 0.0, -1.0
    A[:, 2] = rng.standard_normal(m)
    B = np.eye(3)
    ret, got, s, _ = _sweep(W, A, B, np.float64)
    assert ret == 1
    assert s[1] == 0.0 and not got[:, 1].any()
    ref0 = algorithm1_w_sweep(W.copy(), A, B, columns=[0])[:, 0]  # the column before it is finished
    np.testing.assert_allclose(got[:, 0], ref0, rtol=1e-12)
    assert not got[half:, 0].any() and got[:half, 0].any()
    np.testing.assert_array_equal(got[:, 2], W[:, 2])  # the one after it is untouched


def test_transpose_into():
    A = np.random.default_rng(6).standard_normal((1001, 7)).astype(np.float32)
    At = np.empty((7, 1001), np.float32)
    transpose_into(A, At)
    np.testing.assert_array_equal(At, A.T)


@pytest.mark.parametrize("m", [2 * gemm_block_rows(40, 4) + 5, 300])
def test_xh_transposed_is_x_times_h_transposed(m):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((m, 40)).astype(np.float32)
    Ht = rng.standard_normal((6, 40)).astype(np.float32)
    At = np.full((6, m), np.nan, np.float32)
    xh_transposed(X, Ht, At, np.empty((min(m, gemm_block_rows(40, 4)), 6), np.float32))
    ref = Ht.astype(np.float64) @ X.T.astype(np.float64)
    assert np.abs(At - ref).max() < 1e-5 * np.abs(ref).max()


def test_h_update_is_eq12_and_objective_is_the_residual():
    X, W, H = _problem(2000, 25, 5, seed=8)
    W = np.ascontiguousarray(W)
    C, D = X.T @ W, W.T @ W
    H0 = np.random.default_rng(9).standard_normal((25, 5))
    ref = H0.copy()
    for k in range(5):  # Eq. (12), column by column with the new columns j < k
        ref[:, k] = C[:, k] - ref @ D[:, k] + D[k, k] * ref[:, k]
    Ht = np.ascontiguousarray(H0.T)
    J = h_update(np.ascontiguousarray(C.T), D, Ht, float((X * X).sum()))
    np.testing.assert_allclose(Ht.T, ref, rtol=1e-12, atol=1e-12)
    assert J == pytest.approx(float(((X - W @ ref.T) ** 2).sum()), rel=1e-10)


def test_w_sweep_nonfinite_column_is_not_taken_for_zero():
    # A NaN in A must not be "re-seeded away" as a zero column: the scale becomes NaN, so the
    # objective is non-finite and the fit stops on "diverged".
    X, W, H = _problem(3000, 20, 3, seed=10)
    A, B = X @ H, H.T @ H
    A[10, 1] = np.nan
    ret, got, s, _ = _sweep(W, A, B, np.float64)
    assert ret == -1
    assert np.isnan(s[1])


def test_kernel_decorator_compiles_without_a_cache():
    # Where numba can cache nowhere (here: a function without a source file), the kernels still
    # compile, with one warning that says how to get a cache.
    import xasnmf._hals_kernels as K

    ns = {}
    exec("def f(a):\n    return a + 1\n", ns)
    K._NO_CACHE_WARNED = False
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        f = K._kernel()(ns["f"])
    assert f(41) == 42


def test_kernels_run_with_jit_disabled(tmp_path):
    # NUMBA_DISABLE_JIT=1 (debugging, coverage) runs the kernels as Python: same answer.
    import subprocess
    import sys

    code = ("import numpy as np; from xasnmf.onmf import onmf; "
            "X = np.random.default_rng(0).standard_normal((60, 8)); "
            "r = onmf(X, 2, n_restarts=1, init='random', max_iter=20, tol=0.0, dtype='float64', warn=False); "
            "print(repr(r.objective))")
    env = dict(__import__("os").environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    from xasnmf.onmf import onmf

    X = np.random.default_rng(0).standard_normal((60, 8))
    ref = onmf(X, 2, n_restarts=1, init="random", max_iter=20, tol=0.0, dtype="float64", warn=False).objective
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(ref, rel=1e-9)
