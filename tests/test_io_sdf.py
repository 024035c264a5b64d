"""ALS/CLS SDF reader: header grammar, orientation, regions, and the shared Fe L-edge stack."""

from __future__ import annotations

import re

import numpy as np
import pytest

from io_helpers import small_stack, write_i0, write_sdf
from xasnmf.cli import main
from xasnmf.errors import InputError
from xasnmf.io import import_stack
from xasnmf.io.sdf import parse_header_text, read_header


def test_header_grammar_nested_blocks_lists_strings_and_wrapping():
    text = ('A = { B = "x; {y} (z)"; N = (3, 1.5,\n  2.5,\n 3.5); Inner = { Flag = true; K = 7 }; };\n'
            'L = (2, {P = 1;}, {P = 2;});  Word = Energy ;\nLast = -4.25')
    d = parse_header_text(text)
    assert d["A"]["B"] == "x; {y} (z)"
    assert d["A"]["N"] == [3, 1.5, 2.5, 3.5]
    assert d["A"]["Inner"] == {"Flag": True, "K": 7}
    assert d["L"] == [2, {"P": 1}, {"P": 2}]
    assert d["Word"] == "Energy"
    assert d["Last"] == -4.25


@pytest.mark.parametrize("text", ['A = { B = 1;', 'A = (2, 1, 2', 'A = "open', 'A = { = 3; };'])
def test_header_syntax_errors_are_input_errors(text):
    with pytest.raises(InputError, match="header syntax error|unterminated"):
        parse_header_text(text, source="bad.hdr")


def test_counted_list_mismatch_is_reported(tmp_path):
    I, e, i0 = small_stack(ne=4)
    hdr = write_sdf(tmp_path, "s", [I], e)
    txt = re.sub(r"StackAxis(.*?)Points = \(4,", lambda m: "StackAxis" + m.group(1) + "Points = (5,",
                 hdr.read_text(), flags=re.S)
    hdr.write_text(txt)
    with pytest.raises(InputError, match="declares 5 items but lists 4"):
        read_header(hdr)


def test_single_region_od_coordinates_and_energies(tmp_path):
    I, e, i0 = small_stack(ny=5, nx=7, ne=9)
    hdr = write_sdf(tmp_path, "stk", [I], e)
    i0f = write_i0(tmp_path / "i0.xsp", e, i0)
    ds = import_stack(hdr, i0=str(i0f))
    assert ds["absorbance"].shape == (5, 7, 9)
    np.testing.assert_allclose(ds["energy"].values, np.round(e, 3))
    np.testing.assert_allclose(ds["y"].values, 10.0 + 0.1 * np.arange(5), atol=1e-9)
    np.testing.assert_allclose(ds["x"].values, -5.0 + 0.1 * np.arange(7), atol=1e-9)
    assert ds["y"].attrs["units"] == "um" and ds["energy"].attrs["units"] == "eV"
    tab = np.loadtxt(i0f)
    for j in (0, 4, 8):
        img = np.loadtxt(tmp_path / f"stk_a{j:03d}.xim")
        np.testing.assert_allclose(ds["absorbance"].values[:, :, j], -np.log(img / tab[j, 1]), rtol=2e-6)
    assert int(ds["mask"].sum()) == 35


def test_decreasing_qaxis_rows_are_flipped_so_y_increases(tmp_path):
    I, e, i0 = small_stack(ny=4, nx=3, ne=3)
    ydesc = np.array([3.0, 2.0, 1.0, 0.0])
    hdr = write_sdf(tmp_path, "flip", [I], e, ys=[ydesc])
    ds = import_stack(hdr, i0=str(write_i0(tmp_path / "i0.txt", e, i0)))
    np.testing.assert_allclose(ds["y"].values, [0.0, 1.0, 2.0, 3.0])
    img = np.loadtxt(tmp_path / "flip_a001.xim")
    # file line 0 is at y = 3.0, which is the last cube row
    np.testing.assert_allclose(ds["absorbance"].values[3, :, 1], -np.log(img[0] / i0[1]), rtol=2e-6)
    np.testing.assert_allclose(ds["absorbance"].values[0, :, 1], -np.log(img[3] / i0[1]), rtol=2e-6)


def test_multi_region_gives_one_cube_per_region(tmp_path):
    I0_, e, i0 = small_stack(ny=3, nx=5, ne=4, seed=1)
    I1_, _, _ = small_stack(ny=6, nx=2, ne=4, seed=2)
    hdr = write_sdf(tmp_path, "mr", [I0_, I1_], e)
    i0f = write_i0(tmp_path / "i0.txt", e, i0)
    both = import_stack(hdr, i0=str(i0f))
    assert isinstance(both, list) and [d["absorbance"].shape for d in both] == [(3, 5, 4), (6, 2, 4)]
    one = import_stack(hdr, i0=str(i0f), region=1)
    img = np.loadtxt(tmp_path / "mr_a002_r1.xim")
    np.testing.assert_allclose(one["absorbance"].values[:, :, 2], -np.log(img / i0[2]), rtol=2e-6)
    with pytest.raises(InputError, match="region 2 requested but the header has 2"):
        import_stack(hdr, i0=str(i0f), region=2)
    # CLI writes NAME_r0.nc, NAME_r1.nc
    rc = main(["import", str(hdr), "--i0", str(i0f), "-o", str(tmp_path / "out.nc")])
    assert rc == 0
    assert (tmp_path / "out_r0.nc").exists() and (tmp_path / "out_r1.nc").exists()
    assert not (tmp_path / "out.nc").exists()


def test_multi_region_missing_file_names_it(tmp_path):
    I0_, e, i0 = small_stack(ny=3, nx=5, ne=4, seed=1)
    hdr = write_sdf(tmp_path, "mr", [I0_, I0_], e)
    (tmp_path / "mr_a003_r1.xim").unlink()
    with pytest.raises(InputError, match="mr_a003_r1.xim"):
        import_stack(hdr, i0=str(write_i0(tmp_path / "i0.txt", e, i0)), region=1)


# ----------------------------------------------------------------------------- shared STXM stack
def _header_energies(text: str) -> np.ndarray:
    """StackAxis points read independently of xasnmf's parser (plain string slicing)."""
    block = text[text.index("StackAxis"):]
    inner = block[block.index("Points = (") + len("Points = ("):]
    inner = inner[:inner.index(")")]
    vals = [float(v) for v in inner.replace("\n", " ").split(",")]
    assert int(vals[0]) == len(vals) - 1
    return np.array(vals[1:])


@pytest.fixture(scope="module")
def stxm_cube(stxm_dir, tmp_path_factory):
    import xarray as xr

    out = tmp_path_factory.mktemp("stxm") / "cube.nc"
    rc = main(["import", str(stxm_dir / "71214078.hdr"), "--i0", str(stxm_dir / "i0.xsp"), "-o", str(out)])
    assert rc == 0
    return xr.load_dataset(out)


def test_stxm_shape_energies_and_coordinates(stxm_cube, stxm_dir):
    ds = stxm_cube
    assert ds["absorbance"].shape == (125, 125, 123)
    e = _header_energies((stxm_dir / "71214078.hdr").read_text())
    assert e.size == 123
    np.testing.assert_array_equal(ds["energy"].values, e)
    steps = np.round(np.diff(ds["energy"].values), 3)
    assert {0.375, 0.202, 0.357} <= set(steps.tolist())  # uneven steps kept
    assert ds["x"].attrs["units"] == "um"
    assert np.all(np.diff(ds["y"].values) > 0)
    assert ds["y"].values[0] == pytest.approx(-638.153)


@pytest.mark.parametrize("k", [0, 41, 122])
def test_stxm_od_equals_minus_log_i_over_i0(stxm_cube, stxm_dir, k):
    img = np.loadtxt(stxm_dir / f"71214078_a{k:03d}.xim")
    i0 = np.loadtxt(stxm_dir / "i0.xsp")
    assert i0[k, 0] == pytest.approx(stxm_cube["energy"].values[k])
    for (r, c) in [(0, 0), (17, 99), (124, 3), (60, 124)]:
        expected = -np.log(img[r, c] / i0[k, 1])
        assert stxm_cube["absorbance"].values[r, c, k] == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_stxm_mean_spectrum_peaks_at_fe_l3(stxm_cube):
    mean = np.nanmean(stxm_cube["absorbance"].values, axis=(0, 1))
    peak = stxm_cube["energy"].values[int(np.argmax(mean))]
    assert 707.5 <= peak <= 710.5


def test_stxm_info_prints_shape_steps_and_qc(stxm_cube, stxm_dir, tmp_path, capsys):
    from xasnmf.provenance import write_netcdf

    p = write_netcdf(stxm_cube, tmp_path / "c.nc")
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    assert "125 x 125 pixels (y, x) x 123 energies" in out
    assert "700.000..730.353 eV" in out and "0.202 eV" in out
    assert "pixels used: 15625 of 15625" in out
    assert main(["info", str(stxm_dir / "71214078.hdr")]) == 0
    assert "regions: 1" in capsys.readouterr().out
