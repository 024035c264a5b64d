"""TIFF stacks: one multi-page TIFF, or a folder of single-page TIFFs (read with ``tifffile``).

Pages are frames in energy order as given by ``--energies FILE``.  In a folder
the files are taken in natural order of their names (``img2`` before
``img10``).  Row 0 of a page is y index 0 (pixel coordinates; TIFF carries no
positions).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["read_tiff_stack", "tiff_files"]

_TIFF_SUFFIXES = (".tif", ".tiff")


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def tiff_files(folder: Path) -> list[Path]:
    """The TIFF files of a folder in natural name order."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in _TIFF_SUFFIXES and p.is_file()),
                  key=_natural_key)


def _imread(path: Path) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            axes = tif.series[0].axes if tif.series else ""
            a = np.asarray(tif.asarray())
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user-facing problem
        raise InputError(f"cannot be read as TIFF ({type(exc).__name__}: {exc})", source=str(path),
                         fix="the file may be truncated or not a TIFF; re-export it") from None
    if "S" in axes:
        raise InputError(f"holds colour/multi-sample images (axes {axes!r}), not grey-scale frames",
                         source=str(path), fix="save one grey-scale page per energy (photometric minisblack)")
    if a.size == 0:
        raise InputError("cannot be read as TIFF (no image data found)", source=str(path),
                         fix="the file may be truncated or not a TIFF; re-export it")
    return a


def read_tiff_stack(src: str | Path) -> tuple[np.ndarray, list[Path]]:
    """Read a TIFF stack.

    Parameters
    ----------
    src : str or Path
        A multi-page TIFF file or a folder of single-page TIFFs.

    Returns
    -------
    stack : ndarray, shape (ny, nx, n_frames), float64
    files : list of Path
    """
    src = Path(src)
    if src.is_dir():
        files = tiff_files(src)
        if not files:
            raise InputError("folder holds no .tif/.tiff files", source=str(src),
                             fix="give a multi-page TIFF or a folder of single-page TIFFs")
        frames = []
        for f in files:
            a = _imread(f)
            if a.ndim != 2:
                raise InputError(f"is {a.ndim}-D with shape {a.shape}; each file of a TIFF folder must be one "
                                 "grey-scale page", source=str(f),
                                 fix="split multi-page or RGB images into single grey-scale pages")
            if frames and a.shape != frames[0].shape:
                raise InputError(f"has image size {a.shape} but {files[0].name} has {frames[0].shape}",
                                 source=str(f), fix="all frames of a stack must have the same size")
            frames.append(a.astype(np.float64))
        return np.stack(frames, axis=-1), files
    a = _imread(src)
    if a.ndim == 2:
        raise InputError("is a single-page TIFF, not a stack", source=str(src),
                         fix="give a multi-page TIFF or a folder of single-page TIFFs")
    if a.ndim != 3:
        raise InputError(f"has shape {a.shape}; expected pages x rows x columns (grey-scale)", source=str(src),
                         fix="save the stack as grey-scale pages, one per energy")
    return np.moveaxis(a.astype(np.float64), 0, -1).copy(), [src]
