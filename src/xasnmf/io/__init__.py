"""Stack readers: real formats in, one canonical cube (:mod:`xasnmf.cube`) out.

:func:`import_stack` detects the format (or takes ``format=``), reads the
frames, checks the energies, converts transmitted intensities to optical
density when an I0 is given, and records every masked pixel and dropped
energy in the QC record (:mod:`xasnmf.qc`).

Formats
-------
``sdf``     ALS/CLS ``NAME.hdr`` + ``NAME_aNNN.xim`` (:mod:`xasnmf.io.sdf`); values are
            transmitted counts, so an I0 is required.
``tiff``    multi-page TIFF or folder of TIFFs (:mod:`xasnmf.io.tiff`); needs ``energies``.
``netcdf``  NetCDF4 / HDF5 (:mod:`xasnmf.io.arrays`), ``var`` / ``dims`` for foreign layouts.
``npy``     ``.npy`` / ``.npz`` (:mod:`xasnmf.io.arrays`).

Without ``i0`` the TIFF / NetCDF / NumPy values are taken to be absorbance
(optical density) already; with ``i0`` they are intensities and OD = -ln(I/I0).

Data rules (QC, never patched)
------------------------------
* Energies must be finite and strictly increasing.  Duplicates or a
  non-increasing order are an error listing them, unless ``sort_energies``
  (stable sort) / ``drop_duplicate_energies`` (keep the first frame of each
  energy) are given; dropped frames are recorded.  Uneven steps are kept.
* An energy frame that is zero (or non-finite) at every pixel is dropped with a
  :class:`~xasnmf.errors.DataQualityWarning` and recorded in
  ``qc_dropped_energies``.
* Non-finite values, non-positive intensities (before the log) and all-zero
  (beam-blocked) pixels mask the pixel with a ``qc_reason`` code; values that
  cannot be computed stay NaN.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .. import qc
from ..errors import DataQualityWarning, InputError
from ._common import read_columns
from .i0 import I0Spec, i0_from_file, i0_from_region, optical_density, parse_i0

__all__ = ["import_stack", "detect_format", "read_energies", "check_energies", "FORMATS"]

FORMATS = ("sdf", "tiff", "netcdf", "npy")
_SUFFIX = {".hdr": "sdf", ".tif": "tiff", ".tiff": "tiff", ".nc": "netcdf", ".nc4": "netcdf", ".cdf": "netcdf",
           ".h5": "netcdf", ".hdf5": "netcdf", ".hdf": "netcdf", ".npy": "npy", ".npz": "npy"}


def detect_format(src: str | Path, format: str | None = None) -> str:
    """The reader for ``src``: ``format`` if given, else from the suffix (a folder is a TIFF folder)."""
    src = Path(src)
    if format is not None:
        f = {"hdf5": "netcdf", "h5": "netcdf", "nc": "netcdf", "tif": "tiff", "npz": "npy"}.get(format, format)
        if f not in FORMATS:
            raise InputError(f"unknown format {format!r}", source="--format",
                             fix=f"use one of {', '.join(FORMATS)}")
        return f
    if src.is_dir():
        return "tiff"
    f = _SUFFIX.get(src.suffix.lower())
    if f is None:
        raise InputError(f"cannot tell the format from the suffix {src.suffix!r}", source=str(src),
                         fix=f"give --format ({', '.join(FORMATS)})")
    return f


def read_energies(path: str | Path) -> np.ndarray:
    """An energy list: one energy per line (first column used), or one line of energies.

    Returns
    -------
    ndarray, shape (n,), eV
    """
    tab = read_columns(path, what="energy list")
    if tab.shape[0] == 1 and tab.shape[1] > 1:
        return tab[0].copy()
    return tab[:, 0].copy()


def check_energies(energy: np.ndarray, *, source: str, sort_energies: bool = False,
                   drop_duplicate_energies: bool = False) -> tuple[np.ndarray, list[dict]]:
    """Check energies; optionally sort and drop duplicates (only when asked).

    Parameters
    ----------
    energy : ndarray, shape (n,)
    source : str
    sort_energies, drop_duplicate_energies : bool

    Returns
    -------
    keep : ndarray of int, shape (k,)
        Frame indices to use, in output (increasing energy) order.
    dropped : list of dict
        ``{"energy", "frame", "reason"}`` for each frame left out.
    """
    e = np.asarray(energy, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(e))
    if bad.size:
        raise InputError(f"energies are NaN/Inf at frames {bad[:10].tolist()}", source=source,
                         fix="every frame needs a finite energy in eV")
    order = np.argsort(e, kind="stable") if sort_energies else np.arange(e.size)
    problems = []
    vals, counts = np.unique(e, return_counts=True)
    dupvals = vals[counts > 1]
    if dupvals.size and not drop_duplicate_energies:
        desc = "; ".join(f"{v:.4f} eV (frames {np.flatnonzero(e == v).tolist()})" for v in dupvals[:8])
        more = f" and {dupvals.size - 8} more" if dupvals.size > 8 else ""
        problems.append(f"duplicate energies: {desc}{more}")
    dec = np.flatnonzero(np.diff(e[order]) < 0)
    if dec.size:
        desc = ", ".join(f"frame {order[i + 1]} ({e[order[i]]:.4f} -> {e[order[i + 1]]:.4f} eV)" for i in dec[:8])
        more = f" and {dec.size - 8} more" if dec.size > 8 else ""
        problems.append(f"energies are not increasing: they decrease at {desc}{more}")
    if problems:
        fixes = []
        if dupvals.size and not drop_duplicate_energies:
            fixes.append("--drop-duplicate-energies (keeps the first frame of each energy)")
        if dec.size:
            fixes.append("--sort-energies (sorts the frames by energy)")
        raise InputError("; ".join(problems), source=source,
                         fix="check the energy list; if the frames are right, pass " + " and ".join(fixes))
    keep, dropped, seen = [], [], set()
    for i in order:
        if e[i] in seen:
            dropped.append({"energy": float(e[i]), "frame": int(i), "reason": "duplicate_energy"})
            continue
        seen.add(e[i])
        keep.append(int(i))
    return np.array(keep, dtype=int), dropped


def _build_cube(data: np.ndarray, energy: np.ndarray, *, y, x, xy_units: str, intensities: bool,
                i0: I0Spec | None, source: str, files_desc: str, title: str, sort_energies: bool,
                drop_duplicate_energies: bool, history: str, attrs: dict | None = None):
    from ..cube import make_cube
    from ..provenance import provenance_attrs

    ny, nx, nf = data.shape
    energy = np.asarray(energy, dtype=np.float64).ravel()
    if energy.size != nf:
        raise InputError(f"the energy list has {energy.size} values but the stack has {nf} frames",
                         source=source, fix="give one energy per frame (--energies FILE), in frame order")
    keep, dropped = check_energies(energy, source=source, sort_energies=sort_energies,
                                   drop_duplicate_energies=drop_duplicate_energies)
    data = data[:, :, keep]
    energy = energy[keep]
    # dead frames: zero or non-finite at every pixel
    dead = np.all((data == 0) | ~np.isfinite(data), axis=(0, 1))
    if dead.all():
        raise InputError("every energy frame is zero or non-finite", source=source,
                         fix="the stack holds no data; check the files")
    if dead.any():
        for k in np.flatnonzero(dead):
            why = "all_zero_frame" if np.all(data[:, :, k] == 0) else "all_zero_or_nonfinite_frame"
            dropped.append({"energy": float(energy[k]), "frame": int(keep[k]), "reason": why})
        warnings.warn(f"{source}: dropped {int(dead.sum())} all-zero (or non-finite) energy frame(s) at "
                      f"{', '.join(f'{v:.3f}' for v in energy[dead])} eV (recorded in qc_dropped_energies)",
                      DataQualityWarning, stacklevel=3)
        data = data[:, :, ~dead]
        energy = energy[~dead]
    if energy.size < 2:
        raise InputError(f"only {energy.size} usable energy frame(s)", source=source,
                         fix="a spectrum needs at least 2 energies")
    notes = []
    if intensities:
        if i0 is None:
            raise InputError("holds transmitted intensities (counts); optical density needs I0", source=source,
                             fix="give --i0 FILE (two columns: energy eV, counts) or --i0 region:Y0:Y1,X0:X1 "
                                 "(a blank area)")
        if i0.kind == "file":
            i0v = i0_from_file(i0.path, energy)
        else:
            i0v = i0_from_region(data, i0.roi, source=source)  # type: ignore[arg-type]
        values, reason, n_bad = optical_density(data, i0v, source=source)
        notes.append(f"OD = -ln(I/I0), I0 from {i0.describe()}")
    else:
        values = data
        reason = np.zeros((ny, nx), dtype=np.int8)
        nonfinite = ~np.isfinite(values)
        qc.flag(reason, np.all(values == 0, axis=2), qc.BEAM_BLOCKED)
        qc.flag(reason, nonfinite.any(axis=2), qc.NONFINITE)
        n_bad = nonfinite.sum(axis=2).astype(np.int16)
        notes.append("values taken as absorbance (optical density) as stored; no I0 given")
    n_masked = int((reason != 0).sum())
    if n_masked == ny * nx:
        raise InputError(f"every pixel is unusable ({qc.REASONS[int(np.bincount(reason.ravel()).argmax())]})",
                         source=source, fix="check the data and the I0")
    if n_masked:
        counts = {qc.REASONS[int(c)]: int((reason == c).sum()) for c in np.unique(reason) if c}
        warnings.warn(f"{source}: masked {n_masked} pixel(s): "
                      + ", ".join(f"{k} {v}" for k, v in counts.items()) + " (recorded in qc_reason)",
                      DataQualityWarning, stacklevel=3)
    params = {"format_source": source, "i0": i0.describe() if i0 else None, "sort_energies": sort_energies,
              "drop_duplicate_energies": drop_duplicate_energies}
    a = dict(provenance_attrs(**params))
    a.update(attrs or {})
    ds = make_cube(values, energy, y=y, x=x, xy_units=xy_units, mask=(reason == 0).astype(np.int8),
                   title=title, source=files_desc, history=history, attrs=a,
                   absorbance_attrs={"normalized": 0})
    ds["qc_reason"] = (("y", "x"), reason, qc.qc_reason_attrs())
    ds["qc_n_bad"] = (("y", "x"), n_bad, {"long_name": "number of non-finite or non-positive input values",
                                          "units": "1"})
    qc.set_qc_attrs(ds, dropped_energies=dropped, notes=notes)
    return ds


def import_stack(src, *, format: str | None = None, energies=None, i0=None, region: int | None = None,
                 var: str | None = None, dims=None, sort_energies: bool = False,
                 drop_duplicate_energies: bool = False):
    """Read a stack into canonical cube(s).

    Signature::

        import_stack(src, *, format=None, energies=None, i0=None, region=None, var=None, dims=None,
                     sort_energies=False, drop_duplicate_energies=False) -> xr.Dataset | list[xr.Dataset]

    Parameters
    ----------
    src : str or Path
        ``NAME.hdr``, a TIFF file or folder, a NetCDF/HDF5 file, ``.npy`` / ``.npz``.
    format : {"sdf", "tiff", "netcdf", "npy"}, optional
        Default: detected from the suffix.
    energies : str, Path or array, optional
        Energy list file (one per line) or array, shape (n_frames,); overrides
        the header / file energies.
    i0 : str or I0Spec, optional
        ``FILE`` (energy, counts) or ``"region:Y0:Y1,X0:X1"``.  Given: the data
        are intensities and OD = -ln(I/I0).  Required for SDF.
    region : int, optional
        SDF region to read; default all (one cube per region).
    var, dims : str, optional
        Variable and its dimension roles (``"energy,y,x"``) for foreign layouts.
    sort_energies, drop_duplicate_energies : bool
        Allow fixing the energy order / duplicates (recorded); else they are errors.

    Returns
    -------
    xarray.Dataset or list of xarray.Dataset
        ``absorbance(y, x, energy)`` float32, ``mask(y, x)``, ``qc_reason(y, x)``,
        ``qc_n_bad(y, x)``; a list (one per region) for a multi-region SDF
        stack when ``region`` is None.
    """
    src = Path(src)
    if not src.exists():
        raise InputError("not found", source=str(src), fix="check the path of the stack")
    fmt = detect_format(src, format)
    i0spec = parse_i0(i0)
    e_override = None
    if energies is not None:
        e_override = read_energies(energies) if isinstance(energies, (str, Path)) else np.asarray(energies, float)
    common = dict(sort_energies=sort_energies, drop_duplicate_energies=drop_duplicate_energies, i0=i0spec)
    opts = (f"i0={i0spec.describe() if i0spec else None} energies={energies if isinstance(energies, (str, Path)) else None}"
            f" sort_energies={sort_energies} drop_duplicate_energies={drop_duplicate_energies}")

    if fmt == "sdf":
        from .sdf import read_header, read_sdf_region

        hdr = read_header(src)
        if region is not None and not isinstance(region, (int, np.integer)):
            raise InputError(f"region must be an integer, got {region!r}", source="--region")
        wanted = [int(region)] if region is not None else list(range(hdr.n_regions))
        out = []
        for k in wanted:
            stack, y, x, files = read_sdf_region(hdr, k)
            e = hdr.energy if e_override is None else e_override
            desc = (f"{hdr.path} (ALS/CLS SDF, region {k} of {hdr.n_regions}, {len(files)} images "
                    f"{files[0].name}..{files[-1].name})")
            if i0spec is not None and i0spec.kind == "file":
                desc += f"; I0 {i0spec.path}"
            ds = _build_cube(stack, e, y=y, x=x, xy_units=hdr.xy_units, intensities=True, source=str(src),
                             files_desc=desc, title=f"{hdr.stem} region {k}",
                             history=f"xasnmf import {src} format=sdf region={k} {opts}",
                             attrs={"sdf_region": k, "sdf_n_regions": hdr.n_regions,
                                    "sdf_channel": hdr.channels[0] if hdr.channels else "",
                                    "sdf_n_channels": len(hdr.channels), "sdf_scan_type": hdr.scan_type},
                             **common)
            out.append(ds)
        return out[0] if (region is not None or hdr.n_regions == 1) else out

    if region is not None:
        raise InputError(f"--region applies to multi-region SDF stacks, not {fmt}", source="--region",
                         fix="omit --region")
    y = x = None
    units = "pixel"
    file_attrs: dict = {}
    if fmt == "tiff":
        from .tiff import read_tiff_stack

        data, files = read_tiff_stack(src)
        e = None
        desc = f"{src} (TIFF, {len(files)} file(s))"
    elif fmt == "netcdf":
        from .arrays import read_netcdf_array

        data, e, y, x, units, file_attrs = read_netcdf_array(src, var=var, dims=dims)
        desc = f"{src} (NetCDF/HDF5, variable {var or 'auto'})"
    else:
        from .arrays import read_numpy_array

        data, e = read_numpy_array(src, var=var, dims=dims)
        desc = f"{src} (NumPy {src.suffix})"
    if e_override is not None:
        e = e_override
    if e is None:
        raise InputError("has no energies", source=str(src),
                         fix="give --energies FILE (one energy in eV per line, in frame order)")
    if isinstance(energies, (str, Path)):
        desc += f"; energies {energies}"
    if i0spec is not None and i0spec.kind == "file":
        desc += f"; I0 {i0spec.path}"
    return _build_cube(data, e, y=y, x=x, xy_units=units, intensities=i0spec is not None, source=str(src),
                       files_desc=desc, title=file_attrs.get("title", src.stem) if fmt == "netcdf" else src.stem,
                       history=f"xasnmf import {src} format={fmt} var={var} dims={dims} {opts}", **common)
