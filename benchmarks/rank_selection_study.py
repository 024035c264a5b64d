"""How often does BCV pick the true rank?  (plain script, not a test)

For generator seeds 0..S-1 of :func:`xasnmf.synthetic.synthesize` (8 domains,
noise 0.01), preprocessed as the workflow does (the paper's per-pixel ``edge``
normalization, then X = X0 - 1 b with the generator's reference b), it runs BCV
with each variant below and records the rank chosen by the paper's argmin rule
and by the one-standard-error rule:

* ``svd`` with nuisance ``none`` / ``offset`` / ``offset+scale``;
* ``onmf`` + random init (the paper), single start per trial, nuisance ``none``
  and ``offset+scale``;
* ``onmf`` + k-means init, nuisance ``none`` and ``offset+scale``.

Sizes: ``small`` (84 x 84 = 7 056 pixels, 60 energies, all 20 folds) and
``paper`` (400 x 400 x 100; all 20 folds for svd, ``--paper-folds`` folds for
onmf, whose fits dominate the cost).  One BCV seed per trial for onmf (the
generator seeds supply the replication).  Results go to JSON and a Markdown
table.

Usage: ``python benchmarks/rank_selection_study.py --sizes small paper --seeds 8 --out study.json``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

import numpy as np

SIZES = {"small": dict(shape=(84, 84), n_energies=60), "paper": dict(shape=(400, 400), n_energies=100)}
VARIANTS = [
    ("svd", "random", "none"),
    ("svd", "random", "offset"),
    ("svd", "random", "offset+scale"),
    ("onmf", "random", "none"),
    ("onmf", "random", "offset+scale"),
    ("onmf", "kmeans", "none"),
    ("onmf", "kmeans", "offset+scale"),
]
RANKS = list(range(4, 11))


def prepared(size, seed):
    from xasnmf.cube import cube_matrix
    from xasnmf.preprocess import preprocess
    from xasnmf.synthetic import synthesize

    ds = synthesize(seed=seed, n_domains=8, noise=0.01, **SIZES[size])
    pre = preprocess(ds, norm="edge")
    pre["reference"] = ds["reference"]
    return cube_matrix(pre, dtype=np.float32)


def run_task(task):
    from threadpoolctl import threadpool_limits

    size, seed, method, init, nuisance, folds = task
    with threadpool_limits(1):
        from xasnmf.bcv import aggregate_bcv, bcv_errors

        cm = prepared(size, seed)
        t0 = time.perf_counter()
        err = bcv_errors(cm.X, ranks=RANKS, n_folds=20, seeds=[0], folds=folds, method=method, init=init,
                         nuisance=nuisance, reference=cm.reference, n_restarts=1)
        agg = aggregate_bcv(err, RANKS)
        return dict(size=size, seed=seed, method=method, init=init, nuisance=nuisance, n_folds_used=len(folds),
                    mean_error=agg.mean_error.tolist(), selected=agg.selected_rank, one_se=agg.one_se_rank,
                    seconds=time.perf_counter() - t0)


def table(results, true_rank=8):
    lines = ["| size | method | init | nuisance | folds | argmin right | one-SE right | argmin picks | one-SE picks |",
             "|---|---|---|---|---|---|---|---|---|"]
    keys = []
    for r in results:
        k = (r["size"], r["method"], r["init"] if r["method"] == "onmf" else "-", r["nuisance"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        rs = [r for r in results if (r["size"], r["method"], r["init"] if r["method"] == "onmf" else "-",
                                     r["nuisance"]) == k]
        rs.sort(key=lambda r: r["seed"])
        a = sum(r["selected"] == true_rank for r in rs)
        o = sum(r["one_se"] == true_rank for r in rs)
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {rs[0]['n_folds_used']} | {a}/{len(rs)} | {o}/{len(rs)} | "
                     f"{' '.join(str(r['selected']) for r in rs)} | {' '.join(str(r['one_se']) for r in rs)} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["small", "paper"], choices=sorted(SIZES))
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--paper-folds", type=int, default=3, help="folds used for onmf at paper size")
    ap.add_argument("--variants", nargs="+", default=None, help="subset, e.g. svd:random:none onmf:kmeans:offset+scale")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--out", default="rank_selection_study.json")
    a = ap.parse_args(argv)
    variants = VARIANTS if a.variants is None else [tuple(v.split(":")) for v in a.variants]
    tasks = []
    for size in a.sizes:
        for method, init, nuisance in variants:
            folds = list(range(20)) if (size == "small" or method == "svd") else list(range(a.paper_folds))
            for seed in range(a.seeds):
                tasks.append((size, seed, method, init, nuisance, folds))
    results = []
    if os.path.exists(a.out):
        results = json.load(open(a.out))
    done = {(r["size"], r["seed"], r["method"], r["init"], r["nuisance"]) for r in results}
    tasks = [t for t in tasks if t[:5] not in done]
    with Pool(a.processes) as pool:
        for res in pool.imap_unordered(run_task, tasks):
            results.append(res)
            print(json.dumps({k: res[k] for k in ("size", "seed", "method", "init", "nuisance", "selected",
                                                   "one_se", "seconds")}), flush=True)
            with open(a.out + ".tmp", "w") as fh:
                json.dump(results, fh, indent=1)
            os.replace(a.out + ".tmp", a.out)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
