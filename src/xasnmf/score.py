"""Score a fit (and a BCV rank choice) against synthetic ground truth (issue #4).

* :func:`match_domains` -- Hungarian matching of fitted to true domain maps on cosine
  similarity (``scipy.optimize.linear_sum_assignment``, maximizing the total cosine);
  per-domain cosine, minimum, and the components left over when the fitted rank ``r``
  differs from the true number of domains ``k``.
* :func:`score_fit` -- reads a fit file (``W(component, y, x)``, NaN at masked pixels;
  ``spectrum(component, energy)``, the W-weighted mean spectra) and a
  :func:`xasnmf.synthetic.synthesize` file; adds the RMSE of each matched pair's fitted
  weighted-mean spectrum against the true spectrum, and the fraction of pixels whose
  arg-max domain agrees with the true label.
* :func:`score_bcv` -- reads a BCV file (``mean_error(rank)``, attributes ``selected_rank``,
  ``one_se_rank``, ``method``): is the selected rank the true number of domains?
* :func:`format_summary` -- one-screen text.

All results are plain dicts of JSON-serializable values (``json.dumps`` works as is).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .compare import cosine_matrix  # Eq. (15) as a cosine, one implementation for tables and scores
from .errors import InputError

DEFAULT_THRESHOLD = 0.95


def _f(v: Any) -> float | None:
    """float, with NaN as None (JSON has no NaN)."""
    if v is None:
        return None
    v = float(v)
    return None if not math.isfinite(v) else v


@dataclass
class DomainMatch:
    """Result of :func:`match_domains` (``to_dict`` gives the JSON form).

    Attributes
    ----------
    pairs : list of (fit_index, true_index)
        Matched pairs, sorted by true index.
    cosine : list of float or None, length k
        Cosine of each true domain with its matched fitted component (None if unmatched).
    min_cosine : float or None
        Minimum over matched pairs.
    mean_cosine : float or None
    unmatched_fit : list of int
        Fitted components left over (r > k).
    unmatched_true : list of int
        True domains left over (r < k).
    best_cosine_unmatched_fit : list of float
        For each unmatched fitted component, its best cosine with any true domain.
    cosine_matrix : list of list of float, shape (r, k)
    n_fit, n_true : int
    n_pixels : int
        Pixels compared (rows finite in both inputs).
    """

    pairs: list[tuple[int, int]]
    cosine: list[float | None]
    min_cosine: float | None
    mean_cosine: float | None
    unmatched_fit: list[int]
    unmatched_true: list[int]
    best_cosine_unmatched_fit: list[float]
    cosine_matrix: list[list[float]]
    n_fit: int
    n_true: int
    n_pixels: int
    threshold: float = DEFAULT_THRESHOLD
    extra: dict = field(default_factory=dict)

    @property
    def all_matched(self) -> bool:
        """Every true domain matched (r >= k)."""
        return not self.unmatched_true

    @property
    def passed(self) -> bool:
        """Every true domain matched with cosine >= ``threshold`` and no extra component."""
        return (self.all_matched and not self.unmatched_fit and self.min_cosine is not None
                and self.min_cosine >= self.threshold)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["pairs"] = [[int(i), int(j)] for i, j in self.pairs]
        d["all_matched"] = self.all_matched
        d["passed"] = self.passed
        return d


def match_domains(W_fit: np.ndarray, W_true: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD) -> DomainMatch:
    """Match fitted domain maps to true ones (Hungarian algorithm on cosine similarity).

    Parameters
    ----------
    W_fit : ndarray, shape (m, r)
        Fitted domain maps, one column per component (pixel rows; NaN rows are ignored).
    W_true : ndarray, shape (m, k)
        True memberships.
    threshold : float
        Cosine a match must reach for :attr:`DomainMatch.passed`.

    Returns
    -------
    DomainMatch
        ``min(r, k)`` pairs maximizing the total cosine; the rest are reported as unmatched.
    """
    A = np.asarray(W_fit, dtype=np.float64)
    B = np.asarray(W_true, dtype=np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise InputError(f"expected W_fit (m, r) and W_true (m, k) with the same m, got {A.shape} and {B.shape}",
                         source="match_domains", fix="flatten both maps over the same pixels")
    ok = np.all(np.isfinite(A), axis=1) & np.all(np.isfinite(B), axis=1)
    if not ok.any():
        raise InputError("no pixel is finite in both maps", source="match_domains",
                         fix="check the mask of the fit and the truth file")
    A, B = A[ok], B[ok]
    r, k = A.shape[1], B.shape[1]
    C = cosine_matrix(A, B)
    rows, cols = linear_sum_assignment(C, maximize=True)
    order = np.argsort(cols)
    rows, cols = rows[order], cols[order]
    cos_true: list[float | None] = [None] * k
    for i, j in zip(rows, cols):
        cos_true[j] = float(C[i, j])
    matched = [float(C[i, j]) for i, j in zip(rows, cols)]
    unmatched_fit = sorted(set(range(r)) - set(int(i) for i in rows))
    unmatched_true = sorted(set(range(k)) - set(int(j) for j in cols))
    return DomainMatch(
        pairs=[(int(i), int(j)) for i, j in zip(rows, cols)],
        cosine=cos_true,
        min_cosine=min(matched) if matched else None,
        mean_cosine=float(np.mean(matched)) if matched else None,
        unmatched_fit=unmatched_fit,
        unmatched_true=unmatched_true,
        best_cosine_unmatched_fit=[float(C[i].max()) if k else 0.0 for i in unmatched_fit],
        cosine_matrix=C.tolist(),
        n_fit=r, n_true=k, n_pixels=int(ok.sum()), threshold=float(threshold),
    )


def _need(ds, var: str, source: str, fix: str) -> None:
    if var not in ds:
        raise InputError(f"has no variable {var!r} (variables: {sorted(ds.data_vars)})", source=source, fix=fix)


def _true_count(truth_ds) -> int:
    return int(truth_ds["truth_W"].sizes["component"])


def score_fit(fit_ds, truth_ds, *, threshold: float = DEFAULT_THRESHOLD, fit_source: str = "fit",
              truth_source: str = "truth") -> dict[str, Any]:
    """Score a fit file against a synthetic truth file.

    Parameters
    ----------
    fit_ds : xarray.Dataset
        ``W(component, y, x)`` (NaN at masked pixels); optional ``spectrum(component,
        energy)`` (W-weighted mean spectra, on the normalized scale of X0).
    truth_ds : xarray.Dataset
        From :func:`xasnmf.synthetic.synthesize`: ``truth_W(component, y, x)``,
        ``truth_H(component, energy)``, ``truth_label(y, x)``.
    threshold : float
        Cosine every true domain must reach.

    Returns
    -------
    dict
        ``kind = "fit"``, ``n_true``, ``fit_rank``, ``domains`` (one entry per true domain:
        ``true`` / ``fit`` (0-based positions along ``component``), ``true_component`` /
        ``fit_component`` (the ``component`` coordinate values), ``name``, ``cosine``,
        ``spectrum_rmse``, ``true_fraction``),
        ``min_cosine``, ``mean_cosine``, ``unmatched_fit``, ``unmatched_true``,
        ``spectrum_rmse_max``, ``label_accuracy``, ``passed`` and the full ``match``.
        The spectrum RMSE of a pair is ``sqrt(mean_E (spectrum_fit - truth_H)^2)`` over the
        fit's energies.
    """
    _need(fit_ds, "W", fit_source, "score a file written by `xasnmf fit`")
    _need(truth_ds, "truth_W", truth_source, "make the truth with `xasnmf synth`")
    Wf = fit_ds["W"]
    if tuple(Wf.dims) != ("component", "y", "x"):
        raise InputError(f"W has dims {tuple(Wf.dims)}, expected ('component', 'y', 'x')", source=fit_source)
    Wt = truth_ds["truth_W"].transpose("component", "y", "x")
    if Wf.shape[1:] != Wt.shape[1:]:
        raise InputError(f"W maps are {Wf.shape[1]} x {Wf.shape[2]} pixels but the truth is "
                         f"{Wt.shape[1]} x {Wt.shape[2]}", source=fit_source,
                         fix="fit the cube made from this truth file without ROI cropping or binning")
    r, k = int(Wf.shape[0]), int(Wt.shape[0])
    A = np.asarray(Wf.values, dtype=np.float64).reshape(r, -1).T
    B = np.asarray(Wt.values, dtype=np.float64).reshape(k, -1).T
    match = match_domains(A, B, threshold=threshold)

    rmse: list[float | None] = [None] * k
    spectra_note = None
    if "spectrum" in fit_ds and "truth_H" in truth_ds:
        S = fit_ds["spectrum"].transpose("component", "energy")
        ef = np.asarray(S["energy"].values, dtype=np.float64)
        et = np.asarray(truth_ds["energy"].values, dtype=np.float64)
        idx = np.searchsorted(et, ef)
        idx = np.clip(idx, 0, et.size - 1)
        tol = 1e-6 * max(1.0, float(np.abs(et).max()))
        if np.all(np.abs(et[idx] - ef) <= tol):
            Sv = np.asarray(S.values, dtype=np.float64)
            Ht = np.asarray(truth_ds["truth_H"].transpose("component", "energy").values, dtype=np.float64)[:, idx]
            for i, j in match.pairs:
                rmse[j] = _f(np.sqrt(np.mean((Sv[i] - Ht[j]) ** 2)))
        else:
            spectra_note = "fit energies are not a subset of the truth energies: no spectrum RMSE"
    else:
        spectra_note = "fit file has no 'spectrum' variable: no spectrum RMSE"

    true_comp = _component_values(Wt, k)
    fit_comp = _component_values(Wf, r)
    label_accuracy = None
    if "truth_label" in truth_ds:
        valid = np.all(np.isfinite(A), axis=1)
        fit_arg = np.argmax(np.where(np.isfinite(A), A, -np.inf), axis=1)
        to_true = np.full(r, -1)
        for i, j in match.pairs:
            to_true[i] = j
        # truth_label holds component values; turn them into positions (-1: not a component)
        lab = np.asarray(truth_ds["truth_label"].values).ravel()
        lab_pos = np.full(lab.shape, -2)
        for j, v in enumerate(true_comp):
            lab_pos[lab == v] = j
        label_accuracy = _f(np.mean(to_true[fit_arg[valid]] == lab_pos[valid])) if valid.any() else None

    names = (list(map(str, truth_ds["truth_name"].values)) if "truth_name" in truth_ds
             else [f"g{j + 1}" for j in range(k)])
    fractions = (np.asarray(truth_ds["truth_fraction"].values, dtype=float) if "truth_fraction" in truth_ds
                 else B.mean(axis=0))
    fit_of = {j: i for i, j in match.pairs}
    domains = [{"true": j, "true_component": true_comp[j], "name": names[j], "fit": fit_of.get(j),
                "fit_component": fit_comp[fit_of[j]] if j in fit_of else None, "cosine": match.cosine[j],
                "spectrum_rmse": rmse[j], "true_fraction": _f(fractions[j])} for j in range(k)]
    valid_rmse = [v for v in rmse if v is not None]
    out: dict[str, Any] = {
        "kind": "fit",
        "n_true": k,
        "fit_rank": r,
        "threshold": float(threshold),
        "domains": domains,
        "min_cosine": match.min_cosine,
        "mean_cosine": match.mean_cosine,
        "unmatched_fit": match.unmatched_fit,
        "unmatched_fit_component": [fit_comp[i] for i in match.unmatched_fit],
        "unmatched_fit_best_cosine": match.best_cosine_unmatched_fit,
        "unmatched_true": match.unmatched_true,
        "all_matched": match.all_matched,
        "spectrum_rmse_max": max(valid_rmse) if valid_rmse else None,
        "label_accuracy": label_accuracy,
        "n_pixels": match.n_pixels,
        "passed": match.passed,
        "match": match.to_dict(),
        "fit_attrs": {a: _jsonable_attr(fit_ds.attrs[a]) for a in ("rank", "seed", "objective", "n_iter",
                                                                   "converged", "stop_reason")
                      if a in fit_ds.attrs},
    }
    if spectra_note:
        out["note"] = spectra_note
    return out


def _component_values(da, n: int) -> list:
    """The ``component`` coordinate values of a DataArray (positions 0..n-1 when it has none)."""
    if "component" in da.coords:
        return [_jsonable_attr(v) for v in np.asarray(da["component"].values).tolist()]
    return list(range(n))


def _jsonable_attr(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def score_bcv(bcv_ds, truth_ds, *, bcv_source: str = "bcv") -> dict[str, Any]:
    """Did bi-cross-validation select the true number of domains?

    Parameters
    ----------
    bcv_ds : xarray.Dataset
        ``mean_error(rank)`` with coordinate ``rank``; attributes ``selected_rank`` (the
        argmin is used when missing), ``one_se_rank`` and ``method`` (optional).
    truth_ds : xarray.Dataset
        Synthetic truth (the number of ``truth_W`` components is the true rank).

    Returns
    -------
    dict
        ``kind = "bcv"``, ``true_rank``, ``selected_rank``, ``selected_correct``,
        ``one_se_rank``, ``one_se_correct``, ``method``, ``ranks``, ``mean_error``.
    """
    _need(bcv_ds, "mean_error", bcv_source, "score a file written by `xasnmf bcv` or `xasnmf bcv-collect`")
    _need(truth_ds, "truth_W", "truth", "make the truth with `xasnmf synth`")
    me = bcv_ds["mean_error"]
    if tuple(me.dims) != ("rank",):
        raise InputError(f"mean_error has dims {tuple(me.dims)}, expected ('rank',)", source=bcv_source)
    ranks = [int(v) for v in np.asarray(me["rank"].values)]
    errs = [_f(v) for v in np.asarray(me.values, dtype=float)]
    true_rank = _true_count(truth_ds)
    note = None
    if "selected_rank" in bcv_ds.attrs:
        selected = int(bcv_ds.attrs["selected_rank"])
    else:
        finite = [(e, r) for e, r in zip(errs, ranks) if e is not None]
        if not finite:
            raise InputError("mean_error has no finite value and no selected_rank attribute", source=bcv_source)
        selected = min(finite)[1]
        note = "no selected_rank attribute: used the argmin of mean_error"
    one_se = int(bcv_ds.attrs["one_se_rank"]) if "one_se_rank" in bcv_ds.attrs else None
    out = {
        "kind": "bcv",
        "true_rank": true_rank,
        "selected_rank": selected,
        "selected_correct": selected == true_rank,
        "one_se_rank": one_se,
        "one_se_correct": (one_se == true_rank) if one_se is not None else None,
        "method": str(bcv_ds.attrs.get("method", "unknown")),
        "ranks": ranks,
        "mean_error": errs,
        "true_rank_in_range": true_rank in ranks,
    }
    if note:
        out["note"] = note
    return out


def _fmt(v: Any, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def format_summary(score: dict[str, Any]) -> str:
    """One-screen text of a :func:`score_fit` / :func:`score_bcv` result, or of a dict
    ``{"fit": ..., "bcv": ...}`` holding either or both."""
    parts = []
    if score.get("kind") in ("fit", "bcv"):
        score = {score["kind"]: score}
    fit = score.get("fit")
    bcv = score.get("bcv")
    if bcv:
        lines = [f"BCV ({bcv['method']}): selected rank {bcv['selected_rank']}, true {bcv['true_rank']} -> "
                 + ("CORRECT" if bcv["selected_correct"] else "WRONG")]
        if bcv.get("one_se_rank") is not None:
            lines.append(f"  one-SE rank {bcv['one_se_rank']} -> " + ("correct" if bcv["one_se_correct"] else "wrong"))
        lines.append("  rank  " + " ".join(f"{r:>9d}" for r in bcv["ranks"]))
        lines.append("  error " + " ".join(f"{_fmt(e, '9.4g'):>9}" for e in bcv["mean_error"]))
        if not bcv.get("true_rank_in_range", True):
            lines.append("  note: the true rank is outside the ranks searched")
        if bcv.get("note"):
            lines.append(f"  note: {bcv['note']}")
        parts.append("\n".join(lines))
    if fit:
        lines = [f"Fit: rank {fit['fit_rank']} vs {fit['n_true']} true domains; "
                 f"min cosine {_fmt(fit['min_cosine'])}, mean {_fmt(fit['mean_cosine'])}, "
                 f"label accuracy {_fmt(fit['label_accuracy'])} -> "
                 + ("PASS" if fit["passed"] else "FAIL") + f" (threshold {fit['threshold']:g})",
                 f"  {'name':>5} {'true':>5} {'fit':>4} {'cosine':>8} {'spec RMSE':>10} {'area':>7}"
                 "   (true / fit: component coordinate values)"]
        for d in fit["domains"]:
            flag = "" if d["cosine"] is not None and d["cosine"] >= fit["threshold"] else "  <--"
            fc = "-" if d["fit"] is None else d.get("fit_component", d["fit"])
            lines.append(f"  {d['name']:>5} {d.get('true_component', d['true'])!s:>5} {fc!s:>4} "
                         f"{_fmt(d['cosine']):>8} {_fmt(d['spectrum_rmse'], '.5f'):>10} "
                         f"{_fmt(d['true_fraction'], '.3f'):>7}{flag}")
        if fit["unmatched_fit"]:
            labels = fit.get("unmatched_fit_component", fit["unmatched_fit"])
            extra = ", ".join(f"{i} (best cosine {c:.3f})" for i, c in zip(labels, fit["unmatched_fit_best_cosine"]))
            lines.append(f"  extra fitted components (unmatched): {extra}")
        if fit["unmatched_true"]:
            lines.append("  true domains not found (unmatched): "
                         + ", ".join(fit["domains"][j]["name"] for j in fit["unmatched_true"]))
        if fit.get("note"):
            lines.append(f"  note: {fit['note']}")
        parts.append("\n".join(lines))
    return "\n".join(parts) if parts else "(nothing scored)"


def score_rows(fit_score: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for CSV: one per true domain, then one per unmatched fitted component."""
    rows = []
    for d in fit_score["domains"]:
        rows.append({"status": "matched" if d["fit"] is not None else "unmatched_true", "name": d["name"],
                     "true": d["true"], "true_component": d["true_component"], "fit": d["fit"],
                     "fit_component": d["fit_component"], "cosine": d["cosine"],
                     "spectrum_rmse": d["spectrum_rmse"], "true_fraction": d["true_fraction"]})
    for i, ci, c in zip(fit_score["unmatched_fit"], fit_score["unmatched_fit_component"],
                        fit_score["unmatched_fit_best_cosine"]):
        rows.append({"status": "unmatched_fit", "name": None, "true": None, "true_component": None, "fit": i,
                     "fit_component": ci, "cosine": c, "spectrum_rmse": None, "true_fraction": None})
    return rows
