"""Benchmark of the modified ONMF iteration (plain script, not a test).

Measured side by side in one process, at m = 90 000 pixels, n = 100 energies,
r = 10, in float32 and float64:

* median time of one HALS iteration of :func:`xasnmf.onmf.onmf`;
* median time of the two GEMMs one iteration must do (X @ H and X.T @ W);
* their ratio (target: <= 1.3 in float32), the median of per-repetition ratios,
  each repetition timing both back to back;
* scikit-learn ``NMF(solver="cd")`` and ``NMF(solver="mu")`` time per iteration
  on a non-negative matrix of the same shape and dtype;
* peak RSS of a fit (child process) next to that of a child that only builds
  X, and the peak of the fit's own allocations (tracemalloc, which sees NumPy
  buffers) as MiB and as a fraction of X: no m x n temporary means well below 1.

Usage: ``python benchmarks/bench_onmf.py [--m 90000] [--n 100] [--r 10] [--iters 30] [--repeats 11] [--json OUT.json]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np


def median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def onmf_and_gemm(X, r, iters, repeats):
    """Per-iteration time of :func:`onmf` and of the two GEMMs, measured interleaved.

    Each repetition times a fit of ``iters`` iterations, a fit of one iteration
    (init and set-up, subtracted) and ``iters - 1`` rounds of the two GEMMs
    ``X @ H`` and ``X.T @ W``, back to back: both sides of the ratio cover about
    the same stretch of wall time, so a change in machine speed (other jobs, a
    noisy host) hits them alike.  Returns the medians of the iteration time and
    of the GEMM time, and the list of per-repetition ratios.
    """
    from xasnmf.onmf import onmf

    rng = np.random.default_rng(0)
    H = rng.standard_normal((X.shape[1], r)).astype(X.dtype)
    W = rng.random((X.shape[0], r)).astype(X.dtype)

    def fit(n_it):
        onmf(X, r, n_restarts=1, init="random", max_iter=n_it, tol=0.0, dtype=str(X.dtype), seed=0, warn=False)

    def gemms():
        for _ in range(iters - 1):
            X @ H
            X.T @ W

    fit(2)  # load the compiled kernels once
    its, gemm_times, ratios = [], [], []
    for _ in range(repeats):
        full = median_time(lambda: fit(iters), 1)
        one = median_time(lambda: fit(1), 1)
        gemm = median_time(gemms, 1) / (iters - 1)
        it = (full - one) / (iters - 1)
        its.append(it)
        gemm_times.append(gemm)
        ratios.append(it / gemm)
    return float(np.median(its)), float(np.median(gemm_times)), ratios


def per_iteration_sklearn(Xpos, r, solver, iters, repeats):
    from sklearn.decomposition import NMF

    out = []
    for _ in range(repeats):
        model = NMF(n_components=r, solver=solver, init="random", max_iter=iters, tol=0.0, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            model.fit(Xpos)
            out.append((time.perf_counter() - t0) / max(model.n_iter_, 1))
    return float(np.median(out))


CHILD = r"""
import sys, resource, tracemalloc, numpy as np
m, n, r, dtype, fit = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
import xasnmf.onmf  # same imports in both children
# load the compiled kernels (numba) before measuring, in both children: their loading is not the fit
xasnmf.onmf.onmf(np.ones((64, 8), dtype=dtype), 2, n_restarts=1, init="random", max_iter=2, tol=0.0,
                 dtype=dtype, warn=False)
X = np.random.default_rng(0).standard_normal((m, n), dtype=dtype)
tracemalloc.start()
if fit:
    xasnmf.onmf.onmf(X, r, n_restarts=1, init="random", max_iter=30, tol=0.0, dtype=dtype, warn=False)
peak = tracemalloc.get_traced_memory()[1]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, peak)
"""


def peak_rss_mib(m, n, r, dtype, fit):
    """(peak RSS of the child in MiB, peak of the fit's own allocations in MiB by tracemalloc)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(m), str(n), str(r), dtype, "1" if fit else "0"],
                         capture_output=True, text=True, check=True)
    rss_kib, traced = out.stdout.strip().splitlines()[-1].split()
    return int(rss_kib) / 1024.0, int(traced) / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=90_000)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--r", type=int, default=10)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--json", help="also write the results as JSON here")
    a = ap.parse_args(argv)

    from xasnmf.provenance import blas_threads

    rows = []
    for dtype in ("float32", "float64"):
        rng = np.random.default_rng(1)
        X = rng.standard_normal((a.m, a.n), dtype=dtype)
        Xpos = np.abs(X)
        it, gemm, ratios = onmf_and_gemm(X, a.r, a.iters, a.repeats)
        ratio = float(np.median(ratios))
        cd = per_iteration_sklearn(Xpos, a.r, "cd", a.iters, max(2, a.repeats // 2))
        mu = per_iteration_sklearn(Xpos, a.r, "mu", a.iters, max(2, a.repeats // 2))
        rss_base, _ = peak_rss_mib(a.m, a.n, a.r, dtype, fit=False)
        rss_fit, traced = peak_rss_mib(a.m, a.n, a.r, dtype, fit=True)
        rows.append(dict(dtype=dtype, iter_ms=it * 1e3, gemm_ms=gemm * 1e3, iter_over_gemm=ratio,
                         iter_over_gemm_each=[round(x, 3) for x in ratios],
                         sklearn_cd_ms=cd * 1e3, sklearn_mu_ms=mu * 1e3, cd_over_iter=cd / it, mu_over_iter=mu / it,
                         rss_base_mib=rss_base, rss_fit_mib=rss_fit, x_mib=X.nbytes / 2**20, fit_alloc_mib=traced))
    print(f"m={a.m} n={a.n} r={a.r} BLAS threads={blas_threads()} numpy {np.__version__}")
    hdr = ("dtype", "iter ms", "2 GEMM ms", "iter/GEMM", "skl cd ms", "skl mu ms", "cd/iter", "mu/iter",
           "X MiB", "RSS base", "RSS fit", "fit alloc MiB", "alloc/X")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        print(f"| {r['dtype']} | {r['iter_ms']:.2f} | {r['gemm_ms']:.2f} | {r['iter_over_gemm']:.2f} | "
              f"{r['sklearn_cd_ms']:.2f} | {r['sklearn_mu_ms']:.2f} | {r['cd_over_iter']:.2f} | "
              f"{r['mu_over_iter']:.2f} | {r['x_mib']:.1f} | {r['rss_base_mib']:.0f} | {r['rss_fit_mib']:.0f} | "
              f"{r['fit_alloc_mib']:.1f} | {r['fit_alloc_mib'] / r['x_mib']:.2f} |")
    for r in rows:
        print(f"{r['dtype']} iter/GEMM per repetition: {' '.join(f'{x:.2f}' for x in r['iter_over_gemm_each'])}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
