"""NetCDF / HDF5 cubes in foreign layouts, and ``.npy`` / ``.npz`` arrays.

NetCDF / HDF5 (read with xarray, netCDF4 engine)
    ``--var NAME`` picks the variable (default: ``absorbance`` if present, else
    the only 3-D variable); ``--dims`` names the *role* of each of its
    dimensions in the file's order, e.g. ``--dims energy,y,x`` for a variable
    stored (energy, row, column).  Default: the variable's own dimension names
    must be ``y``, ``x``, ``energy`` in some order.  Energies come from the
    coordinate variable of the energy dimension, else ``--energies FILE``.
    ``y`` / ``x`` coordinate variables (with ``units``) are kept.
``.npy``
    A 3-D array, dims ``--dims`` (default ``y,x,energy``); energies from ``--energies``.
``.npz``
    ``--var NAME`` picks the array (not needed if there is one 3-D array);
    energies from an array named ``energy`` or ``--energies``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["parse_dims", "read_netcdf_array", "read_numpy_array"]

_ROLES = ("y", "x", "energy")


def parse_dims(dims, *, source: str = "--dims") -> tuple[str, str, str] | None:
    """Parse ``y,x,energy`` (any order of the three roles)."""
    if dims is None:
        return None
    parts = [p.strip() for p in (dims.split(",") if isinstance(dims, str) else list(dims))]
    if sorted(parts) != sorted(_ROLES):
        raise InputError(f"{','.join(parts)!r} is not an order of y, x, energy", source=source,
                         fix="e.g. --dims energy,y,x for a variable stored (energy, row, column)")
    return tuple(parts)  # type: ignore[return-value]


def _to_yxe(a: np.ndarray, roles: tuple[str, ...]) -> np.ndarray:
    return np.transpose(a, [roles.index(r) for r in _ROLES])


def _choose_stack(ndims: dict, var, *, what: str, source: str, listed, fix_ambiguous: str,
                  prefer: str | None = None) -> str:
    """The name of the stack among a file's variables/arrays (``ndims``: name -> number of dims).

    ``var`` given: it must exist.  Else ``prefer`` if present, else the only 3-D one.
    """
    if var is None:
        if prefer is not None and prefer in ndims:
            return prefer
        three = [n for n, d in ndims.items() if d == 3]
        if len(three) != 1:
            raise InputError(f"cannot tell which {what} is the stack (3-D {what}s: {three})", source=source,
                             fix=fix_ambiguous)
        return three[0]
    if var not in ndims:
        raise InputError(f"has no {what} {var!r} ({what}s: {listed})", source=source,
                         fix="give --var with one of the listed names")
    return var


def read_netcdf_array(path: str | Path, *, var: str | None = None, dims=None):
    """Read a 3-D variable from NetCDF/HDF5 and bring it to (y, x, energy).

    Returns
    -------
    data : ndarray, shape (ny, nx, n), float64
    energy : ndarray, shape (n,) or None
    y, x : ndarray or None
    xy_units : str
    attrs : dict
        Global attributes of the file.
    """
    import xarray as xr

    path = Path(path)
    source = str(path)
    try:
        ds = xr.load_dataset(path, engine="netcdf4")
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot be read as NetCDF/HDF5 ({type(exc).__name__}: {exc})", source=source,
                         fix="the file may be truncated or not NetCDF4/HDF5; re-create it") from None
    var = _choose_stack({v: ds[v].ndim for v in ds.data_vars}, var, what="variable", source=source,
                        prefer="absorbance", listed=sorted(ds.data_vars),
                        fix_ambiguous="give --var NAME (and --dims if its dims are not y, x, energy)")
    da = ds[var]
    if da.ndim != 3:
        raise InputError(f"variable {var!r} is {da.ndim}-D {tuple(da.dims)}, expected 3-D", source=source,
                         fix="give --var naming a 3-D (y, x, energy) variable")
    roles = parse_dims(dims)
    if roles is None:
        if sorted(da.dims) != sorted(_ROLES):
            raise InputError(f"variable {var!r} has dims {tuple(da.dims)}, not y, x, energy", source=source,
                             fix=f"give --dims naming the role of each of {tuple(da.dims)}, e.g. --dims energy,y,x")
        roles = tuple(str(d) for d in da.dims)
    data = _to_yxe(np.asarray(da.values, dtype=np.float64), roles)
    file_dims = list(da.dims)
    coords = {}
    units = "pixel"
    for role in _ROLES:
        d = file_dims[roles.index(role)]
        if d in ds.coords or d in ds.variables:
            c = ds[d]
            if c.ndim == 1 and not str(d).startswith("phony_dim"):
                coords[role] = np.asarray(c.values, dtype=np.float64)
                if role != "energy" and c.attrs.get("units"):
                    units = str(c.attrs["units"])
    return data, coords.get("energy"), coords.get("y"), coords.get("x"), units, dict(ds.attrs)


def read_numpy_array(path: str | Path, *, var: str | None = None, dims=None):
    """Read ``.npy`` / ``.npz`` and bring the stack to (y, x, energy).

    Returns
    -------
    data : ndarray, shape (ny, nx, n), float64
    energy : ndarray, shape (n,) or None
    """
    path = Path(path)
    source = str(path)
    try:
        obj = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot be read as .npy/.npz ({type(exc).__name__}: {exc})", source=source,
                         fix="the file may be truncated; save it again with numpy.save / numpy.savez") from None
    energy = None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            names = list(obj.files)
            var = _choose_stack({n: obj[n].ndim for n in names} if var is None else dict.fromkeys(names, 0),
                                var, what="array", source=source, listed=names, fix_ambiguous="give --var NAME")
            a = obj[var]
            if "energy" in names:
                energy = np.asarray(obj["energy"], dtype=np.float64).ravel()
    else:
        a = obj
    a = np.asarray(a)
    if a.ndim != 3:
        raise InputError(f"array is {a.ndim}-D with shape {a.shape}, expected 3-D", source=source,
                         fix="give a (y, x, energy) array, or its dims order with --dims")
    if a.dtype.kind not in "fiub":
        raise InputError(f"array has non-numeric dtype {a.dtype}", source=source)
    roles = parse_dims(dims) or _ROLES
    return _to_yxe(a.astype(np.float64), roles), energy
