"""k-means domains: planted partition recovered, seeded determinism, dataset layout, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xasnmf.cli import main
from xasnmf.cube import make_cube
from xasnmf.errors import InputError
from xasnmf.kmeans import kmeans_dataset, kmeans_domains
from xasnmf.provenance import write_netcdf

E = np.linspace(700, 720, 50)


def planted(seed=0):
    """A 10 x 10 cube of three spectral shapes (50, 30, 20 pixels), 4 pixels masked."""
    rng = np.random.default_rng(seed)
    shapes = np.stack([np.exp(-0.5 * ((E - c) / 1.0) ** 2) + 0.2 for c in (706.0, 710.0, 714.0)])
    truth = np.array([0] * 50 + [1] * 30 + [2] * 20)
    rng.shuffle(truth)
    truth = truth.reshape(10, 10)
    cube = shapes[truth] + rng.normal(0, 0.03, (10, 10, E.size))
    mask = np.ones((10, 10), dtype=int)
    mask[0, :4] = 0
    return cube, truth, mask, shapes


def test_recovers_planted_partition_and_orders_by_size():
    cube, truth, mask, shapes = planted()
    X0 = cube.reshape(100, -1)[mask.ravel() == 1]
    t = truth.ravel()[mask.ravel() == 1]
    res = kmeans_domains(X0, 3, seed=1, n_init=5)
    # ordering by decreasing size makes the labels equal to the planted ones (sizes are all different)
    sizes_true = np.bincount(t)
    order = np.argsort(-sizes_true)
    relabel = np.empty(3, int)
    relabel[order] = np.arange(3)
    np.testing.assert_array_equal(res.labels, relabel[t])
    np.testing.assert_array_equal(res.sizes, np.sort(sizes_true)[::-1])
    for j in range(3):
        np.testing.assert_allclose(res.centroids[j], X0[res.labels == j].mean(axis=0), atol=1e-12)
        assert np.abs(res.centroids[j] - shapes[order[j]]).max() < 0.05
    assert res.inertia == pytest.approx(sum(((X0[res.labels == j] - res.centroids[j]) ** 2).sum()
                                            for j in range(3)), rel=1e-9)


def test_deterministic_by_seed():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 6))   # no real clusters: initialisation matters
    a = kmeans_domains(X, 5, seed=7, n_init=3)
    b = kmeans_domains(X, 5, seed=7, n_init=3)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert np.all(np.diff(a.sizes) <= 0)


def test_kmeans_dataset_layout():
    cube, truth, mask, _ = planted()
    ds = kmeans_dataset(make_cube(cube, E, mask=mask), 3, seed=0, n_init=4)
    lab = ds["label"].values
    assert (lab[mask == 0] == -1).all() and set(np.unique(lab[mask == 1])) == {0, 1, 2}
    dom = ds["domain"].values
    assert np.isnan(dom[:, mask == 0]).all()
    np.testing.assert_array_equal(dom[:, mask == 1].sum(axis=0), 1.0)
    np.testing.assert_array_equal(np.argmax(dom[:, mask == 1], axis=0), lab[mask == 1])
    assert ds["centroid"].dims == ("component", "energy") and ds["energy"].attrs["units"] == "eV"
    np.testing.assert_array_equal(ds["size"].values, [(lab == j).sum() for j in range(3)])
    assert ds.attrs["param_seed"] == 0 and ds.attrs["param_n_init"] == 4 and "kmeans_threads" in ds.attrs


def test_bad_k():
    with pytest.raises(InputError, match="between 2"):
        kmeans_domains(np.ones((5, 3)), 9)
    with pytest.raises(InputError, match="distinct spectra"):
        kmeans_domains(np.ones((5, 3)), 2)


def test_cli_kmeans(tmp_path, capsys):
    cube, truth, mask, _ = planted()
    write_netcdf(make_cube(cube, E, mask=mask), tmp_path / "PRE.nc")
    assert main(["kmeans", str(tmp_path / "PRE.nc"), "--k", "3", "--seed", "2", "--n-init", "3",
                 "-o", str(tmp_path / "KM.nc")]) == 0
    ds = xr.load_dataset(tmp_path / "KM.nc")
    assert ds["label"].values[0, 0] == -1 and ds.attrs["param_seed"] == 2
    n = np.sort(np.bincount(truth[mask == 1]))[::-1]          # planted sizes among the valid pixels
    assert f"C1={n[0]}, C2={n[1]}, C3={n[2]}" in capsys.readouterr().out
    assert main(["kmeans", str(tmp_path / "PRE.nc"), "--k", "500", "-o", str(tmp_path / "K2.nc")]) == 2
    assert "--k" in capsys.readouterr().err
