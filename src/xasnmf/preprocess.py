"""Preprocessing: crop, bin, energy range, per-pixel normalization, signal mask, reference spectrum.

Order of operations (each recorded in ``history``):

1. ``mask``: a user mask (``.msk`` / ``.nc`` / ``.npy``, shape of the *input*
   cube) masks unselected pixels (``qc_reason = outside_user_mask``).
2. ``roi`` ``Y0:Y1,X0:X1``: crop (pixel indices of the input cube, end excluded;
   the paper's 300 x 300 clip).
3. ``bin`` K: K x K block means; leftover rows/columns are dropped; a block is
   masked if any of its pixels is (with the first reason code among them).
4. ``erange`` ``E0:E1``: keep energies in the window (inclusive).
5. Normalization per pixel spectrum ``A(E)`` (``norm``):

   ``edge`` (paper, section II.A; K-edge recipe)
       ``(A - lo) / (hi - lo)`` with lo = A at the first energy and hi = A at
       the last, or with ``pre`` and ``post`` the means over those windows.
   ``preedge-area`` / ``preedge-peak`` (for L edges, where the continuum step is tiny)
       ``R = A - baseline`` with the baseline the mean (``baseline="mean"``) or
       a least-squares line (``baseline="line"``) over ``pre``; then ``R / area``
       (trapezoid over the ``edge`` window, uneven steps used as they are) or
       ``R / max`` over the ``edge`` window (default: energies above ``pre``).
   ``none``
       values unchanged (``normalized = 0``).

   The denominator (step, area or peak) of each pixel is ``qc_edge_step``.
   Pixels whose denominator is non-finite or <= 0 are masked
   (``nonpositive_normalization``); pixels below ``min_step_fraction`` x the
   median denominator are masked (``small_edge_step``).  A non-positive median
   or no pixel passing is an error reporting the threshold and the
   distribution of the denominators.
6. ``min_signal`` K: with ``pre``, a pixel is kept only if its peak above the
   baseline over the edge window (``qc_signal``) is >= K x its pre-edge noise
   (``qc_noise``: std of A - baseline over ``pre``); else ``low_signal``.
7. ``reference``: ``"mean"`` (mean normalized spectrum of the used pixels),
   ``"region:Y0:Y1,X0:X1"`` (mean over the used pixels of that region, pixel
   indices of the *output* grid), or a two-column file (energy, value),
   interpolated onto the energies (it must cover them) and normalized by the
   same rule.  Stored as ``reference(energy)``; later steps form X = X0 - 1 b.

Masked pixels are NaN in the output ``absorbance``; ``mask(y, x)`` is 1 for
used pixels.  Recommended for the shared Fe L-edge STXM stack::

    xasnmf preprocess cube.nc -o pre.nc --norm preedge-peak --pre 700:705 --min-signal 8
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import qc
from .errors import InputError
from .io._common import check_roi, covering_interp, parse_range, parse_roi, read_columns

__all__ = ["preprocess", "normalize_spectra", "bin_image", "NORMS", "BASELINES"]

NORMS = ("edge", "preedge-area", "preedge-peak", "none")
BASELINES = ("mean", "line")


def _window(energy: np.ndarray, win, *, option: str, min_points: int) -> np.ndarray:
    """Boolean selector of energies in an inclusive window, with a clear error when too few."""
    lo, hi = parse_range(win, option=option) if isinstance(win, str) else (float(win[0]), float(win[1]))
    sel = (energy >= lo - 1e-9) & (energy <= hi + 1e-9)
    if sel.sum() < min_points:
        raise InputError(f"window {lo:g}:{hi:g} eV holds {int(sel.sum())} energies, at least {min_points} "
                         f"needed (the cube spans {energy[0]:.3f}-{energy[-1]:.3f} eV)", source=option,
                         fix="widen the window or pick it inside the cube's energy range")
    return sel


def _baseline(S: np.ndarray, energy: np.ndarray, pre: np.ndarray, kind: str) -> np.ndarray:
    """Per-spectrum baseline over the ``pre`` selector, evaluated at every energy.

    S : (m, n) -> (m, n)
    """
    if kind == "mean":
        return np.repeat(S[:, pre].mean(axis=1, keepdims=True), S.shape[1], axis=1)
    ep = energy[pre]
    c = ep.mean()
    A = np.stack([np.ones_like(ep), ep - c], axis=1)  # (k, 2)
    coef, *_ = np.linalg.lstsq(A, S[:, pre].T, rcond=None)  # (2, m)
    return coef[0][:, None] + coef[1][:, None] * (energy - c)[None, :]


def normalize_spectra(S: np.ndarray, energy: np.ndarray, *, norm: str = "edge", pre=None, post=None, edge=None,
                      baseline: str = "mean") -> dict[str, np.ndarray]:
    """Normalize spectra by one rule (the NumPy core of :func:`preprocess`).

    Parameters
    ----------
    S : ndarray, shape (m, n)
        One spectrum per row.
    energy : ndarray, shape (n,), eV, increasing
    norm : {"edge", "preedge-area", "preedge-peak", "none"}
    pre, post, edge : str "E0:E1" or (float, float), optional
        Windows (see module docstring).
    baseline : {"mean", "line"}

    Returns
    -------
    dict with
        ``values`` (m, n) normalized spectra; ``denom`` (m,) the step / area / peak
        (NaN for ``none``); ``noise`` (m,) and ``signal`` (m,) (NaN without ``pre``);
        ``rule`` str, a description.
    """
    S = np.asarray(S, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    m, n = S.shape
    if norm not in NORMS:
        raise InputError(f"unknown normalization {norm!r}", source="--norm", fix=f"use one of {', '.join(NORMS)}")
    if baseline not in BASELINES:
        raise InputError(f"unknown baseline {baseline!r}", source="--baseline", fix="use mean or line")
    if norm.startswith("preedge") and pre is None:
        raise InputError(f"--norm {norm} needs a pre-edge window", source="--pre",
                         fix="give --pre E0:E1 (e.g. --pre 700:705 for the Fe L edge)")
    if norm == "edge" and (pre is None) != (post is None):
        raise InputError("the edge normalization with windows needs both --pre and --post", source="--pre/--post",
                         fix="give both windows, or neither (first energy -> 0, last -> 1)")
    nan = np.full(m, np.nan)
    out = {"noise": nan.copy(), "signal": nan.copy()}
    with np.errstate(invalid="ignore", divide="ignore"):
        pre_sel = None
        if pre is not None:
            need = 3 if baseline == "line" else 2
            pre_sel = _window(energy, pre, option="--pre", min_points=need)
            base = _baseline(S, energy, pre_sel, baseline if norm.startswith("preedge") else "mean")
            R = S - base
            out["noise"] = R[:, pre_sel].std(axis=1, ddof=1)
        if edge is not None:
            edge_sel = _window(energy, edge, option="--edge", min_points=2)
        elif pre_sel is not None:
            edge_sel = energy > energy[pre_sel].max() + 1e-9
            if edge_sel.sum() < 2:
                raise InputError("fewer than 2 energies above the pre-edge window", source="--pre",
                                 fix="end the pre-edge window before the edge")
        else:
            edge_sel = np.ones(n, dtype=bool)
        win = f"{energy[edge_sel][0]:.3f}-{energy[edge_sel][-1]:.3f} eV"
        if pre_sel is not None:
            out["signal"] = R[:, edge_sel].max(axis=1)
            pre_txt = f"{energy[pre_sel][0]:.3f}-{energy[pre_sel][-1]:.3f} eV"
        if norm == "edge":
            if pre_sel is None:
                lo, hi = S[:, 0], S[:, -1]
                rule = (f"edge: per pixel (A - A({energy[0]:.3f} eV)) / (A({energy[-1]:.3f} eV) - "
                        f"A({energy[0]:.3f} eV)) (paper, first energy -> 0, last -> 1)")
            else:
                post_sel = _window(energy, post, option="--post", min_points=1)
                lo, hi = S[:, pre_sel].mean(axis=1), S[:, post_sel].mean(axis=1)
                rule = (f"edge: per pixel (A - mean over {pre_txt}) / (mean over "
                        f"{energy[post_sel][0]:.3f}-{energy[post_sel][-1]:.3f} eV - mean over {pre_txt})")
            denom = hi - lo
            values = (S - lo[:, None]) / denom[:, None]
        elif norm == "none":
            denom = nan.copy()
            values = S.copy()
            rule = "none: values as imported (not normalized)"
        else:
            if norm == "preedge-area":
                if edge_sel.sum() < 2:
                    raise InputError("the edge window holds fewer than 2 energies", source="--edge")
                e_w = energy[edge_sel]
                r_w = R[:, edge_sel]
                denom = np.sum(0.5 * (r_w[:, 1:] + r_w[:, :-1]) * np.diff(e_w)[None, :], axis=1)
                what = f"area (trapezoid, eV) over {win}"
            else:
                denom = R[:, edge_sel].max(axis=1)
                what = f"maximum over {win}"
            values = R / denom[:, None]
            rule = (f"{norm}: per pixel (A - baseline) / {what} of (A - baseline); baseline = "
                    f"{'mean' if baseline == 'mean' else 'least-squares line'} over {pre_txt}")
    out.update(values=values, denom=denom, rule=rule, edge_window=win)
    return out


def bin_image(a: np.ndarray, k: int) -> np.ndarray:
    """K x K block mean over the first two axes (leftover rows/columns dropped).

    Parameters
    ----------
    a : ndarray, shape (ny, nx, ...)
    k : int

    Returns
    -------
    ndarray, shape (ny // k, nx // k, ...)
    """
    ny, nx = a.shape[:2]
    by, bx = ny // k, nx // k
    b = a[: by * k, : bx * k].reshape((by, k, bx, k) + a.shape[2:])
    return b.mean(axis=(1, 3))


def _bin_reason(reason: np.ndarray, k: int) -> np.ndarray:
    ny, nx = reason.shape
    by, bx = ny // k, nx // k
    r = reason[: by * k, : bx * k].reshape(by, k, bx, k).astype(np.int16)
    r = np.where(r == 0, 1000, r).min(axis=(1, 3))
    return np.where(r == 1000, 0, r).astype(np.int8)


def _distribution(v: np.ndarray) -> str:
    v = v[np.isfinite(v)]
    if not v.size:
        return "no finite values"
    p = np.percentile(v, [0, 5, 25, 50, 75, 95, 100])
    return ("min {:.4g}, 5% {:.4g}, 25% {:.4g}, median {:.4g}, 75% {:.4g}, 95% {:.4g}, max {:.4g}"
            .format(*p) + f" over {v.size} pixels")


def preprocess(ds, *, roi=None, bin: int = 1, erange=None, norm: str = "edge", pre=None, post=None, edge=None,
               baseline: str = "mean", min_step_fraction: float = 0.1, min_signal: float | None = None,
               reference=None, mask=None, source: str = "cube"):
    """Crop, bin, normalize and mask a canonical cube; attach the reference spectrum.

    Signature::

        preprocess(ds, *, roi=None, bin=1, erange=None, norm="edge", pre=None, post=None, edge=None,
                   baseline="mean", min_step_fraction=0.1, min_signal=None, reference=None, mask=None,
                   source="cube") -> xr.Dataset

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical cube, ``absorbance(y, x, energy)`` of shape (ny, nx, n).
    roi : str "Y0:Y1,X0:X1" or (y0, y1, x0, x1), optional
    bin : int
        Spatial binning factor K >= 1.
    erange : str "E0:E1" or (float, float), optional
    norm : {"edge", "preedge-area", "preedge-peak", "none"}
    pre, post, edge : str "E0:E1" or (float, float), optional
    baseline : {"mean", "line"}
    min_step_fraction : float
        Pixels with a denominator below this fraction of the median are masked.
    min_signal : float, optional
        K: keep pixels with peak above baseline >= K x pre-edge noise (needs ``pre``).
    reference : {"mean", "cube", "region:Y0:Y1,X0:X1", path}, optional
        ``"cube"``: the input cube's own ``reference`` variable (e.g. the synthetic
        generator's), normalized by the same rule.
    mask : path or ndarray of bool, shape (ny, nx), optional
        User mask on the input grid (True / 1 / 'O' = use).
    source : str
        Name of the cube in error messages.

    Returns
    -------
    xarray.Dataset
        ``absorbance(y', x', n')`` normalized (NaN at masked pixels; attrs ``normalized``,
        ``norm``, ``norm_rule``), ``mask``, ``reference`` (if asked), ``qc_reason``,
        ``qc_n_bad``, ``qc_edge_step``, ``qc_noise``, ``qc_signal``.
    """
    from .cube import make_cube, validate_cube
    from .io.masks import read_mask
    from .provenance import provenance_attrs

    validate_cube(ds, source=source)
    a = np.asarray(ds["absorbance"].values, dtype=np.float64)
    ny, nx, n = a.shape
    energy = np.asarray(ds["energy"].values, dtype=np.float64)
    y = np.asarray(ds["y"].values, dtype=np.float64)
    x = np.asarray(ds["x"].values, dtype=np.float64)
    xy_units = str(ds["y"].attrs.get("units", "pixel"))
    reason = (np.asarray(ds["qc_reason"].values).astype(np.int8) if "qc_reason" in ds
              else np.zeros((ny, nx), dtype=np.int8))
    reason = reason.copy()
    if "mask" in ds:
        qc.flag(reason, np.asarray(ds["mask"].values) != 1, qc.OUTSIDE_MASK)
    n_bad = (np.asarray(ds["qc_n_bad"].values).astype(np.int16) if "qc_n_bad" in ds
             else np.zeros((ny, nx), dtype=np.int16))
    steps = []
    notes = []
    if mask is not None:
        if isinstance(mask, (str, Path)):
            um = read_mask(mask, shape=(ny, nx))
            steps.append(f"mask={mask}")
        else:
            um = np.asarray(mask)
            if um.shape != (ny, nx):
                raise InputError(f"mask has shape {um.shape} but the cube's images are {(ny, nx)}", source="mask")
            um = um.astype(bool)
            steps.append("mask=<array>")
        k = qc.flag(reason, ~um, qc.OUTSIDE_MASK)
        notes.append(f"user mask left {int(um.sum())} of {um.size} pixels selected ({k} newly masked)")
    # -- ROI
    if roi is not None:
        r = parse_roi(roi, option="--roi") if isinstance(roi, str) else tuple(int(v) for v in roi)
        check_roi(r, (ny, nx), option="--roi")
        y0, y1, x0, x1 = r
        a, reason, n_bad = a[y0:y1, x0:x1], reason[y0:y1, x0:x1], n_bad[y0:y1, x0:x1]
        y, x = y[y0:y1], x[x0:x1]
        steps.append(f"roi={y0}:{y1},{x0}:{x1}")
    # -- bin
    try:
        kbin = int(bin)
    except (TypeError, ValueError):
        raise InputError(f"bin must be an integer, got {bin!r}", source="--bin") from None
    if kbin < 1:
        raise InputError(f"bin must be >= 1, got {kbin}", source="--bin")
    if kbin > 1:
        if a.shape[0] < kbin or a.shape[1] < kbin:
            raise InputError(f"bin {kbin} is larger than the image {a.shape[:2]}", source="--bin")
        lost = (a.shape[0] % kbin, a.shape[1] % kbin)
        a = bin_image(a, kbin)
        reason = _bin_reason(reason, kbin)
        n_bad = bin_image(n_bad.astype(np.float64), kbin).astype(np.int16) * kbin * kbin
        y = y[: (y.size // kbin) * kbin].reshape(-1, kbin).mean(axis=1)
        x = x[: (x.size // kbin) * kbin].reshape(-1, kbin).mean(axis=1)
        steps.append(f"bin={kbin}")
        if any(lost):
            notes.append(f"bin {kbin}: dropped {lost[0]} trailing row(s) and {lost[1]} column(s)")
    cube_ref = np.asarray(ds["reference"].values, dtype=np.float64) if "reference" in ds else None
    # -- energy range
    if erange is not None:
        sel = _window(energy, erange, option="--erange", min_points=3)
        a, energy = a[:, :, sel], energy[sel]
        if cube_ref is not None:
            cube_ref = cube_ref[sel]
        steps.append(f"erange={energy[0]:.3f}:{energy[-1]:.3f}")
    my, mx, n = a.shape
    reason = np.ascontiguousarray(reason)
    rflat = reason.reshape(-1)  # a view: flags set on rflat land in `reason`
    S = np.ascontiguousarray(a).reshape(my * mx, n)
    k_nf = qc.flag(rflat, ~np.isfinite(S).all(axis=1), qc.NONFINITE)
    if k_nf:
        notes.append(f"{k_nf} pixel(s) with non-finite values masked (nonfinite_value)")
    res = normalize_spectra(S, energy, norm=norm, pre=pre, post=post, edge=edge, baseline=baseline)
    denom, noise, signal = res["denom"], res["noise"], res["signal"]
    valid = (reason == 0).ravel()
    if not valid.any():
        raise InputError("no usable pixel before normalization (all masked)", source=source,
                         fix="check the mask and the ROI")
    thr = None
    if norm != "none":
        r2 = rflat
        qc.flag(r2, ~np.isfinite(denom) | (denom <= 0), qc.BAD_NORMALIZATION)
        dv = denom[valid]
        med = float(np.median(dv[np.isfinite(dv)])) if np.isfinite(dv).any() else float("nan")
        thr = float(min_step_fraction) * med
        what = {"edge": "edge step", "preedge-area": "pre-edge-subtracted area",
                "preedge-peak": "pre-edge-subtracted peak"}[norm]
        hint = (" At an L edge the continuum step is tiny and endpoint normalization divides by noise: use "
                "--norm preedge-peak --pre E0:E1 (e.g. --pre 700:705 for Fe L) with --min-signal."
                if norm == "edge" else "")
        if not np.isfinite(med) or med <= 0:
            raise InputError(f"the median {what} is {med:.4g} (<= 0), so no threshold "
                             f"(min_step_fraction {min_step_fraction:g} x median) can select pixels; "
                             f"{what} distribution: {_distribution(dv)}.{hint}", source=source,
                             fix="choose a normalization and windows that suit this edge")
        qc.flag(r2, denom < thr, qc.SMALL_EDGE_STEP)
        if not (r2 == 0).any():
            raise InputError(f"0 pixels pass the {what} threshold {thr:.4g} (= {min_step_fraction:g} x median "
                             f"{med:.4g}); {what} distribution: {_distribution(dv)}.{hint}", source=source,
                             fix="lower --min-step-fraction or choose another normalization")
    if min_signal is not None:
        if pre is None:
            raise InputError("--min-signal needs a pre-edge window to measure the noise", source="--min-signal",
                             fix="give --pre E0:E1")
        K = float(min_signal)
        flagged = qc.flag(rflat, ~(signal >= K * noise), qc.LOW_SIGNAL)
        notes.append(f"min_signal {K:g}: {flagged} pixel(s) below {K:g} x pre-edge noise")
        steps.append(f"min_signal={K:g}")
    used = reason == 0
    if not used.any():
        counts = {qc.REASONS[int(c)]: int((reason == c).sum()) for c in np.unique(reason)}
        raise InputError(f"no pixel is left after masking ({counts}); signal distribution: "
                         f"{_distribution(signal[valid])}, noise: {_distribution(noise[valid])}", source=source,
                         fix="lower --min-signal / --min-step-fraction, or check the windows")
    values = res["values"].reshape(my, mx, n)
    values[~used] = np.nan
    # -- reference
    ref = None
    if reference is not None:
        rs = str(reference)
        if rs == "mean":
            ref = values[used].mean(axis=0)
        elif rs == "cube":
            if cube_ref is None:
                raise InputError("--reference cube asks for the cube's own reference spectrum, but the cube has "
                                 "no variable 'reference'", source=source,
                                 fix="use --reference mean, region:Y0:Y1,X0:X1 or a two-column file")
            rn = normalize_spectra(cube_ref[None, :], energy, norm=norm, pre=pre, post=post, edge=edge,
                                   baseline=baseline)
            if norm != "none" and not (np.isfinite(rn["denom"][0]) and rn["denom"][0] > 0):
                raise InputError(f"the cube's reference spectrum has normalization denominator "
                                 f"{rn['denom'][0]:.4g} under the rule '{res['rule']}'", source=source,
                                 fix="use --reference mean")
            ref = rn["values"][0]
        elif rs.startswith("region:"):
            rr = parse_roi(rs[len("region:"):], option="--reference region")
            check_roi(rr, (my, mx), option="--reference region")
            y0, y1, x0, x1 = rr
            sub = used[y0:y1, x0:x1]
            if not sub.any():
                raise InputError(f"the reference region {y0}:{y1},{x0}:{x1} holds no used pixel",
                                 source="--reference", fix="choose a region of valid pixels (output-grid indices)")
            ref = values[y0:y1, x0:x1][sub].mean(axis=0)
        else:
            tab = read_columns(rs, what="reference spectrum", min_columns=2)
            rv = covering_interp(tab[:, 0], tab[:, 1], energy, what="reference spectrum", source=rs)
            rn = normalize_spectra(rv[None, :], energy, norm=norm, pre=pre, post=post, edge=edge, baseline=baseline)
            if norm != "none" and not (np.isfinite(rn["denom"][0]) and rn["denom"][0] > 0):
                raise InputError(f"the reference spectrum's normalization denominator is {rn['denom'][0]:.4g} "
                                 f"under the rule '{res['rule']}'", source=rs,
                                 fix="use a reference spectrum with an edge in the chosen windows")
            ref = rn["values"][0]
        steps.append(f"reference={rs}")
    params = dict(roi=str(roi) if roi is not None else None, bin=kbin,
                  erange=str(erange) if erange is not None else None, norm=norm,
                  pre=str(pre) if pre is not None else None, post=str(post) if post is not None else None,
                  edge=str(edge) if edge is not None else None, baseline=baseline,
                  min_step_fraction=float(min_step_fraction), min_signal=min_signal,
                  reference=str(reference) if reference is not None else None,
                  mask=str(mask) if isinstance(mask, (str, Path)) else (None if mask is None else "<array>"))
    attrs = dict(provenance_attrs(**params))
    attrs["history"] = ds.attrs.get("history", "")
    for k in ("qc_dropped_energies", "qc_notes"):
        if k in ds.attrs:
            attrs[k] = ds.attrs[k]
    for k, v in ds.attrs.items():
        if k.startswith("sdf_"):
            attrs[k] = v
    aattrs = {"normalized": 0 if norm == "none" else 1, "norm": norm, "norm_rule": res["rule"],
              "long_name": "normalized absorbance" if norm != "none" else "absorbance (optical density)"}
    if thr is not None:
        aattrs["min_step_threshold"] = thr
    hist = (f"xasnmf preprocess {source} norm={norm} pre={pre} post={post} edge={edge} baseline={baseline} "
            f"min_step_fraction={min_step_fraction:g} " + " ".join(steps))
    out = make_cube(values, energy, y=y, x=x, xy_units=xy_units, reference=ref, mask=used.astype(np.int8),
                    title=f"{ds.attrs.get('title', 'cube')} (preprocessed)", source=str(ds.attrs.get("source", "")),
                    history=hist, attrs=attrs, absorbance_attrs=aattrs)
    out["qc_reason"] = (("y", "x"), reason, qc.qc_reason_attrs())
    out["qc_n_bad"] = (("y", "x"), n_bad, {"long_name": "number of non-finite or non-positive input values",
                                           "units": "1"})
    out["qc_edge_step"] = (("y", "x"), denom.reshape(my, mx).astype(np.float32),
                           {"long_name": "per-pixel normalization denominator (edge step, area or peak)",
                            "units": "eV" if norm == "preedge-area" else "1"})
    out["qc_noise"] = (("y", "x"), noise.reshape(my, mx).astype(np.float32),
                       {"long_name": "pre-edge noise (std of absorbance - baseline over --pre)", "units": "1"})
    out["qc_signal"] = (("y", "x"), signal.reshape(my, mx).astype(np.float32),
                        {"long_name": "peak of absorbance - baseline over the edge window", "units": "1"})
    qc.set_qc_attrs(out, notes=notes)
    out.attrs["qc_preprocess"] = json.dumps({"norm": norm, "threshold": thr, "edge_window": res["edge_window"]})
    return out
