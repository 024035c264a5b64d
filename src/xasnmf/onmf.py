"""Modified orthogonal NMF solved by HALS (Tanimoto et al. 2020, Sec. II.B, Algorithm 1).

Model: ``X ~= W H^T`` for a *signed* matrix ``X`` (m pixels x n energies; the
normalized spectra minus a reference spectrum), with ``W >= 0`` (m x r, columns
are spatial domains, made orthogonal as in Kimura et al. 2014) and ``H`` signed
(n x r, difference spectra).  The objective is ``J = ||X - W H^T||_F^2``.

One iteration (with ``A = X H``, ``B = H^T H``, ``U = sum_k w_k``)::

    for k in 1..r:
        W^(k) = U - w_k                              (sum of the other columns)
        u     = A[:, k] - W B[:, k] + B[k, k] w_k
        w_k   = [u - (W^(k)T u / W^(k)T W^(k)) W^(k)]_+
        w_k   = w_k / ||w_k||                        (unit L2 norm, see erratum)
        U     = W^(k) + w_k
    C = X^T W, D = W^T W
    for k in 1..r:
        h_k = C[:, k] - H D[:, k] + D[k, k] h_k

**Erratum (Algorithm 1, line 10).**  The paper prints ``w_k <- w_k / ||w_k||^2``.
The h-update (Eq. 12) is the least-squares update of ``h_k`` only when
``||w_k|| = 1``; with the printed normalization the scale of ``W`` and ``H`` drifts
and the iteration diverges (overflow) on realistic stacks.  xasnmf normalizes
to unit L2 norm.  The printed rule is kept, for demonstration and tests only,
as ``w_normalization="printed"``.

Implementation notes
--------------------
* Factors are held transposed (``Wt`` r x m, ``Ht`` r x n) so every column
  update touches contiguous memory.  Per iteration the work is two BLAS GEMMs
  with ``X`` (``X H``, in row blocks, and ``X^T W``) plus O(m r^2) vector work,
  which runs in compiled kernels (:mod:`xasnmf._hals_kernels`, numba; one
  thread): two passes over the pixels per column instead of about ten NumPy
  calls, W's column norms kept as scales instead of a pass each, and
  ``W^T W`` summed on the way.  No m x m matrix and no m x n temporary besides
  ``X`` itself is ever formed.
* The objective is computed without another pass over ``X``:
  ``J = ||X||^2 - 2 tr(W^T X H) + tr(W^T W H^T H)``, from ``C`` and ``D`` of the
  h-update, accumulated in float64.
* Same input, seed, dtype and BLAS thread count give bit-identical results on
  the same machine and library versions (the kernels' own sums run in a fixed
  chunk order).
* Components are returned in a deterministic order: decreasing column sum of
  ``W`` (ties broken by index), so the output does not depend on which restart
  won.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .errors import ConvergenceWarning, InputError

__all__ = ["OnmfResult", "onmf", "domain_spectra", "order_components"]

_DTYPES = {"float32": np.float32, "float64": np.float64}
STOP_TOL = "tol"
STOP_MAX_ITER = "max_iter"


@dataclass
class OnmfResult:
    """Result of :func:`onmf`.

    Attributes
    ----------
    W : ndarray, shape (m, r)
        Non-negative, (nearly) orthogonal, unit-norm columns: the domains.
    H : ndarray, shape (n, r)
        Signed difference spectra.
    objective : float
        ``||X - W H^T||_F^2`` of the kept (best) restart.
    n_iter : int
        Iterations of the kept restart.
    converged : bool
        True when the kept restart stopped on ``tol``.
    stop_reason : str
        ``"tol"``, ``"max_iter"``, or ``"diverged"`` (non-finite objective; only
        seen with the paper's printed normalization).
    objective_history : ndarray
        J after every iteration of the kept restart.
    restart_objective : ndarray, shape (n_restarts,)
        Final J of every restart (in restart order).
    restart_n_iter : ndarray of int, shape (n_restarts,)
    best_restart : int
        Index of the kept restart.
    n_reseeded : int
        Columns of W that rectified to all zeros and were re-seeded (kept restart).
    zero_columns : list of int
        Columns still all-zero at the end (after ordering), reported, not hidden.
    """

    W: np.ndarray
    H: np.ndarray
    objective: float
    n_iter: int
    converged: bool
    stop_reason: str
    objective_history: np.ndarray
    restart_objective: np.ndarray
    restart_n_iter: np.ndarray
    best_restart: int
    n_reseeded: int
    zero_columns: list = field(default_factory=list)
    init: str = "random"
    seed: int | None = None
    dtype: str = "float32"
    rank: int = 0
    restart_converged: np.ndarray | None = None


def _check_matrix(X, dtype) -> np.ndarray:
    if dtype not in _DTYPES:
        raise InputError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}", source="dtype")
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"X must be a 2-D (pixels x energies) matrix, got shape {X.shape}", source="X")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise InputError(f"X is empty, got shape {X.shape}", source="X")
    if X.dtype.kind not in "fiu":
        raise InputError(f"X must be numeric, got dtype {X.dtype}", source="X")
    X0 = X
    with np.errstate(over="ignore"):
        X = np.ascontiguousarray(X, dtype=_DTYPES[dtype])
    # Finite check without an m x n boolean temporary: the float64 sum of squares is finite iff every
    # value is (values near sqrt(float64 max) excepted, which then get the row-block check below).
    if not np.isfinite(_sumsq(X)):
        step = max(1, 2**20 // max(1, X.shape[1]))
        for i in range(0, X.shape[0], step):
            if not np.isfinite(X[i:i + step]).all():
                if X0.dtype.kind == "f" and np.isfinite(X0[i:i + step]).all():
                    big = float(np.max(np.abs(X0[i:i + step])))
                    raise InputError(f"X has values beyond the range of {dtype} (max |X| = {big:.3g} in rows "
                                     f"{i}-{min(i + step, X.shape[0]) - 1})", source="X",
                                     fix="rescale X, or use dtype float64")
                raise InputError("X contains NaN or Inf", source="X",
                                 fix="mask those pixels during preprocessing (xasnmf preprocess)")
        raise InputError("||X||^2 overflows float64: X's values are too large (max |X| = "
                         f"{float(np.max(np.abs(X))):.3g})", source="X", fix="rescale X")
    return X


def _sumsq(X) -> float:
    """||X||_F^2 accumulated in float64, without an m x n temporary."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.einsum("ij,ij->", X, X, dtype=np.float64))


def _check_rank(rank, X) -> int:
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise InputError(f"rank must be an integer, got {rank!r}", source="rank")
    rank = int(rank)
    m, n = X.shape
    if not 1 <= rank <= min(m, n):
        raise InputError(f"rank must be between 1 and min(pixels, energies) = {min(m, n)}, got {rank}",
                         source="rank")
    return rank


def _init_random(X, rank, rng, dtype, normX2):
    m, n = X.shape
    Wt = rng.uniform(0.0, 1.0, size=(rank, m)).astype(dtype)
    Wt /= np.linalg.norm(Wt, axis=1, keepdims=True)
    # Gaussian H on the scale of the data, so the first iterations are well conditioned.
    scale = float(np.sqrt(normX2 / X.size)) or 1.0
    Ht = (rng.standard_normal(size=(rank, n)) * scale).astype(dtype)
    return Wt, Ht


def _init_kmeans(X, rank, seed_int, dtype):
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=rank, init="k-means++", n_init=1, random_state=seed_int, max_iter=100)
    labels = km.fit_predict(X)
    m = X.shape[0]
    Wt = np.zeros((rank, m), dtype=dtype)
    Wt[labels, np.arange(m)] = 1.0
    norms = np.linalg.norm(Wt, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    Wt /= norms
    Ht = (Wt @ X).astype(dtype)  # H = X^T W
    return Wt, Ht


def _hals(X, Wt, Ht, *, normX2, max_iter, tol, rng, w_normalization, max_reseed):
    """Run HALS iterations in place on Wt (r x m) and Ht (r x n)."""
    from ._hals_kernels import finish_gram, gemm_block_rows, h_update, n_chunks, w_sweep, xh_transposed

    r, m = Wt.shape
    dt = X.dtype
    s = np.ones(r, dtype=np.float64)        # W = diag(s) Wt: rows are kept unscaled during the sweeps
    Ablk = np.empty((min(m, gemm_block_rows(X.shape[1], dt.itemsize)), r), dtype=dt)
    At = np.empty((r, m), dtype=dt)
    u = np.empty(m, dtype=dt)
    Wo = np.empty(m, dtype=dt)
    part = np.zeros((n_chunks(m), 2), dtype=np.float64)
    coefs = np.zeros((3, r + 1), dtype=dt)
    G = np.zeros((r, r), dtype=np.float64)  # Gram matrix of the unscaled rows, filled by the sweep
    D = np.empty((r, r), dtype=dt)
    unit = w_normalization == "unit"
    history: list[float] = []
    reseeded = 0
    reseeds_per_col = np.zeros(r, dtype=int)
    stop = STOP_MAX_ITER
    prev = None
    it = 0
    for it in range(1, max_iter + 1):
        xh_transposed(X, Ht, At, Ablk)      # At = (X H)^T (r x m), from X @ H in row blocks
        B = Ht @ Ht.T                       # (r x r)
        k = 0
        while k < r:                        # w-sweep (compiled); returns early at a column that rectified to 0
            k = int(w_sweep(Wt, s, At, B, k, unit, u, Wo, part, coefs, G, normX2))
            if k < 0:
                break
            if reseeds_per_col[k] < max_reseed:
                wk = Wt[k]
                wk[:] = rng.uniform(0.0, 1.0, size=m).astype(dt)
                nrm = float(np.linalg.norm(wk))
                G[k, k] = nrm * nrm
                s[k] = 1.0 / nrm if unit else 1.0 / (nrm * nrm)
                reseeds_per_col[k] += 1
                reseeded += 1
            k += 1
        Ct = (X.T @ Wt.T).T                 # (r x n) = (X^T W)^T up to the row scales
        Ct *= s.astype(dt)[:, None]
        finish_gram(Wt, s, G, D, coefs[2])  # D = W^T W (r x r), mostly summed during the sweep
        # Eq. (12), h_k = C_k - H D_k + D_kk h_k = C_k - sum_{j != k} D_jk h_j (the least-squares
        # update of h_k only when D_kk = ||w_k||^2 = 1), and J from C, D and the new H
        J = float(h_update(Ct, D, Ht, normX2))
        history.append(J)
        if not np.isfinite(J):
            stop = "diverged"
            break
        if prev is not None:
            rel = (prev - J) / max(abs(prev), np.finfo(np.float64).tiny)
            if abs(rel) < tol:
                stop = STOP_TOL
                break
        prev = J
    Wt *= s.astype(dt)[:, None]
    return it, stop, np.asarray(history, dtype=np.float64), reseeded


def order_components(W: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort components by decreasing column sum of ``W`` (stable; ties by index).

    Returns
    -------
    W, H : reordered copies
    order : ndarray of int, the permutation applied
    """
    sums = np.asarray(W, dtype=np.float64).sum(axis=0)
    order = np.argsort(-sums, kind="stable")
    return W[:, order], H[:, order], order


def onmf(
    X,
    rank: int,
    *,
    n_restarts: int = 5,
    init: Literal["random", "kmeans"] = "kmeans",
    seed: int | None = 0,
    max_iter: int = 500,
    tol: float = 1e-5,
    dtype: Literal["float32", "float64"] = "float32",
    max_reseed: int = 3,
    w_normalization: Literal["unit", "printed"] = "unit",
    warn: bool = True,
) -> OnmfResult:
    """Modified orthogonal NMF of a signed matrix by HALS, best of ``n_restarts``.

    Parameters
    ----------
    X : array_like, shape (m, n)
        Signed data (normalized spectra minus the reference), pixels x energies.
    rank : int
        Number of components r, 1 <= r <= min(m, n).
    n_restarts : int, default 5
        Seeded starts; the one with the lowest final objective is kept (paper: 5).
    init : {"random", "kmeans"}, default "kmeans"
        ``"random"``: W uniform >= 0 with unit columns, H Gaussian (the paper).
        Single random starts often end in poor local minima (matched cosine
        0.4-0.99 per domain on 5-6 domain phantoms), hence the default:
        ``"kmeans"``: seeded k-means++ clustering of the pixel rows, W the
        normalized one-hot memberships, H = X^T W.
    seed : int or None, default 0
        Seed of a :class:`numpy.random.SeedSequence`; restart ``i`` uses its
        ``i``-th child.  Same X, seed, dtype and thread count give bit-identical
        results.
    max_iter : int, default 500
    tol : float, default 1e-5
        Stop when the relative change of J between iterations is below ``tol``.
    dtype : {"float32", "float64"}, default "float32"
        Working precision of X and the factors; J is accumulated in float64.
    max_reseed : int, default 3
        How often one column that rectified to all zeros may be re-seeded
        (uniform random) before it is left at zero and reported in
        ``zero_columns``.
    w_normalization : {"unit", "printed"}, default "unit"
        ``"unit"``: w_k / ||w_k|| (correct).  ``"printed"``: the paper's
        w_k / ||w_k||^2 (Algorithm 1 line 10, an erratum; diverges).
    warn : bool, default True
        Emit :class:`xasnmf.ConvergenceWarning` when the kept restart hit
        ``max_iter``.

    Returns
    -------
    OnmfResult
    """
    X = _check_matrix(X, dtype)
    rank = _check_rank(rank, X)
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, (int, np.integer)) or n_restarts < 1:
        raise InputError(f"n_restarts must be an integer >= 1, got {n_restarts!r}", source="n_restarts")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(f"max_iter must be an integer >= 1, got {max_iter!r}", source="max_iter")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise InputError(f"tol must be a number >= 0, got {tol!r}", source="tol")
    if init not in ("random", "kmeans"):
        raise InputError(f"init must be 'random' or 'kmeans', got {init!r}", source="init")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InputError(f"seed must be an integer >= 0 or None, got {seed!r}", source="seed")
    if w_normalization not in ("unit", "printed"):
        raise InputError(f"w_normalization must be 'unit' or 'printed', got {w_normalization!r}",
                         source="w_normalization")
    dt = X.dtype
    normX2 = _sumsq(X)
    children = np.random.SeedSequence(seed).spawn(int(n_restarts))
    best = None
    objs, iters, convs = [], [], []
    for i, child in enumerate(children):
        rng = np.random.default_rng(child)
        if init == "random":
            Wt, Ht = _init_random(X, rank, rng, dt, normX2)
        else:
            Wt, Ht = _init_kmeans(X, rank, int(child.generate_state(1)[0] % (2**31 - 1)), dt)
        # An overflow (by design with the printed normalization, or X too large for the dtype) is
        # recorded as stop_reason="diverged" and explained by one ConvergenceWarning below, so numpy
        # stays quiet about it.
        with np.errstate(over="ignore", invalid="ignore"):
            n_it, stop, hist, reseeded = _hals(
                X, Wt, Ht, normX2=normX2, max_iter=int(max_iter), tol=float(tol), rng=rng,
                w_normalization=w_normalization, max_reseed=int(max_reseed),
            )
        J = float(hist[-1]) if hist.size else float("nan")
        objs.append(J)
        iters.append(n_it)
        convs.append(stop == STOP_TOL)
        if best is None or (np.isfinite(J) and (not np.isfinite(best[0]) or J < best[0])):
            best = (J, i, Wt, Ht, n_it, stop, hist, reseeded)
    J, i_best, Wt, Ht, n_it, stop, hist, reseeded = best
    W, H, _ = order_components(Wt.T, Ht.T)
    W = np.ascontiguousarray(W)
    H = np.ascontiguousarray(H)
    zero_cols = [int(k) for k in np.flatnonzero(~np.any(W > 0, axis=0))]
    if warn and stop == "diverged":
        advice = ("the paper's printed normalization diverges by design; use w_normalization='unit'"
                  if w_normalization == "printed" else
                  f"X's magnitude (||X||_F = {np.sqrt(normX2):.3g}) may exceed what {np.dtype(dt)} can hold in "
                  "X H and H^T H; rescale X or use dtype float64")
        warnings.warn(f"onmf (rank {rank}): the objective became non-finite after {n_it} iterations (diverged); "
                      f"{advice}", ConvergenceWarning, stacklevel=2)
    elif warn and stop != STOP_TOL:
        warnings.warn(
            f"onmf (rank {rank}) stopped on {stop} after {n_it} iterations without reaching tol={tol}; "
            f"raise max_iter or tol", ConvergenceWarning, stacklevel=2,
        )
    return OnmfResult(
        W=W, H=H, objective=float(J), n_iter=int(n_it), converged=stop == STOP_TOL, stop_reason=stop,
        objective_history=hist, restart_objective=np.asarray(objs, dtype=np.float64),
        restart_n_iter=np.asarray(iters, dtype=np.int64), best_restart=int(i_best), n_reseeded=int(reseeded),
        zero_columns=zero_cols, init=init, seed=seed, dtype=str(np.dtype(dt)), rank=rank,
        restart_converged=np.asarray(convs, dtype=bool),
    )


def domain_spectra(W: np.ndarray, X0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectra of the domains.

    Parameters
    ----------
    W : ndarray, shape (m, r)
    X0 : ndarray, shape (m, n)
        Normalized spectra (before reference subtraction).

    Returns
    -------
    wtx0 : ndarray, shape (r, n)
        The paper's ``W^T X0``.
    weighted_mean : ndarray, shape (r, n)
        ``W^T X0`` divided by the column sums of W: the W-weighted mean spectrum,
        on the data's own normalized scale (NaN for an all-zero column).
    """
    W64 = np.asarray(W, dtype=np.float64)
    wtx0 = W64.T @ np.asarray(X0, dtype=np.float64)
    sums = W64.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        wm = np.where(sums[:, None] > 0, wtx0 / sums[:, None], np.nan)
    return wtx0, wm
