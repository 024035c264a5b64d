"""Small ground-truth phantoms for the core tests (independent of xasnmf.synthetic)."""

from __future__ import annotations

import numpy as np


def partition_phantom(ny=48, nx=64, n=50, k=5, noise=0.01, seed=0):
    """Voronoi partition of k domains with distinct smooth spectra.

    Returns X (ny*nx, n) signed data, W_true (m, k) one-hot, H_true (n, k), labels (ny, nx).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx]
    P = np.stack([yy.ravel() / ny, xx.ravel() / nx], 1)
    # well-spread seeds so no domain is tiny
    pts = (np.stack([np.arange(k) / k + 0.5 / k, rng.permutation(k) / k + 0.5 / k], 1)
           + rng.uniform(-0.05, 0.05, (k, 2)))
    lab = np.argmin(((P[:, None, :] - pts[None]) ** 2).sum(-1), 1)
    W = np.eye(k)[lab]
    e = np.linspace(0.0, 1.0, n)
    centres = np.linspace(0.15, 0.85, k)
    H = np.stack([0.2 * np.exp(-((e - c) ** 2) / 0.004) for c in centres], 1)
    X = W @ H.T + noise * rng.standard_normal((ny * nx, n))
    return X, W, H, lab.reshape(ny, nx)


def matched_cosines(W_true, W_fit):
    """Hungarian matching of fitted to true columns on cosine; returns matched cosines (k,)."""
    from scipy.optimize import linear_sum_assignment

    a = W_true / np.linalg.norm(W_true, axis=0)
    nb = np.linalg.norm(W_fit, axis=0)
    b = W_fit / np.where(nb > 0, nb, 1.0)
    C = a.T @ b
    r, c = linear_sum_assignment(-C)
    return C[r, c]
