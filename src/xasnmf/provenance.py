"""Provenance attributes and crash-safe NetCDF writing.

Every output file of xasnmf carries the package version, git commit, library
versions and BLAS thread count (:func:`provenance_attrs`), and is written to a
temporary name in the target folder, then renamed (:func:`write_netcdf`), so a
killed job never leaves a half-written file that looks whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


@lru_cache(maxsize=1)
def git_commit() -> str:
    """Commit of the xasnmf source tree, or ``"unknown"`` outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
        commit = out.stdout.strip()
        if out.returncode != 0 or not commit:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def blas_threads() -> int:
    """Number of threads the BLAS behind NumPy uses now (0 if unknown)."""
    try:
        from threadpoolctl import threadpool_info

        counts = [int(p.get("num_threads", 0)) for p in threadpool_info() if p.get("user_api") == "blas"]
        return max(counts) if counts else 0
    except Exception:  # pragma: no cover - threadpoolctl missing or broken
        return 0


def _dist_version(name: str) -> str:
    """Installed version of a distribution without importing it (``"missing"`` if absent)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    return v


def provenance_attrs(**parameters: Any) -> dict[str, Any]:
    """Global attributes recording who made a file and with what.

    Parameters
    ----------
    **parameters
        Run parameters (seed, rank, ...).  Scalars become attributes named
        ``param_<name>``; everything is also stored as JSON in ``parameters``.
    """
    from . import __version__

    import scipy

    attrs: dict[str, Any] = {
        "xasnmf_version": __version__,
        "git_commit": git_commit(),
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "numba_version": _dist_version("numba"),
        "machine": platform.machine(),
        "blas_threads": blas_threads(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else "",
    }
    clean = {k: _jsonable(v) for k, v in parameters.items()}
    attrs["parameters"] = json.dumps(clean, sort_keys=True, default=str)
    for k, v in clean.items():
        if v is None:
            continue
        if isinstance(v, bool):
            attrs[f"param_{k}"] = int(v)
        elif isinstance(v, (int, float, str)):
            attrs[f"param_{k}"] = v
    return attrs


def _netcdf_safe_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = int(v)
        elif isinstance(v, (dict, list, tuple)) and not (
            isinstance(v, (list, tuple)) and v and all(isinstance(e, (int, float)) for e in v)
        ):
            v = json.dumps(_jsonable(v) if not isinstance(v, (list, tuple)) else [_jsonable(e) for e in v],
                           default=str)
        out[k] = v
    return out


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary name beside ``path``; on success give it the usual permissions and rename it.

    On any error the temporary file is removed and ``path`` (if it existed) is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_netcdf(ds, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write an xarray Dataset to NetCDF4 atomically (temporary name, then rename).

    Float and integer data variables get zlib compression through ``encoding``.
    Attribute values that NetCDF cannot hold (bool, dict) are converted (int, JSON).
    """
    ds = ds.copy()
    ds.attrs = _netcdf_safe_attrs(dict(ds.attrs))
    for name in list(ds.variables):
        ds[name].attrs = _netcdf_safe_attrs(dict(ds[name].attrs))
    encoding = {}
    if compress:
        for name, var in ds.data_vars.items():
            if var.dtype.kind in "fiub" and var.ndim > 0:
                encoding[name] = {"zlib": True, "complevel": 4}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return Path(path)


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write text to ``path`` through a temporary file and rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(text)
    return Path(path)
