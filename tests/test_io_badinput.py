"""One test per bad-input case of issue #3, section 4: a clear InputError naming the problem, or a QC record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from io_helpers import small_stack, write_i0, write_sdf
from xasnmf import qc
from xasnmf.cli import main
from xasnmf.cube import make_cube
from xasnmf.errors import DataQualityWarning, InputError
from xasnmf.io import import_stack
from xasnmf.preprocess import preprocess


@pytest.fixture()
def sdf(tmp_path):
    I, e, i0 = small_stack(ny=4, nx=6, ne=7)
    hdr = write_sdf(tmp_path, "bad", [I], e)
    i0f = write_i0(tmp_path / "i0.xsp", e, i0)
    return hdr, i0f, I, e, i0


def _energies(path, e):
    path.write_text("\n".join(f"{v:.4f}" for v in e) + "\n")
    return str(path)


def test_nan_and_inf_values_mask_the_pixel_with_a_reason(tmp_path):
    a = np.random.default_rng(0).uniform(0.1, 1.0, size=(3, 4, 5))
    a[1, 2, 3] = np.nan
    a[2, 0, 0] = np.inf
    np.save(tmp_path / "a.npy", a)
    with pytest.warns(DataQualityWarning, match="masked 2 pixel"):
        ds = import_stack(tmp_path / "a.npy", energies=np.arange(5.0))
    r = ds["qc_reason"].values
    assert r[1, 2] == qc.NONFINITE and r[2, 0] == qc.NONFINITE and (r != 0).sum() == 2
    assert ds["mask"].values[1, 2] == 0 and int(ds["qc_n_bad"].sum()) == 2
    assert json.loads(ds.attrs["qc_counts"])["nonfinite_value"] == 2


def test_nonpositive_intensity_is_masked_not_replaced(tmp_path, sdf):
    hdr, i0f, I, e, i0 = sdf
    img = np.loadtxt(tmp_path / "bad_a002.xim")
    img[1, 4] = 0.0
    img[3, 0] = -5.0
    np.savetxt(tmp_path / "bad_a002.xim", img, fmt="%.6f")
    with pytest.warns(DataQualityWarning, match="nonpositive_intensity 2"):
        ds = import_stack(hdr, i0=str(i0f))
    od = ds["absorbance"].values
    assert np.isnan(od[1, 4, 2]) and np.isnan(od[3, 0, 2])  # no made-up value
    assert np.isfinite(od[1, 4, 1])  # the pixel's other energies are kept as measured
    assert ds["qc_reason"].values[1, 4] == qc.NONPOSITIVE_INTENSITY and ds["mask"].values[3, 0] == 0
    assert int(ds["mask"].sum()) == 24 - 2


def test_all_zero_energy_frame_is_dropped_and_recorded(tmp_path, sdf):
    hdr, i0f, I, e, i0 = sdf
    np.savetxt(tmp_path / "bad_a004.xim", np.zeros((4, 6)), fmt="%.1f")
    with pytest.warns(DataQualityWarning, match="dropped 1 all-zero .*energy frame"):
        ds = import_stack(hdr, i0=str(i0f))
    assert ds.sizes["energy"] == 6
    assert np.round(e[4], 3) not in np.round(ds["energy"].values, 3)
    dropped = json.loads(ds.attrs["qc_dropped_energies"])
    assert dropped == [{"energy": pytest.approx(round(e[4], 3)), "frame": 4, "reason": "all_zero_frame"}]
    assert int(ds["mask"].sum()) == 24  # no pixel lost for it


def test_beam_blocked_pixel(tmp_path, sdf):
    hdr, i0f, I, e, i0 = sdf
    for k in range(7):
        p = tmp_path / f"bad_a{k:03d}.xim"
        img = np.loadtxt(p)
        img[2, 5] = 0.0
        np.savetxt(p, img, fmt="%.6f")
    with pytest.warns(DataQualityWarning, match="beam_blocked_all_zero 1"):
        ds = import_stack(hdr, i0=str(i0f))
    assert ds["qc_reason"].values[2, 5] == qc.BEAM_BLOCKED and int(ds["mask"].sum()) == 23


def test_zero_edge_step_everywhere_is_a_clear_error():
    e = np.linspace(700, 730, 20)
    a = np.full((3, 5, 20), 0.4)
    with pytest.raises(InputError) as ei:
        preprocess(make_cube(a, e), norm="edge", source="flat.nc")
    msg = str(ei.value)
    assert msg.startswith("flat.nc:") and "median edge step is 0" in msg and "distribution" in msg


def test_zero_pixels_passing_reports_threshold_and_distribution():
    e = np.linspace(700, 730, 20)
    rng = np.random.default_rng(2)
    a = 0.1 + rng.normal(0, 0.01, (3, 5, 20)) + np.linspace(0, 0.5, 20)
    with pytest.raises(InputError, match=r"0 pixels pass the edge step threshold .* distribution: min .* median"):
        preprocess(make_cube(a, e), norm="edge", min_step_fraction=50.0)


def test_duplicate_energies_error_lists_them_unless_dropped(tmp_path):
    a = np.random.default_rng(0).uniform(size=(2, 3, 5))
    np.save(tmp_path / "a.npy", a)
    e = [700.0, 701.0, 701.0, 702.0, 703.0]
    with pytest.raises(InputError, match=r"duplicate energies: 701.0000 eV \(frames \[1, 2\]\).*--drop-duplicate"):
        import_stack(tmp_path / "a.npy", energies=e)
    ds = import_stack(tmp_path / "a.npy", energies=e, drop_duplicate_energies=True)
    np.testing.assert_array_equal(ds["energy"].values, [700.0, 701.0, 702.0, 703.0])
    np.testing.assert_allclose(ds["absorbance"].values, a[:, :, [0, 1, 3, 4]].astype(np.float32))
    assert json.loads(ds.attrs["qc_dropped_energies"])[0]["frame"] == 2


def test_non_monotonic_energies_error_unless_sorted(tmp_path):
    a = np.random.default_rng(0).uniform(size=(2, 3, 4))
    np.save(tmp_path / "a.npy", a)
    e = [700.0, 702.0, 701.0, 703.0]
    with pytest.raises(InputError, match=r"not increasing: they decrease at frame 2 \(702.0000 -> 701.0000 eV\)"):
        import_stack(tmp_path / "a.npy", energies=e)
    ds = import_stack(tmp_path / "a.npy", energies=e, sort_energies=True)
    np.testing.assert_allclose(ds["absorbance"].values, a[:, :, [0, 2, 1, 3]].astype(np.float32))


def test_i0_not_covering_names_missing_range(tmp_path, sdf):
    hdr, i0f, I, e, i0 = sdf
    short = write_i0(tmp_path / "short.xsp", e[2:], i0[2:])
    with pytest.raises(InputError) as ei:
        import_stack(hdr, i0=str(short))
    msg = str(ei.value)
    assert str(short) in msg and f"missing {e[0]:.3f}-" in msg and "(2 energies below)" in msg


def test_energy_list_length_mismatch(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "s.tif", np.ones((4, 3, 3), np.float32), photometric="minisblack")
    with pytest.raises(InputError, match="energy list has 3 values but the stack has 4 frames"):
        import_stack(tmp_path / "s.tif", energies=_energies(tmp_path / "e.txt", [1.0, 2.0, 3.0]))


def test_xim_with_wrong_row_count(tmp_path, sdf):
    hdr, i0f, *_ = sdf
    p = tmp_path / "bad_a003.xim"
    p.write_text("\n".join(p.read_text().splitlines()[:3]) + "\n")
    with pytest.raises(InputError, match=r"bad_a003.xim: has 3 rows, expected 4"):
        import_stack(hdr, i0=str(i0f))


def test_xim_with_wrong_column_count(tmp_path, sdf):
    hdr, i0f, *_ = sdf
    p = tmp_path / "bad_a001.xim"
    lines = p.read_text().splitlines()
    lines[2] = lines[2] + "\t5.0"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"bad_a001.xim: row 2 has 7 values, expected 6"):
        import_stack(hdr, i0=str(i0f))


def test_truncated_xim(tmp_path, sdf):
    hdr, i0f, *_ = sdf
    p = tmp_path / "bad_a005.xim"
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"bad_a005.xim: .*truncated"):
        import_stack(hdr, i0=str(i0f))


def test_missing_xim_is_named(tmp_path, sdf):
    hdr, i0f, *_ = sdf
    (tmp_path / "bad_a006.xim").unlink()
    with pytest.raises(InputError, match=r"1 of 7 image files are missing: bad_a006.xim"):
        import_stack(hdr, i0=str(i0f))


def test_non_numeric_xim(tmp_path, sdf):
    hdr, i0f, *_ = sdf
    p = tmp_path / "bad_a000.xim"
    p.write_text(p.read_text().replace("\t", "\tx", 1))
    with pytest.raises(InputError, match=r"bad_a000.xim: contains a non-number"):
        import_stack(hdr, i0=str(i0f))


def test_truncated_header(tmp_path, sdf):
    hdr, i0f, *_ = sdf
    text = hdr.read_text()
    hdr.write_text(text[: text.index("StackAxis") + 40])
    with pytest.raises(InputError, match=r"bad.hdr: header syntax error"):
        import_stack(hdr, i0=str(i0f))


@pytest.mark.parametrize("suffix", [".nc", ".tif", ".npy"])
def test_unreadable_or_truncated_files(tmp_path, suffix):
    p = tmp_path / f"junk{suffix}"
    p.write_bytes(b"\x89HDF\r\n\x1a\n not really a file" if suffix == ".nc" else b"II*\x00garbage")
    with pytest.raises(InputError, match=r"junk.* cannot be read as"):
        import_stack(p, energies=[1.0, 2.0])


def test_rgb_tiff_is_refused(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "rgb.tif", np.ones((2, 5, 6, 3), np.uint8), photometric="rgb")
    with pytest.raises(InputError, match=r"rgb.tif: holds colour/multi-sample images"):
        import_stack(tmp_path / "rgb.tif", energies=[1.0, 2.0])


def test_mask_of_wrong_shape(tmp_path):
    e = np.linspace(700, 730, 10)
    a = np.random.default_rng(0).uniform(size=(3, 4, 10))
    (tmp_path / "m.msk").write_text("OOOO\nOOOO\n")
    with pytest.raises(InputError, match=r"m.msk: mask has shape \(2, 4\) \(y, x\) but the cube's images are \(3, 4\)"):
        preprocess(make_cube(a, e), norm="none", mask=str(tmp_path / "m.msk"))


def test_bad_mask_character(tmp_path):
    (tmp_path / "m.msk").write_text("OOXO\n")
    from xasnmf.io.masks import read_mask

    with pytest.raises(InputError, match=r"line 1, column 3 has character 'X'"):
        read_mask(tmp_path / "m.msk")


def test_sdf_without_i0_explains(sdf):
    hdr, *_ = sdf
    with pytest.raises(InputError, match=r"transmitted intensities .* needs I0"):
        import_stack(hdr)


def test_bad_windows_and_roi_are_named():
    e = np.linspace(700, 730, 10)
    ds = make_cube(np.random.default_rng(0).uniform(size=(3, 4, 10)), e)
    with pytest.raises(InputError, match=r"--pre: window 690:695 eV holds 0 energies"):
        preprocess(ds, norm="preedge-peak", pre="690:695")
    with pytest.raises(InputError, match=r"--roi: 0:5,0:2 reaches outside the image of 3 x 4"):
        preprocess(ds, roi="0:5,0:2", norm="none")
    with pytest.raises(InputError, match=r"--norm preedge-area needs a pre-edge window"):
        preprocess(ds, norm="preedge-area")


def test_cli_error_is_one_paragraph_without_traceback(tmp_path, sdf, capsys):
    hdr, i0f, *_ = sdf
    (tmp_path / "bad_a006.xim").unlink()
    rc = main(["import", str(hdr), "--i0", str(i0f), "-o", str(tmp_path / "c.nc")])
    err = capsys.readouterr().err
    assert rc == 2 and "bad_a006.xim" in err and "Fix:" in err and "Traceback" not in err
    assert not (tmp_path / "c.nc").exists()


def test_nan_inside_a_cube_without_qc_is_masked_by_preprocess():
    e = np.linspace(700, 730, 12)
    a = np.random.default_rng(1).uniform(0.1, 1.0, size=(3, 4, 12))
    a[2, 1, 5] = np.nan  # mid-spectrum: the edge step itself is finite
    out = preprocess(make_cube(a, e), norm="none")
    assert out["qc_reason"].values[2, 1] == qc.NONFINITE
    assert int(out["mask"].sum()) == 11
