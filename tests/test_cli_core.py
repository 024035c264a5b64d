"""The core CLI commands on canonical cubes: fit, bcv, bcv-job, bcv-collect."""

import numpy as np
import pytest
import xarray as xr

from phantoms import matched_cosines, partition_phantom
from xasnmf.cli import main
from xasnmf.cube import make_cube
from xasnmf.provenance import write_netcdf


@pytest.fixture(scope="module")
def masked_cube(tmp_path_factory):
    """A non-square 30 x 44 partition phantom with a reference and a mask (catches ravel-order mistakes)."""
    ny, nx, n, k = 30, 44, 40, 3
    X, W, H, lab = partition_phantom(ny=ny, nx=nx, n=n, k=k, noise=0.005, seed=4)
    ref = np.linspace(0, 1, n)
    mask = np.ones((ny, nx), dtype=bool)
    mask[:5, :7] = False
    mask[20:, 40:] = False
    cube = make_cube((X + ref).reshape(ny, nx, n), np.linspace(7700, 7740, n), reference=ref, mask=mask)
    path = tmp_path_factory.mktemp("cube") / "cube.nc"
    write_netcdf(cube, path)
    return path, W, mask


def test_fit_writes_maps_nan_exactly_at_masked_pixels(masked_cube, tmp_path):
    path, W, mask = masked_cube
    out = tmp_path / "fit.nc"
    assert main(["fit", str(path), "--rank", "3", "--restarts", "2", "-o", str(out)]) == 0
    fit = xr.load_dataset(out)
    assert fit["W"].dims == ("component", "y", "x") and fit["W"].shape == (3, 30, 44)
    for c in range(3):
        np.testing.assert_array_equal(np.isnan(fit["W"].values[c]), ~mask)
    Wfit = fit["W"].values.reshape(3, -1).T[mask.ravel()]
    assert matched_cosines(W[mask.ravel()], Wfit).min() > 0.95
    for key in ("rank", "seed", "objective", "n_iter", "converged", "stop_reason", "xasnmf_version", "git_commit",
                "blas_threads"):
        assert key in fit.attrs, key
    assert fit["spectrum"].shape == (3, 40) and fit["restart_objective"].shape == (2,)
    assert fit.attrs["objective"] == pytest.approx(float(fit["restart_objective"].min()))


def test_bcv_jobs_collected_equal_whole_bcv(masked_cube, tmp_path):
    path = masked_cube[0]
    opts = ["--folds", "4", "--method", "svd", "--nuisance", "offset+scale"]
    whole = tmp_path / "bcv.nc"
    assert main(["bcv", str(path), "--ranks", "2-4", "--seeds", "1", *opts, "-o", str(whole)]) == 0
    jobs = []
    for r in (2, 3, 4):
        for f in range(4):
            j = tmp_path / f"job-{r}-{f}.nc"
            assert main(["bcv-job", str(path), "--rank", str(r), "--seed", "0", "--fold", str(f), *opts,
                         "-o", str(j)]) == 0
            jobs.append(str(j))
    col = tmp_path / "collected.nc"
    assert main(["bcv-collect", *jobs, "-o", str(col)]) == 0
    a, b = xr.load_dataset(whole), xr.load_dataset(col)
    np.testing.assert_allclose(a["error"].values, b["error"].values, rtol=1e-12)
    np.testing.assert_allclose(a["mean_error"].values, b["mean_error"].values, rtol=1e-12)
    assert a.attrs["selected_rank"] == b.attrs["selected_rank"] == 3
    assert list(a["rank"].values) == [2, 3, 4]


def test_bcv_collect_reports_a_missing_job(masked_cube, tmp_path):
    path = masked_cube[0]
    files = []
    for f in (0, 1):
        j = tmp_path / f"j{f}.nc"
        main(["bcv-job", str(path), "--rank", "2", "--seed", "0", "--fold", str(f), "--folds", "4", "-o", str(j)])
        files.append(str(j))
    k = tmp_path / "k.nc"
    main(["bcv-job", str(path), "--rank", "3", "--seed", "0", "--fold", "0", "--folds", "4", "-o", str(k)])
    files.append(str(k))
    assert main(["bcv-collect", *files, "-o", str(tmp_path / "c.nc")]) == 2
    assert not (tmp_path / "c.nc").exists()


def test_cli_errors_are_one_paragraph_not_tracebacks(masked_cube, tmp_path, capsys):
    path = masked_cube[0]
    assert main(["fit", str(path), "--rank", "0", "-o", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert "rank must be between 1 and" in err and "Traceback" not in err
    assert main(["fit", str(tmp_path / "missing.nc"), "--rank", "2", "-o", str(tmp_path / "x.nc")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["fit", str(path), "--rank", "2", "-o", str(path)]) == 2
    assert "never overwrites its input" in " ".join(capsys.readouterr().err.split())
    assert xr.load_dataset(path)["absorbance"].shape == (30, 44, 40)  # input untouched


def test_fit_projects_out_per_pixel_offset_and_scale():
    """Endpoint normalization of noisy spectra leaves a random offset and scale per pixel; the
    offset+scale nuisance projection keeps the domains recoverable (X P = W (P H)^T)."""
    from xasnmf.api import fit_cube

    ny, nx, n, k = 40, 50, 40, 4
    X, W, H, lab = partition_phantom(ny=ny, nx=nx, n=n, k=k, noise=0.002, seed=9)
    rng = np.random.default_rng(1)
    ref = np.linspace(0, 1, n) ** 2
    scale = 1 + rng.normal(0, 0.05, (ny * nx, 1))
    offset = rng.normal(0, 0.05, (ny * nx, 1))
    X0 = (X + ref) * scale + offset
    cube = make_cube(X0.reshape(ny, nx, n), np.linspace(7700, 7740, n), reference=ref)
    good = fit_cube(cube, rank=k, n_restarts=2, nuisance="offset+scale")
    bad = fit_cube(cube, rank=k, n_restarts=2, nuisance="none")
    cos_good = matched_cosines(W, good["W"].values.reshape(k, -1).T)
    cos_bad = matched_cosines(W, bad["W"].values.reshape(k, -1).T)
    assert cos_good.min() > 0.95, cos_good
    assert cos_bad.min() < cos_good.min()
    assert good.attrs["nuisance"] == "offset+scale" and bad.attrs["nuisance"] == "none"


def test_table_commands_never_overwrite_an_input_through_a_sibling_file(masked_cube, tmp_path, capsys):
    path = masked_cube[0]
    fit, km = tmp_path / "fit.nc", tmp_path / "km.nc"
    assert main(["fit", str(path), "--rank", "3", "--restarts", "1", "-o", str(fit)]) == 0
    assert main(["kmeans", str(path), "--k", "3", "-o", str(km)]) == 0
    before = km.read_bytes()
    # compare writes km.csv, km.md, km.tex and km.nc: km.nc is its own input
    assert main(["compare", str(fit), str(km), "-o", str(tmp_path / "km.csv")]) == 2
    assert "never overwrites" in " ".join(capsys.readouterr().err.split())
    assert km.read_bytes() == before and not (tmp_path / "km.csv").exists()


def test_output_folder_and_bad_counts_are_clear_errors(masked_cube, tmp_path, capsys):
    path = masked_cube[0]
    assert main(["fit", str(path), "--rank", "2", "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["bcv", str(path), "--ranks", "2-3", "--seeds", "0", "-o", str(tmp_path / "b.nc")])
    assert e.value.code == 2 and "--seeds must be >= 1" in capsys.readouterr().err
    assert main(["bcv", str(path), "--ranks", "4-2", "-o", str(tmp_path / "b.nc")]) == 2
    assert "reversed" in capsys.readouterr().err


def test_bcv_collect_refuses_jobs_that_miss_folds(masked_cube, tmp_path, capsys):
    path = masked_cube[0]
    files = []
    for r in (2, 3):
        j = tmp_path / f"r{r}.nc"
        main(["bcv-job", str(path), "--rank", str(r), "--seed", "0", "--fold", "0", "--folds", "4", "-o", str(j)])
        files.append(str(j))
    assert main(["bcv-collect", *files, "-o", str(tmp_path / "c.nc")]) == 2
    assert "missing: [1, 2, 3]" in capsys.readouterr().err


def test_fit_that_diverges_is_an_error_and_writes_nothing(tmp_path, capsys):
    # |X| ~ 1e30 cannot be fitted in float32 (X H overflows): exit 2 with the fix, no NaN file left behind
    X, _, _, _ = partition_phantom(ny=20, nx=20, n=12, k=3, noise=0.01, seed=1)
    cube = make_cube(1e30 * X.reshape(20, 20, 12), np.linspace(7700, 7740, 12))
    path, out = tmp_path / "big.nc", tmp_path / "fit.nc"
    write_netcdf(cube, path)
    with pytest.warns(Warning):
        assert main(["fit", str(path), "--rank", "2", "--restarts", "1", "--init", "random", "-o", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())  # the message is wrapped to the terminal
    assert "diverged in every restart" in err and "--dtype float64" in err
    assert not out.exists()
