"""Peak-top-energy classes D1-D3 and their agreement with the ONMF domains (Tables II, III; Fig. 7).

**Erratum.**  Section II.F of Tanimoto et al. (2020) writes the classes as
D1 = (E_2, inf), D2 = (E_2, E_1), D3 = (0, E_1), which contradicts itself
(D2 cannot start where D1 starts).  Here two thresholds ``E_high > E_low`` define

* D1 = D_high: ``PTE > E_high``
* D2 = D_mid:  ``E_low < PTE <= E_high``
* D3 = D_low:  ``PTE <= E_low``

As in the paper, ``E_high`` maximizes the cosine (Eq. (15), see
:mod:`xasnmf.compare`) between the indicator map of D_high and its
best-matching ONMF domain, and ``E_low`` likewise for D_low.  Candidate
thresholds are PTE quantiles (``n_grid`` of them, taken with the ``lower``
rule so each candidate is an observed PTE value; a pixel whose PTE equals the
threshold belongs to the lower class).  The two maximizations are independent
unless their optima violate ``E_low < E_high``; then the pair with the largest
sum of the two cosines subject to ``E_low < E_high`` is taken.  Optionally
(``distinct=True``, CLI ``--distinct``) the two classes must also match
different domains.

Pixels compared are those with a finite PTE and finite ONMF maps (unfitted or
masked pixels are in no class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

CLASS_LABELS = ("D1", "D2", "D3")
CLASS_RULES = ("PTE > E_high", "E_low < PTE <= E_high", "PTE <= E_low")


@dataclass
class ThresholdClasses:
    """Result of :func:`threshold_classes`.

    Attributes
    ----------
    e_high, e_low : float
        Thresholds in eV (``e_low < e_high``).
    class_map : ndarray of int8, shape (ny, nx)
        1 = D1 (high), 2 = D2 (mid), 3 = D3 (low), 0 = not classified (no PTE or masked).
    indicators : ndarray, shape (3, ny, nx)
        Indicator maps of D1, D2, D3 (0/1; NaN where not classified).
    cosine : ndarray, shape (3, r)
        Table II: cosine of each class indicator with each ONMF domain.
    best : ndarray of int, shape (3,)
        Index (0-based) of the ONMF domain best matching D1, D2, D3.
    candidates : ndarray, shape (g,)
        Candidate thresholds searched (eV).
    score_high, score_low : ndarray, shape (g,)
        Best-match cosine of D_high / D_low at each candidate.
    n_pixels : int
        Pixels compared.
    constrained : bool
        True when the independent optima violated ``E_low < E_high`` (or, with
        ``distinct``, matched the same domain) and a joint search decided.
    """

    e_high: float
    e_low: float
    class_map: np.ndarray
    indicators: np.ndarray
    cosine: np.ndarray
    best: np.ndarray
    candidates: np.ndarray
    score_high: np.ndarray
    score_low: np.ndarray
    n_pixels: int
    constrained: bool
    distinct: bool = False


def _class_cosines(p: np.ndarray, Wv: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosines (g, r) of the D_low (p <= t) and D_high (p > t) indicators with each domain, for each t.

    Uses sorted cumulative sums: for indicator d of a set S, w^T d = sum_S w and ||d|| = sqrt(|S|).
    """
    order = np.argsort(p, kind="stable")
    ps = p[order]
    cum = np.vstack([np.zeros((1, Wv.shape[1])), np.cumsum(Wv[order], axis=0)])  # (m+1, r)
    total = cum[-1]
    nw = np.linalg.norm(Wv, axis=0)
    nws = np.where(nw > 0, nw, 1.0)
    n_low = np.searchsorted(ps, t, side="right")  # pixels with p <= t
    n_high = p.size - n_low
    s_low = cum[n_low]
    s_high = total[None, :] - s_low
    with np.errstate(invalid="ignore", divide="ignore"):
        c_low = s_low / (np.sqrt(n_low)[:, None] * nws[None, :])
        c_high = s_high / (np.sqrt(n_high)[:, None] * nws[None, :])
    c_low[n_low == 0] = 0.0
    c_high[n_high == 0] = 0.0
    c_low[:, nw == 0] = 0.0
    c_high[:, nw == 0] = 0.0
    return c_low, c_high


def threshold_classes(pte_map: np.ndarray, W_maps: np.ndarray, *, n_grid: int = 200,
                      distinct: bool = False) -> ThresholdClasses:
    """Cut the PTE map into D1-D3 with the thresholds that best match the ONMF domains.

    Parameters
    ----------
    pte_map : ndarray, shape (ny, nx)
        Peak-top energy, eV (NaN where unfitted or masked).
    W_maps : ndarray, shape (r, ny, nx)
        ONMF domain maps (NaN at masked pixels).
    n_grid : int, keyword-only
        Number of PTE quantiles tried as thresholds (at least 3).
    distinct : bool, keyword-only
        Also require that D_high and D_low match *different* ONMF domains (as in
        the paper's Fig. 7, B8 vs B3).  Without it a large domain covering most
        pixels can be the best match of both classes, which pushes both
        thresholds together; with it the best pair (E_low < E_high, domains
        j != k) of summed cosines is taken when the independent optima share a domain.

    Returns
    -------
    ThresholdClasses
    """
    from .compare import cosine_matrix

    pte = np.asarray(pte_map, dtype=np.float64)
    W = np.asarray(W_maps, dtype=np.float64)
    if pte.ndim != 2:
        raise InputError(f"PTE map must be 2-D (y, x), got shape {pte.shape}", source="peak_energy")
    if W.ndim != 3 or W.shape[1:] != pte.shape:
        raise InputError(f"W must be (component, y, x) on the PTE grid {pte.shape}, got {W.shape}", source="W",
                         fix="use a fit and a PTE map made from the same cube")
    if int(n_grid) < 3:
        raise InputError(f"the grid needs at least 3 candidate thresholds, got {n_grid}", source="--grid",
                         fix="use e.g. --grid 200")
    valid = np.isfinite(pte) & np.isfinite(W).all(axis=0)
    m = int(valid.sum())
    p = pte[valid]
    if m < 3 or np.unique(p).size < 3:
        raise InputError(f"{m} pixels with both a fitted PTE and a domain value, with {np.unique(p).size} distinct "
                         "PTE values; need at least 3 to cut three classes", source="peak_energy",
                         fix="check the peak fit flags (peak_flag) and that PTE and fit come from the same cube")
    Wv = W[:, valid].T
    cand = np.unique(np.quantile(p, np.linspace(0.0, 1.0, int(n_grid)), method="lower"))
    if cand.size < 2:
        raise InputError("fewer than 2 distinct candidate thresholds", source="--grid", fix="increase --grid")
    c_low, c_high = _class_cosines(p, Wv, cand)
    score_low, score_high = c_low.max(axis=1), c_high.max(axis=1)
    ih = int(np.argmax(score_high))
    il = int(np.argmax(score_low))
    below = cand[:, None] < cand[None, :]                  # [l, h]: candidate l below candidate h
    same = int(np.argmax(c_high[ih])) == int(np.argmax(c_low[il]))
    constrained = not (cand[il] < cand[ih]) or (distinct and same)
    best_dom = None
    if constrained and not distinct:
        S = np.where(below, score_low[:, None] + score_high[None, :], -np.inf)
        il, ih = (int(v) for v in np.unravel_index(int(np.argmax(S)), S.shape))
    elif constrained:
        r = Wv.shape[1]
        if r < 2:
            raise InputError("distinct matches need at least 2 ONMF domains, the fit has 1", source="--distinct",
                             fix="drop --distinct or use a fit of rank >= 2")
        best_val, best_pair, best_dom = -np.inf, (il, ih), None
        for j in range(r):            # domain matched to D_high (r is small; the grid search is vectorized)
            other = np.delete(np.arange(r), j)
            lo_best = c_low[:, other].max(axis=1)          # best low-side match among the other domains
            S = np.where(below, lo_best[:, None] + c_high[None, :, j], -np.inf)
            k = int(np.argmax(S))
            if S.flat[k] > best_val:
                best_val, best_pair = S.flat[k], tuple(int(v) for v in np.unravel_index(k, S.shape))
                best_dom = (j, int(other[np.argmax(c_low[best_pair[0], other])]))
        il, ih = best_pair
    e_low, e_high = float(cand[il]), float(cand[ih])

    cls = np.zeros(pte.shape, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        cls[valid & (pte > e_high)] = 1
        cls[valid & (pte > e_low) & (pte <= e_high)] = 2
        cls[valid & (pte <= e_low)] = 3
    ind = np.stack([(cls == c).astype(np.float64) for c in (1, 2, 3)])
    ind[:, ~valid] = np.nan
    C = cosine_matrix(ind[:, valid].T, Wv)
    best = np.argmax(C, axis=1).astype(np.int64)
    if distinct and constrained and best_dom is not None:
        best[0], best[2] = best_dom          # the distinct pair the search chose (ties in C otherwise)
    return ThresholdClasses(e_high=e_high, e_low=e_low, class_map=cls, indicators=ind, cosine=C,
                            best=best, candidates=cand,
                            score_high=score_high, score_low=score_low, n_pixels=m, constrained=constrained,
                            distinct=bool(distinct))


def classes_table(res: ThresholdClasses):
    """Table II as a :class:`xasnmf.compare.CorrelationTable` (rows D1..D3, columns B1..Br)."""
    from .compare import CorrelationTable, labels

    r = res.cosine.shape[1]
    notes = [f"E_high = {res.e_high:.3f} eV, E_low = {res.e_low:.3f} eV; "
             + "; ".join(f"{lab}: {rule}" for lab, rule in zip(CLASS_LABELS, CLASS_RULES))]
    notes.append("best-matching domains: " + ", ".join(
        f"{lab} -> B{b + 1} ({res.cosine[i, b]:.2f})" for i, (lab, b) in enumerate(zip(CLASS_LABELS, res.best))))
    if res.constrained:
        why = "E_low < E_high" + (" or matched the same domain (--distinct)" if res.distinct else "")
        notes.append(f"independent optima violated {why}; the best constrained pair was taken")
    return CorrelationTable(values=res.cosine, row_labels=list(CLASS_LABELS), col_labels=labels("B", r),
                            title="Cosine (Eq. 15) of peak-top-energy classes and ONMF domains",
                            zero_rows=~(res.indicators[:, np.isfinite(res.indicators[0])].any(axis=1)),
                            zero_cols=np.zeros(r, bool), n_pixels=res.n_pixels, notes=notes)


def classes_dataset(res: ThresholdClasses, *, y, x, attrs: dict | None = None):
    """Class maps and Table II as an xarray Dataset (the ``xasnmf classes`` NetCDF).

    Parameters
    ----------
    res : ThresholdClasses
    y, x : xarray.Variable or ndarray
        Coordinates of the maps.
    attrs : dict, optional
        Extra global attributes (e.g. the peak window).

    Returns
    -------
    xarray.Dataset
        ``class_map(y, x)``, ``indicator(class, y, x)``, ``cosine(class, domain)``,
        ``best_domain(class)`` (1-based, B<i>), ``score_high/score_low(candidate)``;
        thresholds in attributes ``e_high``, ``e_low`` (eV).
    """
    import xarray as xr

    from .compare import labels
    from .provenance import provenance_attrs

    r = res.cosine.shape[1]
    ds = xr.Dataset(
        {
            "class_map": (("y", "x"), res.class_map,
                          {"long_name": "peak-top-energy class (1 = D1 high, 2 = D2 mid, 3 = D3 low, 0 = none)",
                           "flag_values": np.array([0, 1, 2, 3], dtype=np.int8),
                           "flag_meanings": "unclassified D1_high D2_mid D3_low"}),
            "indicator": (("class", "y", "x"), res.indicators.astype(np.float32),
                          {"long_name": "class indicator map (NaN where unclassified)", "units": "1"}),
            "cosine": (("class", "domain"), res.cosine,
                       {"long_name": "cosine (Eq. 15) of class indicator and ONMF domain", "units": "1"}),
            "best_domain": (("class",), (res.best + 1).astype(np.int32),
                            {"long_name": "best-matching ONMF domain B<i> (1-based)"}),
            "rule": (("class",), np.array(CLASS_RULES, dtype=str)),
            "score_high": (("candidate",), res.score_high,
                           {"long_name": "best-match cosine of D_high = PTE > threshold", "units": "1"}),
            "score_low": (("candidate",), res.score_low,
                          {"long_name": "best-match cosine of D_low = PTE <= threshold", "units": "1"}),
        },
        coords={"class": ("class", np.array(CLASS_LABELS, dtype=str)),
                "domain": ("domain", np.array(labels("B", r), dtype=str)),
                "candidate": ("candidate", res.candidates, {"long_name": "candidate threshold", "units": "eV"}),
                "y": y, "x": x},
    )
    ds.attrs.update(provenance_attrs(n_grid=int(res.candidates.size)))
    ds.attrs.update({"title": "xasnmf peak-top-energy classes", "e_high": res.e_high, "e_low": res.e_low,
                     "e_units": "eV", "n_pixels": res.n_pixels, "constrained": int(res.constrained),
                     "distinct": int(res.distinct),
                     "classes": "; ".join(f"{a}: {b}" for a, b in zip(CLASS_LABELS, CLASS_RULES)),
                     "erratum": "the paper's interval notation for D1-D3 is self-contradictory; "
                                "classes here: D1 PTE > E_high, D2 E_low < PTE <= E_high, D3 PTE <= E_low"})
    if attrs:
        ds.attrs.update(attrs)
    return ds


@dataclass
class DomainPeaks:
    """Table III: peak-top energy of each ONMF domain spectrum and the class-side check.

    Attributes
    ----------
    energy : ndarray, shape (r,)
        PTE of spectrum B<i> (NaN where the fit is flagged).
    flag : ndarray of int8, shape (r,)
        Peak-fit flag (:data:`xasnmf.peak.FLAG_MEANINGS`).
    matched : list of str
        For D1, D2, D3: the matched domain label (``"B8"``).
    expected : list of bool or None
        Whether the matched domain's PTE lies on the expected side of the thresholds
        (None where its PTE is NaN).
    e_high, e_low : float
    """

    energy: np.ndarray
    flag: np.ndarray
    matched: list
    expected: list
    e_high: float
    e_low: float


def domain_peaks(energy: np.ndarray, spectra: np.ndarray, *, e_high: float, e_low: float,
                 best: np.ndarray, window: float = 0.5, energy_range=None, offset: bool = False) -> DomainPeaks:
    """Peak-top energies of the domain spectra and the Table III consistency check.

    Parameters
    ----------
    energy : ndarray, shape (n,)
        eV.
    spectra : ndarray, shape (r, n)
        Domain spectra (FIT.nc ``spectrum``).
    e_high, e_low : float, keyword-only
        Thresholds from :func:`threshold_classes` (eV).
    best : ndarray of int, shape (3,), keyword-only
        0-based domains best matching D1, D2, D3.
    window, energy_range, offset : keyword-only
        Peak-fit options (use those of the PTE map).

    Returns
    -------
    DomainPeaks
    """
    from .peak import spectrum_peak_energy

    fit = spectrum_peak_energy(energy, spectra, window=window, energy_range=energy_range, offset=offset)
    r = fit.energy.size
    best = np.asarray(best, dtype=np.int64)
    if best.shape != (3,) or (best < 0).any() or (best >= r).any():
        raise InputError(f"best domains must be 3 indices in 0..{r - 1}, got {best.tolist()}", source="classes",
                         fix="use a classes file made with the same fit (same rank)")
    tests = (lambda e: e > e_high, lambda e: (e > e_low) & (e <= e_high), lambda e: e <= e_low)
    expected = []
    for j, b in enumerate(best):
        e = fit.energy[b]
        expected.append(None if not np.isfinite(e) else bool(tests[j](e)))
    return DomainPeaks(energy=fit.energy, flag=fit.flag, matched=[f"B{b + 1}" for b in best], expected=expected,
                       e_high=float(e_high), e_low=float(e_low))


def domain_peaks_csv(dp: DomainPeaks) -> str:
    """Table III as CSV: ``domain,peak_energy_eV,peak_flag,matched_class,expected_side,on_expected_side``."""
    lines = ["domain,peak_energy_eV,peak_flag,matched_class,expected_side,on_expected_side"]
    for i, e in enumerate(dp.energy):
        lab = f"B{i + 1}"
        cls = [CLASS_LABELS[j] for j, m in enumerate(dp.matched) if m == lab]
        sides = [CLASS_RULES[j] for j, m in enumerate(dp.matched) if m == lab]
        oks = ["" if dp.expected[j] is None else str(dp.expected[j]).lower()
               for j, m in enumerate(dp.matched) if m == lab]
        es = "" if not np.isfinite(e) else f"{e:.3f}"
        lines.append(f"{lab},{es},{int(dp.flag[i])},{'/'.join(cls)},{'/'.join(sides)},{'/'.join(oks)}")
    return "\n".join(lines) + "\n"


def domain_peaks_markdown(dp: DomainPeaks) -> str:
    """Table III as Markdown, with the threshold check below it."""
    lines = ["**Peak-top energies of the ONMF domain spectra**", "", "| domain | PTE [eV] | flag |",
             "|---|---:|---:|"]
    for i, e in enumerate(dp.energy):
        lines.append(f"| B{i + 1} | {'—' if not np.isfinite(e) else f'{e:.2f}'} | {int(dp.flag[i])} |")
    lines += ["", f"E_high = {dp.e_high:.2f} eV, E_low = {dp.e_low:.2f} eV", ""]
    for j, lab in enumerate(CLASS_LABELS):
        ok = dp.expected[j]
        word = "not fitted" if ok is None else ("yes" if ok else "no")
        lines.append(f"- {lab} ({CLASS_RULES[j]}) best matches {dp.matched[j]}: on the expected side: {word}")
    return "\n".join(lines) + "\n"


def domain_peaks_latex(dp: DomainPeaks) -> str:
    """Table III as a LaTeX ``tabular``."""
    lines = ["\\begin{tabular}{lrl}", "\\toprule", "Domain & PTE [eV] & matched class \\\\", "\\midrule"]
    for i, e in enumerate(dp.energy):
        lab = f"B{i + 1}"
        cls = "/".join(CLASS_LABELS[j] for j, m in enumerate(dp.matched) if m == lab)
        lines.append(f"{lab} & {'--' if not np.isfinite(e) else f'{e:.2f}'} & {cls} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}",
              f"% E_high = {dp.e_high:.3f} eV, E_low = {dp.e_low:.3f} eV"]
    return "\n".join(lines) + "\n"
