"""User pixel masks: ``.msk`` text, NetCDF and ``.npy``.

``.msk`` (aXis2000 / the shared STXM data)
    One text line per image row, one character per pixel: ``O`` = selected,
    space = not selected (also accepted as not selected: ``.``, ``0``, ``-``).
    Rows are in the same order as the ``.xim`` rows, i.e. y increasing for a
    header with increasing ``QAxis.Points``.  Lines shorter than the longest
    are right-padded with spaces (editors strip trailing blanks); any other
    character is an error.
NetCDF (``.nc``)
    Variable ``mask`` (or the only 2-D variable) with dims ``(y, x)``; nonzero = selected.
``.npy``
    A 2-D array; nonzero (True) = selected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["read_mask", "read_msk"]

_UNSELECTED = set(" .0-")


def read_msk(path: str | Path, *, width: int | None = None) -> np.ndarray:
    """Read an ``.msk`` text mask.

    Parameters
    ----------
    path : str or Path
    width : int, optional
        Image width; shorter lines are right-padded with spaces up to it.

    Returns
    -------
    ndarray of bool, shape (n_lines, width or max_line_length)
        Blank lines are rows with no pixel selected.
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", source=source, fix="check the path") from None
    lines = text.splitlines()
    if not lines:
        raise InputError("mask file is empty", source=source, fix="give a mask with one line per image row")
    longest = max(len(ln) for ln in lines)
    width = max(longest, width or 0)
    out = np.zeros((len(lines), width), dtype=bool)
    for j, ln in enumerate(lines):
        for i, ch in enumerate(ln):
            if ch == "O":
                out[j, i] = True
            elif ch not in _UNSELECTED:
                raise InputError(f"line {j + 1}, column {i + 1} has character {ch!r}; a .msk file uses 'O' for "
                                 "selected and space for not selected", source=source,
                                 fix="fix or re-export the mask file")
    return out


def read_mask(path: str | Path, *, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a pixel mask (``.msk``, ``.nc``, ``.npy``), optionally checking its shape.

    Parameters
    ----------
    path : str or Path
    shape : (ny, nx), optional
        Required shape (the cube's image size).

    Returns
    -------
    ndarray of bool, shape (ny, nx)
        True = pixel selected.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InputError("mask file not found", source=source, fix="check the --mask path")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            m = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a user-facing problem
            raise InputError(f"cannot be read as .npy ({type(exc).__name__}: {exc})", source=source,
                             fix="save the mask with numpy.save") from None
    elif suffix in (".nc", ".nc4", ".cdf", ".h5", ".hdf5"):
        import xarray as xr

        try:
            ds = xr.load_dataset(path)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"cannot be read as NetCDF ({type(exc).__name__}: {exc})", source=source,
                             fix="give a NetCDF file with a 2-D variable 'mask'") from None
        if "mask" in ds:
            m = ds["mask"].values
        else:
            cands = [v for v in ds.data_vars if ds[v].ndim == 2]
            if len(cands) != 1:
                raise InputError(f"has no variable 'mask' and {len(cands)} 2-D variables", source=source,
                                 fix="name the mask variable 'mask'")
            m = ds[cands[0]].values
    else:
        m = read_msk(path, width=shape[1] if shape is not None else None)
    m = np.asarray(m)
    if m.ndim != 2:
        raise InputError(f"mask is {m.ndim}-D with shape {m.shape}, expected 2-D (y, x)", source=source,
                         fix="give one value per image pixel")
    if m.dtype.kind == "f" and not np.all(np.isfinite(m)):
        raise InputError("mask has NaN values", source=source, fix="use 1 = selected, 0 = not selected")
    if shape is not None and m.shape != tuple(shape):
        raise InputError(f"mask has shape {m.shape} (y, x) but the cube's images are {tuple(shape)}",
                         source=source,
                         fix="give a mask made for this stack (masks apply to the input cube, before --roi/--bin)")
    return m.astype(bool) if m.dtype != bool else m
