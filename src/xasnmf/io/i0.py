"""Incident intensity I0 and optical density OD = -ln(I / I0).

``--i0 FILE``
    Two columns (energy eV, counts), interpolated linearly onto the stack
    energies; it must cover the stack's energy range (no extrapolation; the
    error names the missing range).
``--i0 region:Y0:Y1,X0:X1``
    Per-energy mean intensity over a blank area of the image (pixel indices of
    the cube, y and x increasing, end excluded).

Values of I that are non-positive or non-finite cannot be taken the log of:
their OD is left NaN and the pixel is masked with a QC reason (never replaced
by a made-up number).  A pixel whose intensity is zero at every energy is
flagged ``beam_blocked_all_zero``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import qc
from ..errors import InputError
from ._common import check_roi, covering_interp, parse_roi, read_columns

__all__ = ["I0Spec", "parse_i0", "i0_from_file", "i0_from_region", "optical_density"]


@dataclass(frozen=True)
class I0Spec:
    """A parsed ``--i0`` value: ``kind`` is "file" (``path``) or "region" (``roi``)."""

    kind: str
    path: str | None = None
    roi: tuple[int, int, int, int] | None = None

    def describe(self) -> str:
        if self.kind == "file":
            return f"file {self.path}"
        y0, y1, x0, x1 = self.roi  # type: ignore[misc]
        return f"region:{y0}:{y1},{x0}:{x1}"


def parse_i0(value) -> I0Spec | None:
    """Parse ``--i0`` (a path, or ``region:Y0:Y1,X0:X1``); None stays None."""
    if value is None:
        return None
    if isinstance(value, I0Spec):
        return value
    s = str(value)
    if s.startswith("region:"):
        return I0Spec("region", roi=parse_roi(s[len("region:"):], option="--i0 region"))
    return I0Spec("file", path=s)


def i0_from_file(path, energy: np.ndarray) -> np.ndarray:
    """I0 on ``energy`` from a two-column file (energy, counts).

    Parameters
    ----------
    path : str or Path
    energy : ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (n,)
    """
    tab = read_columns(path, what="I0", min_columns=2)
    e, c = tab[:, 0], tab[:, 1]
    if np.any(c <= 0):
        bad = e[c <= 0]
        raise InputError(f"I0 is zero or negative at {bad.size} energies ({', '.join(f'{v:.3f}' for v in bad[:6])}"
                         " eV)", source=str(path), fix="I0 must be positive counts; check the file's columns")
    return covering_interp(e, c, np.asarray(energy, dtype=float), what="I0 file", source=str(path))


def i0_from_region(intensity: np.ndarray, roi: tuple[int, int, int, int], *, source: str) -> np.ndarray:
    """Mean intensity per energy over a blank region.

    Parameters
    ----------
    intensity : ndarray, shape (ny, nx, n)
    roi : (y0, y1, x0, x1)

    Returns
    -------
    ndarray, shape (n,)
    """
    check_roi(roi, intensity.shape[:2], option="--i0 region")
    y0, y1, x0, x1 = roi
    block = intensity[y0:y1, x0:x1, :]
    bad = ~np.isfinite(block) | (block <= 0)
    if bad.any():
        raise InputError(f"the I0 region {y0}:{y1},{x0}:{x1} holds {int(bad.sum())} non-positive or non-finite "
                         "intensities", source=source,
                         fix="choose a clean blank (sample-free) area for --i0 region:..., or give --i0 FILE")
    return block.mean(axis=(0, 1))


def optical_density(intensity: np.ndarray, i0: np.ndarray, *, source: str):
    """OD = -ln(I / I0), masking (not patching) unusable intensities.

    Parameters
    ----------
    intensity : ndarray, shape (ny, nx, n)
    i0 : ndarray, shape (n,), positive and finite
    source : str

    Returns
    -------
    od : ndarray, shape (ny, nx, n), float64
        NaN where I is non-positive or non-finite.
    reason : ndarray of int8, shape (ny, nx)
        QC reason per pixel (0 = ok).
    n_bad : ndarray of int16, shape (ny, nx)
        Number of unusable values per pixel.
    """
    I = np.asarray(intensity, dtype=np.float64)
    i0 = np.asarray(i0, dtype=np.float64)
    if i0.shape != (I.shape[2],):
        raise InputError(f"I0 has {i0.shape} values for {I.shape[2]} energies", source=source)
    if not np.all(np.isfinite(i0)) or np.any(i0 <= 0):
        raise InputError("I0 is non-positive or non-finite at some energy", source=source,
                         fix="I0 must be positive counts at every stack energy")
    nonfinite = ~np.isfinite(I)
    nonpos = np.zeros_like(nonfinite)
    np.less_equal(I, 0, out=nonpos, where=~nonfinite)
    bad = nonfinite | nonpos
    reason = np.zeros(I.shape[:2], dtype=np.int8)
    qc.flag(reason, np.all(I == 0, axis=2), qc.BEAM_BLOCKED)
    qc.flag(reason, nonfinite.any(axis=2), qc.NONFINITE)
    qc.flag(reason, nonpos.any(axis=2), qc.NONPOSITIVE_INTENSITY)
    od = np.full(I.shape, np.nan)
    good = ~bad
    od[good] = -np.log((I / i0[None, None, :])[good])
    return od, reason, bad.sum(axis=2).astype(np.int16)
