"""Dataset-level entry points: cube in, result Dataset out.

These are what the CLI and the workflow scripts call; they translate between
the canonical cube (:mod:`xasnmf.cube`) and the NumPy core (:mod:`xasnmf.onmf`,
:mod:`xasnmf.bcv`), and attach coordinates, units and provenance.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .bcv import aggregate_bcv, bcv_errors, bcv_fold_error, project_nuisance
from .cube import cube_matrix, rows_to_maps
from .errors import InputError
from .onmf import domain_spectra, onmf
from .provenance import provenance_attrs

__all__ = ["fit_cube", "bcv_job", "collect_bcv", "bcv_cube", "bcv_dataset", "parse_ranks"]


def parse_ranks(text: str | Sequence[int]) -> list[int]:
    """Parse ``"4-9"``, ``"2,3,5"`` or ``"2-4,7"`` (or pass a sequence through)."""
    if not isinstance(text, str):
        ranks = [int(r) for r in text]
    else:
        ranks = []
        try:
            for part in text.split(","):
                part = part.strip()
                if "-" in part:
                    a, b = part.split("-", 1)
                    a, b = int(a), int(b)
                    if b < a:
                        raise InputError(f"rank range {part!r} is reversed", source="--ranks",
                                         fix=f"write it as {b}-{a}")
                    ranks.extend(range(a, b + 1))
                elif part:
                    ranks.append(int(part))
        except InputError:
            raise
        except ValueError:
            raise InputError(f"cannot read ranks {text!r}", source="--ranks",
                             fix="give a range like 4-9 or a list like 2,3,5") from None
    if not ranks or min(ranks) < 1 or len(set(ranks)) != len(ranks):
        raise InputError(f"ranks must be distinct integers >= 1, got {ranks}", source="--ranks")
    return sorted(ranks)


def _coord_vars(ds):
    return {name: ds[name] for name in ("y", "x", "energy")}


def fit_cube(
    ds,
    *,
    rank: int,
    n_restarts: int = 5,
    init: str = "kmeans",
    seed: int = 0,
    max_iter: int = 500,
    tol: float = 1e-5,
    dtype: str = "float32",
    nuisance: str = "offset+scale",
    source: str = "cube",
):
    """Modified ONMF of a canonical cube at one rank.

    ``nuisance`` (as in BCV, :func:`xasnmf.bcv.project_nuisance`) projects the per-pixel offset
    and scale terms that endpoint normalization leaves in noisy spectra out of X before the fit:
    ``X P = W (P H)^T`` keeps the domains, and without it k-means-initialized fits of the synthetic
    paper cube merged its smallest domain (matched cosine 0.14; 0.99 with ``"offset+scale"``).
    ``H`` is then the projected difference spectra ``P H``; the domain spectra are always
    computed from the unprojected X0.  ``"none"`` is the paper's fit of X itself.

    Returns
    -------
    xarray.Dataset
        ``W(component, y, x)`` (NaN at masked pixels), ``H(component, energy)``,
        ``spectrum(component, energy)`` (W-weighted mean of X0),
        ``spectrum_wtx0(component, energy)`` (the paper's W^T X0),
        ``restart_objective(restart)``, ``objective_history(iteration)``,
        ``mask(y, x)``; attributes ``rank``, ``seed``, ``objective``, ``n_iter``,
        ``converged``, ``stop_reason`` and provenance.
    """
    import xarray as xr

    cm = cube_matrix(ds, dtype=np.float64 if dtype == "float64" else np.float32, source=source)
    X = project_nuisance(cm.X, nuisance, reference=cm.reference)
    res = onmf(X, rank, n_restarts=n_restarts, init=init, seed=seed, max_iter=max_iter, tol=tol,
               dtype=dtype)
    wtx0, wmean = domain_spectra(res.W, cm.X0)
    comp = np.arange(1, res.W.shape[1] + 1)
    out = xr.Dataset(
        {
            "W": (("component", "y", "x"), rows_to_maps(res.W, cm.mask).astype(np.float32),
                  {"long_name": "domain map (column of W, unit L2 norm over valid pixels)", "units": "1"}),
            "H": (("component", "energy"), res.H.T.astype(np.float32),
                  {"long_name": "difference spectrum (column of H)", "units": "1"}),
            "spectrum": (("component", "energy"), wmean.astype(np.float32),
                         {"long_name": "W-weighted mean normalized spectrum (W^T X0 / column sum of W)",
                          "units": "1"}),
            "spectrum_wtx0": (("component", "energy"), wtx0.astype(np.float32),
                              {"long_name": "domain spectrum W^T X0 (paper)", "units": "1"}),
            "restart_objective": (("restart",), res.restart_objective,
                                  {"long_name": "final objective ||X - W H^T||^2 of each restart"}),
            "restart_n_iter": (("restart",), res.restart_n_iter),
            "objective_history": (("iteration",), res.objective_history,
                                  {"long_name": "objective after each iteration of the kept restart"}),
            "mask": (("y", "x"), cm.mask.astype(np.int8), {"long_name": "pixel used (1) or masked (0)"}),
        },
        coords={**_coord_vars(ds), "component": ("component", comp, {"long_name": "domain index"}),
                "restart": ("restart", np.arange(res.restart_objective.size)),
                "iteration": ("iteration", np.arange(1, res.objective_history.size + 1))},
    )
    if cm.reference is not None:
        out["reference"] = ("energy", cm.reference.astype(np.float32), {"long_name": "reference spectrum b"})
    out.attrs.update(provenance_attrs(rank=rank, n_restarts=n_restarts, init=init, seed=seed, max_iter=max_iter,
                                      tol=tol, dtype=dtype, nuisance=nuisance))
    out.attrs.update({
        "title": "xasnmf modified ONMF fit", "rank": int(rank), "seed": int(seed), "init": init,
        "objective": res.objective, "n_iter": res.n_iter, "converged": int(res.converged),
        "stop_reason": res.stop_reason, "best_restart": res.best_restart, "n_reseeded": res.n_reseeded,
        "nuisance": nuisance,
        "zero_columns": ",".join(map(str, res.zero_columns)), "dtype": res.dtype,
        "n_pixels_used": int(cm.mask.sum()), "input_source": str(ds.attrs.get("source", source)),
        "component_order": "decreasing column sum of W",
    })
    return out


def bcv_job(
    ds,
    *,
    rank: int,
    seed: int,
    fold: int,
    n_folds: int = 20,
    method: str = "svd",
    nuisance: str = "offset+scale",
    init: str = "random",
    n_restarts: int = 1,
    max_iter: int = 500,
    tol: float = 1e-5,
    dtype: str = "float32",
    source: str = "cube",
):
    """One (rank, seed, fold) BCV trial of a cube, as a small Dataset.

    The Dataset holds the scalar ``error`` and attributes ``rank``, ``seed``,
    ``fold``, ``n_folds``, ``method``, ``nuisance``, fit diagnostics and provenance.
    """
    import xarray as xr

    cm = cube_matrix(ds, dtype=np.float64 if dtype == "float64" else np.float32, source=source)
    t = bcv_fold_error(cm.X, rank=rank, fold=fold, seed=seed, n_folds=n_folds, method=method, nuisance=nuisance,
                       reference=cm.reference,
                       init=init, n_restarts=n_restarts, max_iter=max_iter, tol=tol, dtype=dtype)
    out = xr.Dataset({"error": ((), t.error, {"long_name": "BCV error ||X_A - X_B pinv(W_D H_D^T) X_C||^2"})})
    params = dict(rank=rank, seed=seed, fold=fold, n_folds=n_folds, method=method, nuisance=nuisance,
                         init=init, n_restarts=n_restarts, max_iter=max_iter, tol=tol, dtype=dtype)
    out.attrs.update(provenance_attrs(**params))
    out.attrs.update({k: v for k, v in params.items()})
    out.attrs.update({"n_iter": t.n_iter, "converged": int(t.converged), "stop_reason": t.stop_reason,
                      "zero_columns": t.zero_columns, "n_pixels_used": int(cm.mask.sum())})
    return out


def bcv_dataset(error, *, ranks, seeds, folds, agg, attrs):
    """Build the BCV result Dataset from an error array (rank, seed, fold) and its aggregate."""
    import xarray as xr

    out = xr.Dataset(
        {
            "error": (("rank", "seed", "fold"), np.asarray(error, dtype=np.float64),
                      {"long_name": "BCV error of each (rank, seed, fold) trial"}),
            "trial_error": (("rank", "seed"), agg.trial_error, {"long_name": "mean BCV error over folds"}),
            "excluded": (("rank", "seed"), agg.excluded.astype(np.int8),
                         {"long_name": "trial dropped as outlier (1)", "rule": agg.outlier_rule}),
            "mean_error": (("rank",), agg.mean_error, {"long_name": "mean BCV error of kept trials"}),
            "se": (("rank",), agg.se, {"long_name": "standard error of kept (seed, fold) errors"}),
        },
        coords={"rank": ("rank", np.asarray(ranks, dtype=np.int64), {"long_name": "number of components r"}),
                "seed": ("seed", np.asarray(seeds, dtype=np.int64)),
                "fold": ("fold", np.asarray(folds, dtype=np.int64))},
    )
    out.attrs.update(attrs)
    out.attrs.update({"title": "xasnmf bi-cross-validation", "selected_rank": agg.selected_rank,
                      "one_se_rank": agg.one_se_rank, "selection_rule": "argmin of mean_error (paper)",
                      "one_se_rule": "smallest rank within one SE of the minimum (extra, not the paper's rule)",
                      "outlier_rule": agg.outlier_rule, "outlier_k": agg.outlier_k,
                      "outlier_min_rel": agg.outlier_min_rel})
    return out


_JOB_KEYS = ("n_folds", "method", "nuisance", "init", "n_restarts", "max_iter", "tol", "dtype")


def collect_bcv(jobs: Iterable, *, outlier_rule: str = "mad", outlier_k: float = 3.0, sources=None):
    """Collect per-job BCV Datasets (from :func:`bcv_job`) into one BCV Dataset.

    All jobs must share the settings in ``n_folds, method, nuisance, init, ...``;
    every (rank, seed, fold) combination of the grid they span must be present
    exactly once.
    """
    jobs = list(jobs)
    if not jobs:
        raise InputError("no BCV job files given", source="bcv-collect")
    names = list(sources) if sources is not None else [f"job {i}" for i in range(len(jobs))]
    ref = {k: jobs[0].attrs.get(k) for k in _JOB_KEYS}
    for j, name in zip(jobs, names):
        if "error" not in j:
            raise InputError("is not a BCV job file (no variable 'error')", source=str(name))
        for k in _JOB_KEYS:
            if j.attrs.get(k) != ref[k]:
                raise InputError(f"setting {k}={j.attrs.get(k)!r} differs from {ref[k]!r} of the first job",
                                 source=str(name), fix="collect only jobs of one BCV run")
    ranks = sorted({int(j.attrs["rank"]) for j in jobs})
    seeds = sorted({int(j.attrs["seed"]) for j in jobs})
    folds = sorted({int(j.attrs["fold"]) for j in jobs})
    n_folds = int(ref["n_folds"])
    if folds != list(range(n_folds)):
        absent = sorted(set(range(n_folds)) - set(folds))
        raise InputError(f"the jobs cover folds {folds} of the {n_folds} folds they were made with "
                         f"(missing: {absent}); a BCV error needs every fold", source="bcv-collect",
                         fix="give the job files of all folds (or re-run the missing bcv-job commands)")
    err = np.full((len(ranks), len(seeds), len(folds)), np.nan)
    for j, name in zip(jobs, names):
        idx = (ranks.index(int(j.attrs["rank"])), seeds.index(int(j.attrs["seed"])),
               folds.index(int(j.attrs["fold"])))
        if np.isfinite(err[idx]):
            raise InputError(f"duplicate job rank={j.attrs['rank']} seed={j.attrs['seed']} fold={j.attrs['fold']}",
                             source=str(name))
        err[idx] = float(j["error"].values)
    missing = np.argwhere(~np.isfinite(err))
    if missing.size:
        r, s, f = missing[0]
        raise InputError(f"{len(missing)} (rank, seed, fold) jobs are missing, e.g. rank={ranks[r]} "
                         f"seed={seeds[s]} fold={folds[f]}", source="bcv-collect",
                         fix="give every job file of the grid")
    agg = aggregate_bcv(err, ranks, outlier_rule=outlier_rule, outlier_k=outlier_k)
    attrs = provenance_attrs(ranks=ranks, seeds=seeds, folds=folds, outlier_rule=outlier_rule, outlier_k=outlier_k,
                             **ref)
    attrs.update({k: v for k, v in ref.items() if v is not None})
    attrs["n_jobs"] = len(jobs)
    return bcv_dataset(err, ranks=ranks, seeds=seeds, folds=folds, agg=agg, attrs=attrs)


def bcv_cube(
    ds,
    *,
    ranks: Sequence[int],
    n_folds: int = 20,
    seeds: Sequence[int] = range(5),
    method: str = "svd",
    nuisance: str = "offset+scale",
    init: str = "random",
    n_restarts: int = 1,
    max_iter: int = 500,
    tol: float = 1e-5,
    dtype: str = "float32",
    outlier_rule: str = "mad",
    outlier_k: float = 3.0,
    source: str = "cube",
):
    """Whole BCV of a cube in one process (the CLI's ``bcv``)."""
    cm = cube_matrix(ds, dtype=np.float64 if dtype == "float64" else np.float32, source=source)
    ranks = list(ranks)
    seeds = list(seeds)
    folds = list(range(n_folds))
    err = bcv_errors(cm.X, ranks=ranks, n_folds=n_folds, seeds=seeds, method=method, nuisance=nuisance,
                     reference=cm.reference, init=init,
                     n_restarts=n_restarts, max_iter=max_iter, tol=tol, dtype=dtype)
    agg = aggregate_bcv(err, ranks, outlier_rule=outlier_rule, outlier_k=outlier_k)
    params = dict(ranks=ranks, seeds=seeds, n_folds=n_folds, method=method, nuisance=nuisance, init=init,
                  n_restarts=n_restarts, max_iter=max_iter, tol=tol, dtype=dtype, outlier_rule=outlier_rule,
                  outlier_k=outlier_k)
    attrs = provenance_attrs(**params)
    attrs.update({k: v for k, v in params.items() if not isinstance(v, list)})
    attrs["n_pixels_used"] = int(cm.mask.sum())
    return bcv_dataset(err, ranks=ranks, seeds=seeds, folds=folds, agg=agg, attrs=attrs)
