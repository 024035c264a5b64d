"""k-means domains (section II.E, Eq. (14)): the baseline the ONMF domains are checked against.

scikit-learn :class:`~sklearn.cluster.KMeans` clusters the normalized spectra
``X0`` of the valid pixels (Euclidean distances are the same on ``X0`` and on
``X = X0 - 1 b``, so the reference does not matter).  ``n_init`` is explicit
and seeded; the thread count used is recorded (threadpoolctl).  Clusters are
renumbered deterministically: by decreasing size, ties by the lexicographic
order of their centroids, so the same seed gives the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass
class KMeansResult:
    """Result of :func:`kmeans_domains`.

    Attributes
    ----------
    labels : ndarray of int, shape (m,)
        Cluster of each pixel row, 0..k-1, cluster 0 the largest.
    centroids : ndarray, shape (k, n)
        Mean spectrum of each cluster.
    sizes : ndarray of int, shape (k,)
        Pixels per cluster (non-increasing).
    inertia : float
        Sum of squared distances to the closest centroid (Eq. (14) objective).
    n_iter : int
        Iterations of the best run.
    threads : int
        Threads of the OpenMP/BLAS pools during the fit (0 if unknown).
    seed, n_init, max_iter : int
    """

    labels: np.ndarray
    centroids: np.ndarray
    sizes: np.ndarray
    inertia: float
    n_iter: int
    threads: int
    seed: int
    n_init: int
    max_iter: int


def _pool_threads() -> int:
    try:
        from threadpoolctl import threadpool_info

        counts = [int(p.get("num_threads", 0)) for p in threadpool_info()
                  if p.get("user_api") in ("openmp", "blas")]
        return max(counts) if counts else 0
    except Exception:  # pragma: no cover
        return 0


def kmeans_domains(X0: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10, max_iter: int = 300) -> KMeansResult:
    """Cluster spectra by k-means (Eq. (14)), with a deterministic cluster order.

    Parameters
    ----------
    X0 : ndarray, shape (m, n)
        One spectrum per valid pixel.
    k : int
        Number of clusters, ``2 <= k <= m``.
    seed : int, keyword-only
        Seed of the k-means++ initializations.
    n_init : int, keyword-only
        Number of initializations (the best inertia is kept).
    max_iter : int, keyword-only
        Lloyd iterations per initialization.

    Returns
    -------
    KMeansResult
    """
    from sklearn.cluster import KMeans

    X0 = np.asarray(X0, dtype=np.float64)
    if X0.ndim != 2:
        raise InputError(f"X0 must be 2-D (pixels, energies), got shape {X0.shape}", source="X0")
    m = X0.shape[0]
    k = int(k)
    if not 2 <= k <= m:
        raise InputError(f"k must be between 2 and the number of valid pixels ({m}), got {k}", source="--k",
                         fix="choose k like the ONMF rank r")
    if int(n_init) < 1:
        raise InputError(f"n_init must be >= 1, got {n_init}", source="--n-init", fix="use e.g. --n-init 10")
    if int(max_iter) < 1:
        raise InputError(f"max_iter must be >= 1, got {max_iter}", source="max_iter")
    if not np.isfinite(X0).all():
        raise InputError("X0 has non-finite values", source="X0", fix="mask such pixels (`xasnmf preprocess`)")
    n_distinct = np.unique(X0, axis=0).shape[0]
    if n_distinct < k:
        raise InputError(f"only {n_distinct} distinct spectra for k = {k} clusters", source="--k",
                         fix=f"use --k {n_distinct} or fewer")
    km = KMeans(n_clusters=k, init="k-means++", n_init=int(n_init), max_iter=int(max_iter),
                random_state=int(seed), algorithm="lloyd")
    threads = _pool_threads()
    km.fit(X0)
    lab = km.labels_.astype(np.int64)
    cent = km.cluster_centers_
    sizes = np.bincount(lab, minlength=k)
    # deterministic order: decreasing size, ties by centroid (lexicographic)
    keys = [cent[:, j] for j in range(cent.shape[1] - 1, -1, -1)] + [-sizes]
    order = np.lexsort(keys)
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    lab = rank[lab]
    cent = cent[order]
    sizes = sizes[order]
    # centroids as exact cluster means of the relabelled pixels
    cent = np.stack([X0[lab == j].mean(axis=0) if sizes[j] else cent[j] for j in range(k)])
    return KMeansResult(labels=lab, centroids=cent, sizes=sizes, inertia=float(km.inertia_),
                        n_iter=int(km.n_iter_), threads=threads, seed=int(seed), n_init=int(n_init),
                        max_iter=int(max_iter))


def kmeans_dataset(cube_ds, k: int, *, seed: int = 0, n_init: int = 10, max_iter: int = 300,
                   source: str = "cube"):
    """k-means domains of a canonical cube as the ``xasnmf kmeans`` output Dataset.

    Parameters
    ----------
    cube_ds : xarray.Dataset
        Canonical (preprocessed) cube; ``absorbance`` of the pixels with ``mask == 1`` is clustered.
    k : int
    seed, n_init, max_iter : int, keyword-only
        See :func:`kmeans_domains`.
    source : str, keyword-only
        Name of the cube in error messages.

    Returns
    -------
    xarray.Dataset
        ``label(y, x)`` int32 (-1 where masked), one-hot ``domain(component, y, x)``
        (NaN where masked), ``centroid(component, energy)``, ``size(component)``.
    """
    import xarray as xr

    from .cube import cube_matrix
    from .provenance import provenance_attrs

    cm = cube_matrix(cube_ds, source=source)
    res = kmeans_domains(cm.X0, k, seed=seed, n_init=n_init, max_iter=max_iter)
    ny, nx = cm.mask.shape
    label = np.full(ny * nx, -1, dtype=np.int32)
    label[cm.mask.ravel()] = res.labels
    label = label.reshape(ny, nx)
    domain = np.where(cm.mask[None], (label[None] == np.arange(res.sizes.size)[:, None, None]).astype(np.float32),
                      np.float32(np.nan))
    comp = np.arange(1, res.sizes.size + 1, dtype=np.int32)
    ds = xr.Dataset(
        {
            "label": (("y", "x"), label, {"long_name": "k-means cluster index (0 = largest, i.e. C1; -1 = masked)"}),
            "domain": (("component", "y", "x"), domain,
                       {"long_name": "one-hot k-means domain map (NaN where masked)", "units": "1"}),
            "centroid": (("component", "energy"), res.centroids.astype(np.float64),
                         {"long_name": "cluster mean spectrum", "units": cube_ds["absorbance"].attrs.get("units", "1")}),
            "size": (("component",), res.sizes.astype(np.int64), {"long_name": "pixels in cluster"}),
        },
        coords={"component": ("component", comp, {"long_name": "k-means cluster C<i>"}),
                "y": cube_ds["y"].variable, "x": cube_ds["x"].variable,
                "energy": cube_ds["energy"].variable},
    )
    ds.attrs.update(provenance_attrs(k=int(k), seed=int(seed), n_init=int(n_init), max_iter=int(max_iter),
                                     kmeans_threads=res.threads))
    ds.attrs.update({"title": "xasnmf k-means domains", "k": int(k), "seed": int(seed), "n_init": int(n_init),
                     "inertia": res.inertia, "n_iter": res.n_iter, "kmeans_threads": res.threads,
                     "cluster_order": "decreasing size, ties by centroid"})
    return ds
