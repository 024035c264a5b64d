import numpy as np
import pytest

from xasnmf.cube import cube_matrix, make_cube, maps_to_rows, rows_to_maps
from xasnmf.errors import DataQualityWarning, InputError


def test_rows_are_c_order_of_y_x_and_maps_round_trip():
    ny, nx, n = 3, 5, 4
    a = np.arange(ny * nx * n, dtype=float).reshape(ny, nx, n)
    mask = np.ones((ny, nx), bool)
    mask[1, 2] = False
    c = make_cube(a, np.arange(n, dtype=float), mask=mask, absorbance_attrs={"normalized": 1})
    cm = cube_matrix(c)
    assert cm.X0.shape == (ny * nx - 1, n)
    np.testing.assert_array_equal(cm.X0[1 * nx + 1], a[1, 1])      # rows before the masked pixel
    np.testing.assert_array_equal(cm.X0[1 * nx + 2], a[1, 3])      # and after it, shifted by one
    maps = rows_to_maps(cm.X0[:, :2], mask)
    assert maps.shape == (2, ny, nx) and np.isnan(maps[:, 1, 2]).all()
    np.testing.assert_array_equal(maps[1, 2, 4], a[2, 4, 1])
    np.testing.assert_array_equal(maps_to_rows(maps, mask), cm.X0[:, :2])


def test_reference_is_subtracted():
    a = np.random.default_rng(0).random((2, 3, 4))
    ref = np.array([0.1, 0.2, 0.3, 0.4])
    cm = cube_matrix(make_cube(a, np.arange(4.0), reference=ref, absorbance_attrs={"normalized": 1}))
    np.testing.assert_allclose(cm.X, a.reshape(6, 4) - ref, atol=1e-6)


def test_unnormalized_cube_warns_and_nan_is_an_error():
    a = np.ones((2, 3, 4))
    with pytest.warns(DataQualityWarning, match="not marked normalized"):
        cube_matrix(make_cube(a, np.arange(4.0)))
    a[0, 1, 2] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        cube_matrix(make_cube(a, np.arange(4.0), absorbance_attrs={"normalized": 1}))
