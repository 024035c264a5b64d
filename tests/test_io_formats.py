"""TIFF, NetCDF/HDF5 foreign layouts, .npy/.npz, I0 regions, masks, and NetCDF round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from xarray.testing import assert_identical

from io_helpers import small_stack, write_i0, write_sdf
from xasnmf.cli import main
from xasnmf.cube import open_cube
from xasnmf.io import import_stack
from xasnmf.io.masks import read_mask
from xasnmf.preprocess import preprocess
from xasnmf.provenance import write_netcdf


def _energy_file(path, e):
    path.write_text("# energies (eV)\n" + "\n".join(f"{v:.4f}" for v in e) + "\n")
    return path


def test_multipage_tiff_with_energy_list(tmp_path):
    import tifffile

    rng = np.random.default_rng(3)
    frames = rng.uniform(0.0, 2.0, size=(6, 4, 9)).astype(np.float32)  # (energy, y, x), non-square
    tifffile.imwrite(tmp_path / "stack.tif", frames, photometric="minisblack")
    e = 7000.0 + np.array([0, 1, 3, 3.5, 6, 10.0])
    ds = import_stack(tmp_path / "stack.tif", energies=_energy_file(tmp_path / "e.txt", e))
    assert ds["absorbance"].shape == (4, 9, 6)
    np.testing.assert_array_equal(ds["absorbance"].values, np.moveaxis(frames, 0, -1))
    np.testing.assert_allclose(ds["energy"].values, e)
    assert ds["x"].attrs["units"] == "pixel"


def test_tiff_folder_in_natural_order(tmp_path):
    import tifffile

    d = tmp_path / "frames"
    d.mkdir()
    for k in range(12):  # img_2 must come before img_10
        tifffile.imwrite(d / f"img_{k}.tif", np.full((3, 5), float(k + 1), dtype=np.float32))
    e = np.linspace(280.0, 291.0, 12)
    ds = import_stack(d, energies=_energy_file(tmp_path / "e.txt", e))
    np.testing.assert_array_equal(ds["absorbance"].values[1, 2, :], np.arange(1, 13, dtype=np.float32))


def test_tiff_intensities_with_i0_region(tmp_path):
    import tifffile

    I, e, _ = small_stack(ny=6, nx=8, ne=5)
    tifffile.imwrite(tmp_path / "I.tif", np.moveaxis(I, -1, 0).astype(np.float64), photometric="minisblack")
    ds = import_stack(tmp_path / "I.tif", energies=_energy_file(tmp_path / "e.txt", e), i0="region:0:2,5:8")
    i0 = I[0:2, 5:8, :].mean(axis=(0, 1))
    np.testing.assert_allclose(ds["absorbance"].values, -np.log(I / i0), rtol=2e-6, atol=1e-6)


def test_netcdf_foreign_layout_with_var_and_dims(tmp_path):
    rng = np.random.default_rng(4)
    arr = rng.normal(size=(5, 3, 4))  # stored (energy, row, col)
    e = np.array([1.0, 2.0, 2.5, 4.0, 8.0]) + 530.0
    ds0 = xr.Dataset({"stack": (("E", "row", "col"), arr)}, coords={"E": e})
    ds0.to_netcdf(tmp_path / "foreign.nc")
    ds = import_stack(tmp_path / "foreign.nc", var="stack", dims="energy,y,x")
    np.testing.assert_allclose(ds["absorbance"].values, np.transpose(arr, (1, 2, 0)).astype(np.float32))
    np.testing.assert_allclose(ds["energy"].values, e)
    rc = main(["import", str(tmp_path / "foreign.nc"), "--var", "stack", "--dims", "energy,y,x",
               "-o", str(tmp_path / "c.nc")])
    assert rc == 0 and open_cube(tmp_path / "c.nc")["absorbance"].shape == (3, 4, 5)


def test_npy_and_npz(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.uniform(size=(4, 2, 3))  # (x, energy, y) on purpose
    np.save(tmp_path / "a.npy", a)
    e = np.array([10.0, 11.0])
    ds = import_stack(tmp_path / "a.npy", dims="x,energy,y", energies=e)
    np.testing.assert_allclose(ds["absorbance"].values, np.transpose(a, (2, 0, 1)).astype(np.float32))
    b = rng.uniform(size=(3, 5, 4))
    np.savez(tmp_path / "b.npz", cube=b, energy=np.array([1.0, 2.0, 4.0, 7.0]))
    ds = import_stack(tmp_path / "b.npz")
    np.testing.assert_allclose(ds["energy"].values, [1.0, 2.0, 4.0, 7.0])
    np.testing.assert_allclose(ds["absorbance"].values, b.astype(np.float32))


def test_masks_msk_npy_and_netcdf(tmp_path):
    text = "O  O\n\n OO\n"  # blank line = row with nothing selected; short lines padded
    (tmp_path / "m.msk").write_text(text)
    m = read_mask(tmp_path / "m.msk", shape=(3, 4))
    np.testing.assert_array_equal(m, [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 1, 0]])
    np.save(tmp_path / "m.npy", m.astype(np.int8))
    np.testing.assert_array_equal(read_mask(tmp_path / "m.npy", shape=(3, 4)), m)
    xr.Dataset({"mask": (("y", "x"), m.astype(np.int8))}).to_netcdf(tmp_path / "m.nc")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.nc", shape=(3, 4)), m)


def test_netcdf_round_trip_identical(tmp_path):
    I, e, i0 = small_stack(ny=4, nx=6, ne=8)
    I[1, 2, 3] = -1.0  # a masked pixel with a QC reason
    hdr = write_sdf(tmp_path, "rt", [I], e)
    with pytest.warns(Warning):
        ds = import_stack(hdr, i0=str(write_i0(tmp_path / "i0.txt", e, i0)))
    back = open_cube(write_netcdf(ds, tmp_path / "cube.nc"))
    assert_identical(ds, back)
    assert int(back["qc_reason"].values[1, 2]) == 2 and int(back["mask"].values[1, 2]) == 0
    pre = preprocess(back, norm="preedge-peak", pre=(e[0], e[2]), reference="mean")
    pre_back = open_cube(write_netcdf(pre, tmp_path / "pre.nc"))
    assert_identical(pre, pre_back)
    assert np.isnan(pre_back["absorbance"].values[1, 2]).all()


def test_cli_writes_qc_json_and_refuses_overwriting_input(tmp_path, capsys):
    I, e, i0 = small_stack(ny=3, nx=4, ne=5)
    hdr = write_sdf(tmp_path, "q", [I], e)
    i0f = write_i0(tmp_path / "i0.txt", e, i0)
    assert main(["import", str(hdr), "--i0", str(i0f), "-o", str(tmp_path / "c.nc")]) == 0
    rec = json.loads((tmp_path / "c.qc.json").read_text())
    assert rec["shape"] == [3, 4, 5] and rec["n_pixels_used"] == 12
    before = (tmp_path / "c.nc").read_bytes()
    assert main(["preprocess", str(tmp_path / "c.nc"), "-o", str(tmp_path / "c.nc")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "would overwrite the input file" in err and "Traceback" not in err
    assert (tmp_path / "c.nc").read_bytes() == before


def test_hdf5_suffix_read_through_netcdf4(tmp_path):
    arr = np.random.default_rng(6).uniform(size=(2, 3, 4))  # (y, x, energy) with plain dim names
    ds0 = xr.Dataset({"od": (("y", "x", "energy"), arr)}, coords={"energy": [1.0, 2.0, 3.0, 5.0]})
    ds0.to_netcdf(tmp_path / "c.h5", engine="netcdf4")
    ds = import_stack(tmp_path / "c.h5", format="hdf5")
    np.testing.assert_allclose(ds["absorbance"].values, arr.astype(np.float32))
    np.testing.assert_array_equal(ds["energy"].values, [1.0, 2.0, 3.0, 5.0])
