"""Small parsers and checks shared by the readers and preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError


def parse_roi(text: str, *, option: str = "--roi") -> tuple[int, int, int, int]:
    """Parse ``Y0:Y1,X0:X1`` (pixel indices, half-open like Python slices).

    Returns
    -------
    (y0, y1, x0, x1) : tuple of int
    """
    try:
        ys, xs = str(text).split(",")
        y0, y1 = (int(v) for v in ys.split(":"))
        x0, x1 = (int(v) for v in xs.split(":"))
    except ValueError:
        raise InputError(f"cannot parse {text!r} as Y0:Y1,X0:X1", source=option,
                         fix="give pixel index ranges, e.g. 0:300,0:300 (end excluded)") from None
    if y0 < 0 or x0 < 0 or y1 <= y0 or x1 <= x0:
        raise InputError(f"{text!r} is an empty or negative range", source=option,
                         fix="use 0 <= Y0 < Y1 and 0 <= X0 < X1 (end excluded)")
    return y0, y1, x0, x1


def check_roi(roi: tuple[int, int, int, int], shape: tuple[int, int], *, option: str) -> None:
    y0, y1, x0, x1 = roi
    ny, nx = shape
    if y1 > ny or x1 > nx:
        raise InputError(f"{y0}:{y1},{x0}:{x1} reaches outside the image of {ny} x {nx} pixels (y, x)",
                         source=option, fix=f"keep Y1 <= {ny} and X1 <= {nx}")


def parse_range(text: str, *, option: str) -> tuple[float, float]:
    """Parse an energy window ``E0:E1`` (eV, inclusive)."""
    try:
        a, b = (float(v) for v in str(text).split(":"))
    except ValueError:
        raise InputError(f"cannot parse {text!r} as E0:E1", source=option,
                         fix="give an energy window in eV, e.g. 700:705") from None
    if not (np.isfinite(a) and np.isfinite(b)) or b < a:
        raise InputError(f"{text!r} is not a window with E0 <= E1", source=option, fix="e.g. 700:705")
    return a, b


def read_columns(path: str | Path, *, what: str, min_columns: int = 1) -> np.ndarray:
    """Read a whitespace/comma separated numeric text table ('#' comments allowed).

    Returns
    -------
    ndarray, shape (n_rows, n_columns), float64
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InputError(f"{what} file not found", source=source, fix="check the path")
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", source=source, fix="check file permissions") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError:
            raise InputError(f"line {lineno} is not numeric: {line[:60]!r}", source=source,
                             fix=f"the {what} file must hold numbers only (comments after '#')") from None
    if not rows:
        raise InputError(f"{what} file holds no numbers", source=source, fix="check the file")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(f"rows have different numbers of columns {sorted(widths)}", source=source,
                         fix="the file is truncated or mixed; every row needs the same columns")
    arr = np.array(rows, dtype=np.float64)
    if arr.shape[1] < min_columns:
        raise InputError(f"has {arr.shape[1]} column(s), expected at least {min_columns}", source=source,
                         fix=f"the {what} file needs columns: energy (eV), value")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"contains NaN or Inf values ({int((~np.isfinite(arr)).sum())})", source=source,
                         fix=f"the {what} file must be finite everywhere")
    return arr


def covering_interp(e_src: np.ndarray, v_src: np.ndarray, energy: np.ndarray, *, what: str,
                    source: str, tol: float = 1e-4) -> np.ndarray:
    """Linearly interpolate ``v_src(e_src)`` onto ``energy``; error naming any uncovered range.

    Parameters
    ----------
    e_src, v_src : ndarray, shape (k,)
    energy : ndarray, shape (n,)
    """
    order = np.argsort(e_src, kind="stable")
    e_src, v_src = e_src[order], v_src[order]
    if np.any(np.diff(e_src) == 0):
        dup = np.unique(e_src[1:][np.diff(e_src) == 0])
        raise InputError(f"{what} has duplicate energies {', '.join(f'{v:.3f}' for v in dup[:8])} eV",
                         source=source, fix=f"give one {what} value per energy")
    lo, hi = e_src[0] - tol, e_src[-1] + tol
    out = (energy < lo) | (energy > hi)
    if out.any():
        below = energy[energy < lo]
        above = energy[energy > hi]
        parts = []
        if below.size:
            parts.append(f"{below.min():.3f}-{min(below.max(), e_src[0]):.3f} eV ({below.size} energies below)")
        if above.size:
            parts.append(f"{max(above.min(), e_src[-1]):.3f}-{above.max():.3f} eV ({above.size} energies above)")
        raise InputError(f"{what} covers {e_src[0]:.3f}-{e_src[-1]:.3f} eV but the stack spans "
                         f"{energy.min():.3f}-{energy.max():.3f} eV; missing {' and '.join(parts)}",
                         source=source,
                         fix=f"give a {what} measured over the whole stack range (no extrapolation is done), "
                             "or restrict the stack energies")
    if e_src.size == 1:
        return np.full(energy.shape, v_src[0], dtype=np.float64)
    return np.interp(energy, e_src, v_src)
