"""Quality-control record of a cube: why pixels are masked and which energies were dropped.

Stored in the cube itself (so it travels with the data):

``qc_reason(y, x)`` int8
    0 = ok, else the *first* reason the pixel was masked (codes in
    :data:`REASONS`; CF ``flag_values`` / ``flag_meanings`` attributes).
``qc_n_bad(y, x)`` int16
    Number of non-finite or non-positive values the pixel had at import.
``qc_edge_step(y, x)``, ``qc_noise(y, x)``, ``qc_signal(y, x)`` float32 (preprocess)
    The per-pixel normalization denominator (edge step, pre-edge-subtracted
    area or peak), the pre-edge noise (std of the baseline residual over
    ``--pre``), and the peak above the baseline over the edge window.
global attributes
    ``qc_counts`` (JSON: pixels per reason), ``qc_dropped_energies`` (JSON list
    of ``{"energy": eV, "reason": ...}``), ``qc_notes`` (JSON list of strings).

The CLI also writes the same record as JSON beside the cube (``NAME.qc.json``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["REASONS", "OK", "NONFINITE", "NONPOSITIVE_INTENSITY", "BEAM_BLOCKED", "OUTSIDE_MASK",
           "SMALL_EDGE_STEP", "LOW_SIGNAL", "BAD_NORMALIZATION", "flag", "qc_reason_attrs",
           "qc_record", "summarize_qc", "qc_json", "set_qc_attrs"]

OK = 0
NONFINITE = 1
NONPOSITIVE_INTENSITY = 2
BEAM_BLOCKED = 3
OUTSIDE_MASK = 4
SMALL_EDGE_STEP = 5
LOW_SIGNAL = 6
BAD_NORMALIZATION = 7

REASONS: dict[int, str] = {
    OK: "ok",
    NONFINITE: "nonfinite_value",
    NONPOSITIVE_INTENSITY: "nonpositive_intensity",
    BEAM_BLOCKED: "beam_blocked_all_zero",
    OUTSIDE_MASK: "outside_user_mask",
    SMALL_EDGE_STEP: "small_edge_step",
    LOW_SIGNAL: "low_signal",
    BAD_NORMALIZATION: "nonpositive_normalization",
}


def flag(reason: np.ndarray, bad: np.ndarray, code: int) -> int:
    """Set ``code`` where ``bad`` and the pixel has no earlier reason (in place).

    Parameters
    ----------
    reason : ndarray of int8, shape (ny, nx)
    bad : ndarray of bool, shape (ny, nx)
    code : int

    Returns
    -------
    int
        Number of pixels newly flagged.
    """
    new = np.asarray(bad, dtype=bool) & (reason == OK)
    reason[new] = code
    return int(new.sum())


def qc_reason_attrs() -> dict[str, Any]:
    codes = sorted(REASONS)
    return {"long_name": "QC reason a pixel is masked (first reason found)",
            "flag_values": np.array(codes, dtype=np.int8),
            "flag_meanings": " ".join(REASONS[c] for c in codes)}


def _loads(v, default):
    if v is None:
        return default
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return default
    return v


def set_qc_attrs(ds, *, dropped_energies: list[dict] | None = None, notes: list[str] | None = None) -> None:
    """Update ``qc_counts`` from ``qc_reason`` and append dropped energies / notes (in place)."""
    counts = {}
    if "qc_reason" in ds:
        r = np.asarray(ds["qc_reason"].values)
        counts = {REASONS.get(int(c), str(int(c))): int((r == c).sum()) for c in np.unique(r)}
    ds.attrs["qc_counts"] = json.dumps(counts, sort_keys=True)
    old = _loads(ds.attrs.get("qc_dropped_energies"), [])
    ds.attrs["qc_dropped_energies"] = json.dumps(old + list(dropped_energies or []))
    oldn = _loads(ds.attrs.get("qc_notes"), [])
    ds.attrs["qc_notes"] = json.dumps(oldn + list(notes or []))


def qc_record(ds) -> dict[str, Any]:
    """The QC record of a cube as a plain dict (what ``qc.json`` holds)."""
    a = ds["absorbance"]
    ny, nx, ne = a.shape
    rec: dict[str, Any] = {"shape": [int(ny), int(nx), int(ne)], "n_pixels": int(ny * nx)}
    if "mask" in ds:
        rec["n_pixels_used"] = int((np.asarray(ds["mask"].values) == 1).sum())
    else:
        rec["n_pixels_used"] = int(ny * nx)
    rec["pixels_by_reason"] = _loads(ds.attrs.get("qc_counts"), {})
    rec["dropped_energies"] = _loads(ds.attrs.get("qc_dropped_energies"), [])
    rec["notes"] = _loads(ds.attrs.get("qc_notes"), [])
    if "qc_n_bad" in ds:
        rec["n_bad_values"] = int(np.asarray(ds["qc_n_bad"].values).sum())
    for name in ("qc_edge_step", "qc_noise", "qc_signal"):
        if name in ds:
            v = np.asarray(ds[name].values, dtype=float)
            v = v[np.isfinite(v)]
            if v.size:
                rec[name] = {q: float(np.percentile(v, p)) for q, p in
                             (("min", 0), ("p05", 5), ("median", 50), ("p95", 95), ("max", 100))}
    return rec


def qc_json(ds) -> str:
    """``qc_record(ds)`` as indented JSON text."""
    return json.dumps(qc_record(ds), indent=2, sort_keys=True) + "\n"


def summarize_qc(ds) -> str:
    """A few human-readable lines summarizing the QC record (used by ``xasnmf info``).

    Parameters
    ----------
    ds : xarray.Dataset
        A canonical cube.

    Returns
    -------
    str
    """
    rec = qc_record(ds)
    n, used = rec["n_pixels"], rec["n_pixels_used"]
    lines = [f"pixels used: {used} of {n} ({100.0 * used / n:.1f} %)"]
    masked = {k: v for k, v in rec["pixels_by_reason"].items() if k != "ok" and v}
    if masked:
        lines.append("masked pixels by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(masked.items())))
    elif "qc_reason" not in ds:
        lines.append("no QC reasons recorded")
    else:
        lines.append("masked pixels by reason: none")
    if rec.get("n_bad_values"):
        lines.append(f"non-finite or non-positive input values: {rec['n_bad_values']}")
    if rec["dropped_energies"]:
        lines.append("dropped energies: " + ", ".join(f"{d['energy']:.3f} eV ({d['reason']})"
                                                      for d in rec["dropped_energies"]))
    else:
        lines.append("dropped energies: none")
    for name, label in (("qc_edge_step", "normalization denominator"), ("qc_noise", "pre-edge noise"),
                        ("qc_signal", "peak above baseline")):
        if name in rec:
            s = rec[name]
            lines.append(f"{label}: median {s['median']:.4g} (5-95 %: {s['p05']:.4g} .. {s['p95']:.4g})")
    for note in rec["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)
