import json
import os

import numpy as np
import pytest
import xarray as xr

from xasnmf import __version__
from xasnmf.provenance import provenance_attrs, write_netcdf, write_text_atomic


def test_provenance_attrs_record_version_commit_threads_and_parameters():
    a = provenance_attrs(seed=3, rank=8, tol=1e-5, init="kmeans", flag=True)
    assert a["xasnmf_version"] == __version__
    assert a["git_commit"] and a["numpy_version"] == np.__version__
    import numba

    assert a["numba_version"] == numba.__version__  # the ONMF kernels are compiled by numba
    assert isinstance(a["blas_threads"], int) and a["blas_threads"] >= 1
    assert a["param_seed"] == 3 and a["param_flag"] == 1
    assert json.loads(a["parameters"])["init"] == "kmeans"


def test_write_netcdf_is_atomic_readable_and_world_readable(tmp_path):
    old = os.umask(0o022)
    try:
        ds = xr.Dataset({"v": (("y",), np.arange(5.0))}, attrs={"ok": True, "d": {"a": 1}})
        p = write_netcdf(ds, tmp_path / "sub" / "out.nc")
    finally:
        os.umask(old)
    assert oct(os.stat(p).st_mode & 0o777) == oct(0o644)
    back = xr.load_dataset(p)
    np.testing.assert_array_equal(back["v"].values, np.arange(5.0))
    assert back.attrs["ok"] == 1 and json.loads(back.attrs["d"]) == {"a": 1}
    assert [f.name for f in p.parent.iterdir()] == ["out.nc"]


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "out.nc"
    write_text_atomic("old", target)

    def dies_half_way(self, path, *a, **k):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("killed")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", dies_half_way)
    with pytest.raises(RuntimeError, match="killed"):
        write_netcdf(xr.Dataset({"v": (("y",), np.arange(3.0))}), target)
    assert target.read_text() == "old"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.nc"]
