"""Compiled (numba) kernels of the HALS iteration of :mod:`xasnmf.onmf`.

The two GEMMs of an iteration (``X H`` and ``X^T W``) stay with the BLAS; what
is compiled here is the O(m r^2) vector work around them, which in NumPy cost
about ten library calls and passes over m-vectors per column (0.5x the GEMMs).

:func:`w_sweep` updates the r columns of W in order (Algorithm 1, lines 4-11)::

    u     = A[:, k] - sum_{j != k} B[j, k] w_j
    W^(k) = sum_{j != k} w_j
    w_k   = [u - (W^(k)T u / W^(k)T W^(k)) W^(k)]_+
    w_k   = w_k / ||w_k||            (or the paper's printed w_k / ||w_k||^2)

with two passes per column over pixel chunks: pass 1 reads the other rows of
W once for both the GEMV and ``W^(k)`` (four rows per pass over a chunk) and sums
``<W^(k), W^(k)>`` and ``<W^(k), u>``; pass 2 rectifies and sums ``||w_k||^2``.
W is held transposed and *unscaled* (``W = diag(s) Wt``): normalizing a column
only sets ``s[k]``, and the scales enter the coefficients of the next columns,
``C = X^T W`` and ``D = W^T W`` instead of costing a pass.  ``D`` is summed
during the sweep from rows that pass 1 reads anyway (:func:`finish_gram` adds
the last row's products: one pass instead of OpenBLAS's 1.5-2 ms
``Wt @ Wt.T``).  ``A^T`` comes from ``X @ H`` (the faster GEMM orientation) in
row blocks, each transposed while in cache (:func:`xh_transposed`).

The kernels run on one thread, by design: right after a GEMM, OpenBLAS's
worker threads keep spinning for a while, and a second thread pool (numba's)
competing with them for the cores made a parallel sweep slower than this one
in the iteration (measured on the 2-core development machine).

Determinism: pixels are cut into chunks of a fixed size (:data:`CHUNK`); every
dot product is summed per chunk in the working dtype (so it vectorizes) and the
chunk sums are added in float64 in chunk order.  Same inputs give the same bits
on the same binary (numba/LLVM version and CPU, which the provenance records).

Every kernel ends with ``vzeroupper`` on x86 with AVX (:func:`_clear_upper_ymm`).
"""

from __future__ import annotations

import platform
import warnings

import numpy as np
from numba import config, njit, types
from numba.extending import intrinsic

__all__ = ["CHUNK", "finish_gram", "gemm_block_rows", "h_update", "n_chunks", "transpose_into", "w_sweep",
           "xh_transposed"]

#: Pixels per chunk (a multiple of the SIMD width; 4 arrays x 16 KiB stay in L1/L2).
CHUNK = 4096

# Reassociation lets LLVM vectorize the chunk sums; no NaN/Inf assumptions
# ("nnan"/"ninf" are not set), so a diverging fit still shows up as a non-finite objective.
_FASTMATH = {"reassoc", "contract", "nsz"}


_NO_CACHE_WARNED = False


def _kernel(**options):
    """``numba.njit(cache=True, nogil=True, **options)``, compiling per process where nothing can be cached.

    numba caches beside the package or in the user's cache directory; where neither
    is writable (read-only install and no writable home) ``cache=True`` raises at
    decoration time.  Then the kernels are compiled in every process (about 7 s
    per dtype) and one RuntimeWarning says how to avoid that.
    """
    def decorate(fn):
        global _NO_CACHE_WARNED
        try:
            return njit(cache=True, nogil=True, **options)(fn)
        except RuntimeError as exc:  # "cannot cache function ...: no locator available"
            if not _NO_CACHE_WARNED:
                _NO_CACHE_WARNED = True
                warnings.warn(
                    f"xasnmf: numba cannot cache the ONMF kernels ({exc}); they are compiled in every process "
                    "(about 7 s per dtype). Fix: set NUMBA_CACHE_DIR to a writable directory.",
                    RuntimeWarning, stacklevel=3)
            return njit(cache=False, nogil=True, **options)(fn)
    return decorate


def _host_has_avx() -> bool:
    """True when the kernels are compiled for this x86 host and it has AVX."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if config.CPU_NAME or config.CPU_FEATURES:  # a target chosen by the user (NUMBA_CPU_NAME/FEATURES)
        return False
    try:
        import llvmlite.binding as llvm

        return bool(llvm.get_host_cpu_features().get("avx", False))
    except Exception:  # pragma: no cover - llvmlite without feature query
        return False


_YMM_CLOBBERS = ",".join(f"~{{ymm{i}}}" for i in range(16))


@intrinsic
def _clear_upper_ymm(typingctx):  # pragma: no cover - compiled
    """``vzeroupper`` on x86 with AVX, nothing elsewhere.

    LLVM's tuning for AMD Zen omits ``vzeroupper`` at function exits, so after a
    kernel compiled for the host the upper halves of the YMM registers stay
    dirty, and the next OpenBLAS GEMM on this thread ran 1.5-2x slower
    (presumably SSE/AVX transition penalties): measured 12 -> 17-25 ms for
    ``X.T @ W`` right after the sweep on a Zen 1 machine, 12 ms again with this
    instruction (and with ``NUMBA_CPU_NAME=haswell``, whose tuning emits it).
    """
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _HAS_AVX:
            from llvmlite import ir

            builder.asm(ir.FunctionType(ir.VoidType(), []), "vzeroupper", _YMM_CLOBBERS, [],
                        side_effect=True)
        return context.get_dummy_value()

    return sig, codegen


if config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1 (debugging): the kernels run as Python, where no asm is needed
    def _clear_upper_ymm():  # noqa: F811
        return None

_HAS_AVX = _host_has_avx() and not config.DISABLE_JIT
if _HAS_AVX:  # the inline asm above needs LLVM's assembly parser, which numba does not load
    import llvmlite.binding as _llvm

    _llvm.initialize_native_asmparser()


def n_chunks(m: int) -> int:
    """Number of pixel chunks for ``m`` pixels."""
    return (int(m) + CHUNK - 1) // CHUNK


def _w_sweep(Wt, s, A, B, k0, unit, u, Wo, part, coefs, G, normX2):  # pragma: no cover - compiled
    """Update columns ``k0..r-1`` of ``W = diag(s) Wt`` in place.

    The rows of ``Wt`` are held unscaled and their scales in ``s`` (so a new
    column costs no extra pass to normalize): the true ``w_j`` is ``s[j] * Wt[j]``.
    On the way, the Gram matrix of the new rows is summed into ``G`` (see
    :func:`finish_gram`): pass 1 of column k reads every other row anyway, so
    the products of the finished row k-1 with the rows before it cost no memory
    traffic of their own.

    Parameters
    ----------
    Wt : ndarray, shape (r, m), C-contiguous float32/float64
        Unscaled rows of W transposed; rows ``< k0`` are already updated in this sweep.
    s : ndarray, shape (r,), float64
        Row scales; ``s[k]`` is set for every updated column.
    A : ndarray, shape (r, m), same dtype as Wt
        ``(X H)^T`` of this iteration.
    B : ndarray, shape (r, r), same dtype
        ``H^T H`` of this iteration.
    k0 : int
        First column to update.
    unit : bool
        True: ``w_k / ||w_k||`` (correct); False: the paper's printed ``w_k / ||w_k||^2``.
    u, Wo : ndarray, shape (m,), same dtype
        Work vectors.
    part : ndarray, shape (n_chunks(m), 2), float64
        Per-chunk partial sums.
    coefs : ndarray, shape (3, r + 1), same dtype
        Work space for the per-column coefficients in the working dtype.
    G : ndarray, shape (r, r), float64
        Products of the unscaled new rows: ``G[j, l] = <Wt[j], Wt[l]>`` for ``j < l``
        (``l <= r - 2``) and ``G[k, k]``, written for every updated column.
    normX2 : float
        ``||X||_F^2`` (sets the scale at which the new rows are stored).

    Returns
    -------
    int
        -1 when all columns were updated; otherwise the index k of a column that
        rectified to all zeros (left at zero with ``s[k] = 0``, every earlier column
        finished), so the caller can re-seed it and continue from ``k + 1``.  A
        column whose sum of squares is NaN or infinite is not taken for zero: it
        gets ``s[k] = NaN``, which makes the objective non-finite ("diverged").
    """
    r, m = Wt.shape
    nch = (m + CHUNK - 1) // CHUNK
    others = np.empty(r, dtype=np.int64)
    gd = np.empty(r, dtype=np.float64)
    bw = coefs[0]                   # B[j, k] * s[j] for the other rows j
    sw = coefs[1]                   # s[j]
    gc = coefs[2]                   # chunk sums of <w_l, w_j>; gc[r]: the row's prescale g
    sw[r] = 0.0
    zero = sw[r]                    # 0 in the working dtype
    for k in range(k0, r):
        nj = 0
        for j in range(r):
            if j != k:
                others[nj] = j
                bw[nj] = B[j, k] * s[j]
                sw[nj] = s[j]
                gd[nj] = 0.0
                nj += 1
        # the row finished last (k - 1), or row k itself before k = 0 (its products are not used)
        lrow = k - 1 if k > 0 else k
        # pass 1: u = A_k - sum_{j != k} B_jk w_j,  Wo = sum_{j != k} w_j,  <Wo, Wo>, <Wo, u>,
        # and <w_l, w_j> for the other rows j
        for c in range(nch):
            i0 = c * CHUNK
            i1 = min(m, i0 + CHUNK)
            n = i1 - i0
            uc = u[i0:i1]
            oc = Wo[i0:i1]
            ak = A[k, i0:i1]
            wl = Wt[lrow, i0:i1]
            for t in range(n):
                uc[t] = ak[t]
                oc[t] = 0.0
            q = 0
            while q + 3 < nj:       # four rows per pass over the chunk
                b1 = bw[q]
                b2 = bw[q + 1]
                b3 = bw[q + 2]
                b4 = bw[q + 3]
                s1 = sw[q]
                s2 = sw[q + 1]
                s3 = sw[q + 2]
                s4 = sw[q + 3]
                w1 = Wt[others[q], i0:i1]
                w2 = Wt[others[q + 1], i0:i1]
                w3 = Wt[others[q + 2], i0:i1]
                w4 = Wt[others[q + 3], i0:i1]
                g1 = zero
                g2 = zero
                g3 = zero
                g4 = zero
                for t in range(n):
                    x1 = w1[t]
                    x2 = w2[t]
                    x3 = w3[t]
                    x4 = w4[t]
                    y = wl[t]
                    uc[t] -= (b1 * x1 + b2 * x2) + (b3 * x3 + b4 * x4)
                    oc[t] += (s1 * x1 + s2 * x2) + (s3 * x3 + s4 * x4)
                    g1 += y * x1
                    g2 += y * x2
                    g3 += y * x3
                    g4 += y * x4
                gc[q] = g1
                gc[q + 1] = g2
                gc[q + 2] = g3
                gc[q + 3] = g4
                q += 4
            while q < nj:           # the remaining rows one by one
                b1 = bw[q]
                s1 = sw[q]
                w1 = Wt[others[q], i0:i1]
                g1 = zero
                for t in range(n):
                    x1 = w1[t]
                    uc[t] -= b1 * x1
                    oc[t] += s1 * x1
                    g1 += wl[t] * x1
                gc[q] = g1
                q += 1
            for q in range(nj):
                gd[q] += gc[q]
            oo = zero               # chunk sums in the working dtype (vectorized), totals in float64
            ou = zero
            for t in range(n):
                o = oc[t]
                oo += o * o
                ou += o * uc[t]
            part[c, 0] = oo
            part[c, 1] = ou
        if k > 0:
            for q in range(nj):
                j = others[q]
                if j < lrow:
                    G[j, lrow] = gd[q]
        oo = 0.0
        ou = 0.0
        for c in range(nch):
            oo += part[c, 0]
            ou += part[c, 1]
        # W^(k)T W^(k) = 0 (r = 1, or all other columns zero): no projection
        bw[r] = ou / oo if oo > 0.0 else 0.0
        cf = bw[r]
        # The new row is stored times g = 1 / (||X||_F ||h_k||), a bound on ||X h_k|| ~ ||u||, so that it
        # comes out at most about unit norm whatever the magnitude of X: its sum of squares (~ |X|^4
        # unscaled) then neither overflows nor underflows in float32.  g > 0 commutes with [.]_+ and
        # cancels in the unit norm.
        g = np.sqrt(normX2 * np.float64(B[k, k]))
        g = 1.0 / g if (g > 0.0 and g < np.inf) else 1.0
        gc[r] = g
        gg = gc[r]
        # pass 2: w_k = [u - coef Wo]_+,  ||w_k||^2
        for c in range(nch):
            i0 = c * CHUNK
            i1 = min(m, i0 + CHUNK)
            uc = u[i0:i1]
            oc = Wo[i0:i1]
            wk = Wt[k, i0:i1]
            ww = zero
            for t in range(i1 - i0):
                w = (uc[t] - cf * oc[t]) * gg
                if w < zero:            # [.]_+ ; NaN passes through, as with np.maximum
                    w = zero
                wk[t] = w
                ww += w * w
            part[c, 0] = ww
        ww = 0.0
        for c in range(nch):
            ww += part[c, 0]
        G[k, k] = ww
        if ww == 0.0:
            s[k] = 0.0
            _clear_upper_ymm()
            return k
        if not ww < np.inf:             # NaN or overflow: let it reach the objective (stop "diverged")
            s[k] = np.nan
            G[k, k] = np.nan
        else:
            # unit: w = v / ||v|| = row / sqrt(ww); printed: w = v / ||v||^2 = row * g / ww
            s[k] = 1.0 / np.sqrt(ww) if unit else g / ww
    _clear_upper_ymm()
    return -1


@_kernel(fastmath=_FASTMATH)
def finish_gram(Wt, s, G, D, gc):  # pragma: no cover - compiled
    """``D = W^T W = diag(s) G diag(s)`` after a full sweep.

    The sweep left every product but those of the last row; they take one pass
    over ``Wt`` here (chunk sums in the working dtype, totals in float64).
    ``D`` has the dtype of ``Wt``; ``gc`` is work space of that dtype, shape (r,).
    """
    r, m = Wt.shape
    last = r - 1
    gd = np.zeros(r, dtype=np.float64)
    gc[0] = 0.0
    zero = gc[0]
    for i0 in range(0, m, CHUNK):
        i1 = min(m, i0 + CHUNK)
        wl = Wt[last, i0:i1]
        for j in range(last):
            wj = Wt[j, i0:i1]
            acc = zero
            for t in range(i1 - i0):
                acc += wl[t] * wj[t]
            gd[j] += acc
    for j in range(last):
        G[j, last] = gd[j]
    for j in range(r):
        D[j, j] = G[j, j] * s[j] * s[j]
        for k in range(j + 1, r):
            v = G[j, k] * s[j] * s[k]
            D[j, k] = v
            D[k, j] = v
    _clear_upper_ymm()


@_kernel()
def h_update(Ct, D, Ht, normX2):  # pragma: no cover - compiled
    """h-sweep (Eq. 12) in place, then the objective; r x n work, all in float64.

    ``h_k = C_k - sum_{j != k} D_jk h_j`` for k = 1..r in order (the least-squares
    update of h_k when ``D_kk = ||w_k||^2 = 1``), then
    ``J = ||X||^2 - 2 tr(W^T X H) + tr(W^T W H^T H)`` from ``C``, ``D`` and the new
    ``H``, without another pass over X.
    """
    r, n = Ht.shape
    h = np.empty(n, dtype=np.float64)
    for k in range(r):
        for e in range(n):
            h[e] = Ct[k, e]
        for j in range(r):
            if j != k:
                d = np.float64(D[j, k])
                for e in range(n):
                    h[e] -= d * Ht[j, e]
        for e in range(n):
            Ht[k, e] = h[e]
    cross = 0.0
    for k in range(r):
        for e in range(n):
            cross += np.float64(Ct[k, e]) * np.float64(Ht[k, e])
    quad = 0.0
    for j in range(r):
        for k in range(r):
            g = 0.0
            for e in range(n):
                g += np.float64(Ht[j, e]) * np.float64(Ht[k, e])
            quad += np.float64(D[j, k]) * g
    _clear_upper_ymm()  # the next call is the next iteration's GEMM
    return normX2 - 2.0 * cross + quad


@_kernel(fastmath=_FASTMATH)
def transpose_into(A, At):  # pragma: no cover - compiled
    """``At[:] = A.T`` for a tall A (m x r), reading A row by row (faster than NumPy's copy)."""
    m, r = A.shape
    for i in range(m):
        for k in range(r):
            At[k, i] = A[i, k]
    _clear_upper_ymm()


w_sweep = _kernel(fastmath=_FASTMATH)(_w_sweep)

#: Bytes of X per block of :func:`xh_transposed` (the block of X and of A stay in L2).
GEMM_BLOCK_BYTES = 1 << 20


def gemm_block_rows(n: int, itemsize: int) -> int:
    """Pixel rows per block of :func:`xh_transposed`: about 1 MiB of X, 256-8192 rows."""
    rows = GEMM_BLOCK_BYTES // max(1, int(n) * int(itemsize))
    return int(min(8192, max(256, rows - rows % 64)))


def xh_transposed(X, Ht, At, Ablk):
    """``At[:] = (X @ Ht.T).T`` block by block.

    Each block of rows is one BLAS GEMM in the fast orientation (``X_b @ H``) into
    the small buffer ``Ablk`` (block rows x r, see :func:`gemm_block_rows`),
    transposed into ``At`` while it is still in cache.  Measured at
    90 000 x 100 x 10, against the plain ``X @ H`` in the same process: 0.85x in
    float32 (2048-row blocks) and 0.87x in float64 (1024), transposition
    included; ``Ht @ X.T`` took 1.11x in float32.
    """
    m = X.shape[0]
    rows = Ablk.shape[0]
    HtT = Ht.T
    for i0 in range(0, m, rows):
        i1 = min(m, i0 + rows)
        a = Ablk[: i1 - i0]
        np.matmul(X[i0:i1], HtT, out=a)
        transpose_into(a, At[:, i0:i1])
