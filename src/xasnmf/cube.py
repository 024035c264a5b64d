"""The canonical cube: the one NetCDF layout every xasnmf step reads and writes.

Layout (NetCDF4 through xarray)::

    absorbance(y, x, energy)  float32   optical density, or normalized absorbance
                                        (attribute normalized = 1, norm_rule = ...)
    reference(energy)         optional  spectrum b that later steps subtract
    mask(y, x)                optional  int8, 1 = pixel used
    qc_*                      optional  QC variables
    energy                    eV, strictly increasing
    y, x                      um where the source gives positions, else pixel index

The matrix factorized is ``absorbance - reference`` over the pixels with
``mask == 1``; pixel rows are in C order of (y, x), i.e. ``row = y * nx + x``
before masking, so "every 20th row" means the same thing everywhere.

This module is the xarray edge; the numerical core only sees NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

CONVENTIONS = "CF-1.8"


@dataclass
class CubeMatrix:
    """A cube flattened to the pixels x energies matrices of the method.

    Attributes
    ----------
    X0 : ndarray, shape (m, n)
        Normalized spectra of the valid pixels (rows in C order of (y, x)).
    X : ndarray, shape (m, n)
        ``X0 - 1 b`` (equal to ``X0`` when the cube has no reference).
    reference : ndarray, shape (n,) or None
    mask : ndarray of bool, shape (ny, nx)
        True where the pixel is used.
    energy, y, x : ndarray
        Coordinates.
    """

    X0: np.ndarray
    X: np.ndarray
    reference: np.ndarray | None
    mask: np.ndarray
    energy: np.ndarray
    y: np.ndarray
    x: np.ndarray
    attrs: dict

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)  # type: ignore[return-value]


def coordinate_attrs(name: str, units: str) -> dict[str, str]:
    long = {"energy": "photon energy", "y": "position y", "x": "position x"}.get(name, name)
    return {"units": units, "long_name": long}


def make_cube(
    absorbance: np.ndarray,
    energy: np.ndarray,
    *,
    y: np.ndarray | None = None,
    x: np.ndarray | None = None,
    xy_units: str = "pixel",
    reference: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    title: str = "xasnmf cube",
    source: str = "",
    history: str | None = None,
    attrs: dict[str, Any] | None = None,
    absorbance_attrs: dict[str, Any] | None = None,
):
    """Build a canonical cube Dataset from NumPy arrays.

    Parameters
    ----------
    absorbance : ndarray, shape (ny, nx, n_energy)
    energy : ndarray, shape (n_energy,), eV, strictly increasing
    y, x : ndarray, optional
        Positions (``xy_units``); pixel indices when omitted.
    reference : ndarray, shape (n_energy,), optional
    mask : ndarray of bool/int, shape (ny, nx), optional
    """
    import xarray as xr

    from .provenance import provenance_attrs

    a = np.asarray(absorbance)
    if a.ndim != 3:
        raise InputError(f"absorbance must be 3-D (y, x, energy), got shape {a.shape}")
    ny, nx, ne = a.shape
    energy = np.asarray(energy, dtype=np.float64)
    if energy.shape != (ne,):
        raise InputError(f"energy must have {ne} values (one per frame), got {energy.shape}")
    if y is None:
        y = np.arange(ny, dtype=np.float64)
        y_units = "pixel"
    else:
        y_units = xy_units
    if x is None:
        x = np.arange(nx, dtype=np.float64)
        x_units = "pixel"
    else:
        x_units = xy_units
    coords = {
        "y": ("y", np.asarray(y, dtype=np.float64), coordinate_attrs("y", y_units)),
        "x": ("x", np.asarray(x, dtype=np.float64), coordinate_attrs("x", x_units)),
        "energy": ("energy", energy, coordinate_attrs("energy", "eV")),
    }
    aattrs = {"long_name": "absorbance (optical density)", "units": "1"}
    aattrs.update(absorbance_attrs or {})
    data_vars = {"absorbance": (("y", "x", "energy"), a.astype(np.float32, copy=False), aattrs)}
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float32)
        if ref.shape != (ne,):
            raise InputError(f"reference must have {ne} values, got {ref.shape}")
        data_vars["reference"] = ("energy", ref, {"long_name": "reference spectrum b", "units": "1"})
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != (ny, nx):
            raise InputError(f"mask must have shape {(ny, nx)}, got {m.shape}")
        data_vars["mask"] = (("y", "x"), m.astype(np.int8), {"long_name": "pixel used (1) or masked (0)",
                                                             "flag_values": [0, 1]})
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update(provenance_attrs())
    ds.attrs.update({"Conventions": CONVENTIONS, "title": title, "source": source})
    ds.attrs["history"] = ""
    if attrs:
        ds.attrs.update(attrs)
    if history:
        append_history(ds, history)
    return ds


def append_history(ds, line: str) -> None:
    """Append a timestamped line to the Dataset's ``history`` attribute (in place)."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    old = ds.attrs.get("history", "")
    ds.attrs["history"] = (old + "\n" if old else "") + f"{stamp} {line}"


def open_cube(path: str | Path, *, var: str = "absorbance"):
    """Open and validate a canonical cube; errors name the file and the fix."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", source=str(path),
                         fix="check the path, or create the cube with `xasnmf import` or `xasnmf synth`")
    try:
        ds = xr.load_dataset(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user-facing problem
        raise InputError(f"cannot be read as NetCDF ({type(exc).__name__}: {exc})", source=str(path),
                         fix="the file may be truncated or not NetCDF; re-create it") from None
    validate_cube(ds, source=str(path), var=var)
    return ds


def validate_cube(ds, *, source: str = "cube", var: str = "absorbance") -> None:
    """Check the canonical layout; raise :class:`InputError` naming what is wrong."""
    if var not in ds:
        raise InputError(f"has no variable {var!r} (variables: {sorted(ds.data_vars)})", source=source,
                         fix="canonical cubes are made by `xasnmf import`, `xasnmf preprocess` or `xasnmf synth`")
    dims = tuple(ds[var].dims)
    if dims != ("y", "x", "energy"):
        raise InputError(f"variable {var!r} has dims {dims}, expected ('y', 'x', 'energy')", source=source,
                         fix="re-import with `xasnmf import FILE --var NAME --dims ...`")
    e = np.asarray(ds["energy"].values, dtype=float)
    if e.size < 2 or not np.all(np.diff(e) > 0):
        raise InputError("energy coordinate is not strictly increasing", source=source,
                         fix="re-import with --sort-energies or --drop-duplicate-energies")
    if "mask" in ds and tuple(ds["mask"].dims) != ("y", "x"):
        raise InputError(f"mask has dims {tuple(ds['mask'].dims)}, expected ('y', 'x')", source=source)
    if "reference" in ds and tuple(ds["reference"].dims) != ("energy",):
        raise InputError(f"reference has dims {tuple(ds['reference'].dims)}, expected ('energy',)", source=source)


def cube_matrix(ds, *, dtype=np.float64, source: str = "cube", var: str = "absorbance") -> CubeMatrix:
    """Flatten a canonical cube to the method's matrices X0 and X = X0 - 1 b.

    Rows are the pixels with ``mask == 1`` (all pixels when there is no mask) in
    C order of (y, x).  Non-finite values in used pixels are an error.
    """
    validate_cube(ds, source=source, var=var)
    _warn_if_not_normalized(ds, source=source, var=var)
    a = np.asarray(ds[var].values)
    ny, nx, ne = a.shape
    if "mask" in ds:
        mask = np.asarray(ds["mask"].values) == 1
    else:
        mask = np.ones((ny, nx), dtype=bool)
    if not mask.any():
        raise InputError("mask selects no pixel", source=source,
                         fix="loosen the preprocessing thresholds (--min-signal, edge step) or check the mask file")
    X0 = a.reshape(ny * nx, ne)[mask.ravel()].astype(dtype, copy=True)
    bad = ~np.isfinite(X0)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise InputError(f"{bad.sum()} non-finite values in {rows.size} used pixels", source=source,
                         fix="run `xasnmf preprocess`, which masks such pixels with a QC reason")
    ref = None
    if "reference" in ds:
        ref = np.asarray(ds["reference"].values, dtype=dtype)
        if not np.all(np.isfinite(ref)):
            raise InputError("reference spectrum has non-finite values", source=source)
        X = X0 - ref[None, :]
    else:
        X = X0.copy()
    return CubeMatrix(X0=X0, X=X, reference=ref, mask=mask,
                      energy=np.asarray(ds["energy"].values, dtype=np.float64),
                      y=np.asarray(ds["y"].values), x=np.asarray(ds["x"].values), attrs=dict(ds.attrs))


def _warn_if_not_normalized(ds, *, source: str, var: str) -> None:
    """The method works on normalized spectra; say so when a cube is not (a raw import, say)."""
    import warnings

    from .errors import DataQualityWarning

    attrs = ds[var].attrs
    if (int(attrs.get("normalized", 0)) == 1 or int(attrs.get("normalized_in_expectation", 0)) == 1
            or attrs.get("norm") == "none"):  # normalized, or "none" chosen explicitly in preprocess
        return
    warnings.warn(f"{source}: {var} is not marked normalized (normalized = {attrs.get('normalized', 'absent')}); "
                  "the method expects per-pixel normalized spectra. Fix: run `xasnmf preprocess` first "
                  "(--norm none there keeps the values and records that choice)", DataQualityWarning, stacklevel=3)


def rows_to_maps(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scatter per-pixel rows back to images, NaN at masked pixels.

    Parameters
    ----------
    values : ndarray, shape (m,) or (m, r)
        One row per valid pixel, in C order of (y, x).
    mask : ndarray of bool, shape (ny, nx)

    Returns
    -------
    ndarray, shape (ny, nx) or (r, ny, nx)
    """
    mask = np.asarray(mask, dtype=bool)
    values = np.asarray(values)
    ny, nx = mask.shape
    if values.shape[0] != int(mask.sum()):
        raise ValueError(f"expected {int(mask.sum())} rows (valid pixels), got {values.shape[0]}")
    if values.ndim == 1:
        out = np.full(ny * nx, np.nan, dtype=np.result_type(values.dtype, np.float32))
        out[mask.ravel()] = values
        return out.reshape(ny, nx)
    r = values.shape[1]
    out = np.full((ny * nx, r), np.nan, dtype=np.result_type(values.dtype, np.float32))
    out[mask.ravel()] = values
    return out.T.reshape(r, ny, nx)


def maps_to_rows(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rows_to_maps`: (r, ny, nx) or (ny, nx) -> (m, r) or (m,)."""
    mask = np.asarray(mask, dtype=bool)
    maps = np.asarray(maps)
    if maps.ndim == 2:
        return maps.ravel()[mask.ravel()]
    r = maps.shape[0]
    return maps.reshape(r, -1).T[mask.ravel()]
