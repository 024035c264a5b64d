"""Synthetic ground truth: the paper's 8-domain experiment (Tanimoto et al. 2020, sec. II.D, Fig. 2).

The paper drew eight domains by hand on a 400 x 400 image (``W_g``, 160 000 x 8), built
eight spectra each from "a randomly shifted single error function and two Gaussians"
(``H_g``, 100 x 8), formed ``X0 = W_g H_g^T`` and made a reference spectrum (its mimic of
Li0.5CoO2) "in the same manner".  This module is the reproducible twin of that:

* :func:`make_domains` -- irregular, hand-drawn-looking domains covering the image: a power
  (weighted Voronoi) diagram of random sites, fitted to unequal target sizes, drawn through a
  smooth random displacement field so that the straight cell edges wobble; optional soft
  boundaries (mixed pixels) by a Gaussian blur of the one-hot maps.
* :func:`xas_spectrum` / :func:`make_spectra` / :func:`reference_spectrum` -- erf edge + white
  line + post-edge Gaussian, normalized so that every spectrum is exactly 0 at the first and 1
  at the last energy (the paper's per-pixel normalization), with small domain-to-domain
  differences chosen so that rank ``n_domains`` is still identifiable at noise 0.01.
* :func:`synthesize` -- the canonical cube (``absorbance = X0``, ``reference``) plus the truth
  (``truth_W``, ``truth_H``, ``truth_label``, ...), every parameter in the attributes.

Spectra parameters (the paper's Co K-edge window 7700-7740 eV; every energy below is
``E_first + fraction * span`` and scales with ``erange``; heights are relative to the unit
edge step)::

    feature          nominal (reference)          domain-to-domain deviation (half range)
    erf edge         centre 7722.0 eV, sigma 2.0  centre +/- 0.35 eV, sigma +/- 15 %
    white line       7729.9 eV, height 0.60,      centre +/- 0.30 eV, height +/- 12 %,
                     sigma 2.0 eV                 sigma +/- 10 %
    post-edge        7735.5 eV, height 0.30,      centre +/- 0.80 eV, height +/- 30 %,
                     sigma 2.0 eV                 sigma +/- 25 %

Why these: the peak-top energies of 8 domains then span 0.3-0.9 eV (median 0.67 eV over 30
seeds), the paper's Table III spans 0.73 eV; the largest pointwise difference between a
domain and the reference is 0.12-0.20 against a white line of about 1.55 -- the "vary very
little" regime -- and the smallest singular value of ``H_g - b`` is 0.04-0.11 (median 0.08).  Uniform independent draws from such ranges give spectra that are nearly linearly
dependent (8 smooth spectra, 8 parameters: the smallest singular value of ``H_g - b`` was
0.004-0.01 in our measurements, i.e. rank 8 invisible under noise 0.01), so the deviations
are laid out as a 2-level orthogonal (Hadamard) design: every domain moves every parameter
by 50-100 % of its half range, with signs from a randomly permuted, sign-flipped Hadamard
matrix, so the domains' parameter offsets are mutually orthogonal.  Draws whose
``(H_g - b)`` has a smallest singular value below ``min_independence * sqrt(n_energies)``
are redrawn (see :func:`make_spectra`).  With 8 varied parameters, more than 8 domains
cannot be made well independent; :func:`make_spectra` warns then.

Normalization and noise: the clean spectra are edge-normalized, so with partition domains
(and with soft ones, whose memberships sum to 1) ``X0 = W_g H_g^T`` is already normalized.
Gaussian noise (``noise``, per value) and the per-pixel thickness factor
(``thickness_variation``) break that, and the cube is then marked ``normalized = 0``;
the workflow runs the paper's ``edge`` normalization anyway.  Note the consequence found
while testing the core numerics (issue #2): normalizing each pixel by its own first- and
last-energy values turns the noise of those two values into a per-pixel constant offset
(and a per-pixel scale) of the whole normalized spectrum -- extra structured components
with a random coefficient per pixel, which a rank search counts.  Measured on
``synthesize()`` (400 x 400 x 100, 8 domains, noise 0.01, seeds 0-2): the singular values of
``X0 - 1 b`` show exactly 8 above the noise bulk edge ``noise (sqrt(m) + sqrt(n)) = 4.1``
(8th: 10.9, 7.0, 8.0); after the paper's endpoint normalization two more appear (9th and 10th:
12.3 and 6.1, 8.4 and 6.1, 8.4 and 6.8), and subtracting each pixel's mean removes only one of
them.  Because the noise has zero mean, the expected cube is normalized: absorbance carries
``normalized_in_expectation = 1`` whenever ``thickness_variation == 0``, so a workflow may
skip edge normalization on such a cube; with thickness variation it must normalize.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.linalg import hadamard
from scipy.special import erf

from .errors import InputError, XasnmfWarning

#: Nominal (reference) spectrum on the paper's window, as fractions of the energy span
#: from the first energy (centres, widths) or relative to the edge step (heights).
SPECTRUM_PARAMS = ("edge_center", "edge_width", "wl_center", "wl_height", "wl_width",
                   "pe_center", "pe_height", "pe_width")
PAPER_SPAN = 40.0
NOMINAL = {
    "edge_center": 22.0 / PAPER_SPAN,   # 7722.0 eV
    "edge_width": 2.0 / PAPER_SPAN,     # erf sigma 2.0 eV
    "wl_center": 29.9 / PAPER_SPAN,     # 7729.9 eV, Table III peak tops 7729.65-7730.38
    "wl_height": 0.60,
    "wl_width": 2.0 / PAPER_SPAN,       # Gaussian sigma 2.0 eV
    "pe_center": 35.5 / PAPER_SPAN,     # 7735.5 eV
    "pe_height": 0.30,
    "pe_width": 2.0 / PAPER_SPAN,
}
#: Half ranges of the domain-to-domain deviations: centres in units of the span
#: (absolute shift), widths and heights relative to their nominal value.
HALF_RANGE = {
    "edge_center": 0.35 / PAPER_SPAN,
    "edge_width": 0.15,
    "wl_center": 0.30 / PAPER_SPAN,
    "wl_height": 0.12,
    "wl_width": 0.10,
    "pe_center": 0.80 / PAPER_SPAN,
    "pe_height": 0.30,
    "pe_width": 0.25,
}
_RELATIVE = {"edge_width", "wl_height", "wl_width", "pe_height", "pe_width"}


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------

def _as_int(value: Any, name: str, *, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise InputError(f"expected an integer >= {minimum}, got {value!r}", source=name, fix=fix)
    value = int(value)
    if value < minimum:
        raise InputError(f"expected an integer >= {minimum}, got {value}", source=name, fix=fix)
    return value


def _as_nonneg_float(value: Any, name: str, *, fix: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected a number >= 0, got {value!r}", source=name, fix=fix) from None
    if not math.isfinite(v) or v < 0:
        raise InputError(f"expected a finite number >= 0, got {value!r}", source=name, fix=fix)
    return v


def _check_shape(shape: Any, n_domains: int, min_fraction: float) -> tuple[int, int]:
    try:
        ny, nx = (int(s) for s in shape)
        if any(float(s) != int(s) for s in shape):
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(f"expected two positive integers (ny, nx), got {shape!r}", source="shape (--shape)",
                         fix="give the image size as e.g. --shape 400 400") from None
    if ny < 4 or nx < 4:
        raise InputError(f"expected at least 4 x 4 pixels, got {ny} x {nx}", source="shape (--shape)",
                         fix="use a larger image, e.g. --shape 400 400")
    m = ny * nx
    need = 25 * n_domains
    if m < need:
        raise InputError(f"{ny} x {nx} = {m} pixels is too small for {n_domains} domains "
                         f"(expected at least 25 pixels per domain, i.e. >= {need})", source="shape (--shape)",
                         fix=f"use a larger --shape or fewer --domains (at most {m // 25})")
    if min_fraction * m < 4:
        raise InputError(f"min_fraction {min_fraction} of {m} pixels is under 4 pixels per domain",
                         source="min_fraction (--min-fraction)", fix="use a larger image or a larger min_fraction")
    return ny, nx


# --------------------------------------------------------------------------------------------
# domains
# --------------------------------------------------------------------------------------------

def smooth_field(shape: tuple[int, int], corr_length: float, *, rng: np.random.Generator) -> np.ndarray:
    """Smooth Gaussian random field with zero mean and unit standard deviation.

    White noise filtered in Fourier space by a Gaussian of standard deviation
    ``corr_length`` pixels (periodic boundaries).

    Parameters
    ----------
    shape : (ny, nx)
    corr_length : float
        Correlation length in pixels (> 0).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (ny, nx), float64
    """
    ny, nx = shape
    white = rng.standard_normal((ny, nx))
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.rfftfreq(nx)[None, :]
    transfer = np.exp(-2.0 * (np.pi * corr_length) ** 2 * (fy ** 2 + fx ** 2))
    f = np.fft.irfft2(np.fft.rfft2(white) * transfer, s=(ny, nx))
    f -= f.mean()
    sd = f.std()
    return f / sd if sd > 0 else f


@dataclass
class Domains:
    """Ground-truth domains.

    Attributes
    ----------
    W : ndarray, shape (k, ny, nx), float64
        Memberships, >= 0, summing to 1 over ``k`` at every pixel (one-hot without overlap).
    label : ndarray, shape (ny, nx), int
        Index of the largest membership at each pixel (0..k-1).
    fractions : ndarray, shape (k,)
        Mean membership of each domain (its area fraction).
    sites : ndarray, shape (k, 2)
        (y, x) sites of the power diagram, in pixels.
    target_fractions : ndarray, shape (k,)
        The sizes the diagram was fitted to.
    tries : int
        Site layouts drawn until every domain reached ``min_fraction``.
    """

    W: np.ndarray
    label: np.ndarray
    fractions: np.ndarray
    sites: np.ndarray
    target_fractions: np.ndarray
    tries: int = 1


def _power_labels(qy: np.ndarray, qx: np.ndarray, sites: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """argmin_k |q - s_k|^2 - w_k over the points q (flattened arrays)."""
    d = (qy[None, :] - sites[:, 0:1]) ** 2 + (qx[None, :] - sites[:, 1:2]) ** 2 - weights[:, None]
    return np.argmin(d, axis=0)


def _draw_sites(n: int, ny: int, nx: int, rng: np.random.Generator) -> np.ndarray:
    """Dart throwing: uniform sites at least ~half a mean cell radius apart."""
    min_dist = 0.5 * math.sqrt(ny * nx / n)
    sites = []
    for _ in range(200 * n):
        p = rng.uniform((0.0, 0.0), (ny, nx))
        if all((p[0] - s[0]) ** 2 + (p[1] - s[1]) ** 2 >= min_dist ** 2 for s in sites):
            sites.append(p)
            if len(sites) == n:
                break
    while len(sites) < n:  # crowded: accept the rest without spacing
        sites.append(rng.uniform((0.0, 0.0), (ny, nx)))
    return np.array(sites, dtype=np.float64)


def _keep_largest_pieces(label: np.ndarray, k: int) -> np.ndarray:
    """Give every disconnected fragment of a domain to its nearest neighbouring domain."""
    out = label.copy()
    for j in range(k):
        pieces, n = ndimage.label(label == j)
        if n > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            keep = 1 + int(np.argmax(sizes))
            out[(pieces > 0) & (pieces != keep)] = -1
    holes = out < 0
    if holes.any():
        idx = ndimage.distance_transform_edt(holes, return_distances=False, return_indices=True)
        out = out[idx[0], idx[1]]
    return out


def make_domains(
    shape: tuple[int, int],
    n_domains: int,
    *,
    rng: np.random.Generator,
    min_fraction: float = 0.02,
    overlap: float = 0.0,
    warp: float = 0.05,
    size_concentration: float = 1.0,
    max_tries: int = 50,
) -> Domains:
    """Irregular, hand-drawn-looking domains that together cover the image.

    A power diagram (weighted Voronoi cells, each convex and connected) of ``n_domains``
    random sites is fitted to unequal target sizes ``min_fraction + (1 - k min_fraction)
    Dirichlet(size_concentration)``, evaluated at positions displaced by a smooth random
    field (two scales, amplitude ``warp`` x image size) so that the straight edges become
    wobbly; stray fragments go to their neighbour, so every domain is one piece.  Layouts
    with a domain under ``min_fraction`` of the image are redrawn.

    Parameters
    ----------
    shape : (ny, nx)
        Image size in pixels.
    n_domains : int
        Number of domains k >= 1.
    rng : numpy.random.Generator
        Source of randomness; the same generator state gives the same domains.
    min_fraction : float
        Smallest allowed domain area fraction (default 0.02: 3 200 pixels at 400 x 400).
    overlap : float
        Soft boundaries: standard deviation in pixels of a Gaussian blur of the one-hot maps
        (0 = partition).  Memberships of pixels within about ``2 * overlap`` of a boundary are
        mixed; they still sum to 1.
    warp : float
        Amplitude of the boundary displacement, as a fraction of ``sqrt(ny * nx)``.
    size_concentration : float
        Dirichlet concentration of the sizes: smaller = more unequal.
    max_tries : int
        Site layouts to try before giving up.

    Returns
    -------
    Domains
        ``W`` of shape (k, ny, nx), ``label`` (ny, nx), ``fractions`` (k,), ...
    """
    k = _as_int(n_domains, "n_domains (--domains)", minimum=1, fix="use at least 1 domain, e.g. --domains 8")
    min_fraction = _as_nonneg_float(min_fraction, "min_fraction (--min-fraction)", fix="use e.g. 0.02")
    if k * min_fraction > 0.5:
        raise InputError(f"{k} domains x min_fraction {min_fraction} = {k * min_fraction:.2f} of the image; "
                         "expected at most 0.5 so that sizes can differ", source="min_fraction (--min-fraction)",
                         fix=f"use min_fraction <= {0.5 / k:.4f} or fewer domains")
    ny, nx = _check_shape(shape, k, min_fraction)
    overlap = _as_nonneg_float(overlap, "overlap (--overlap)", fix="give a width in pixels >= 0, e.g. --overlap 2")
    warp = _as_nonneg_float(warp, "warp", fix="use e.g. 0.05")
    m = ny * nx
    L = math.sqrt(m)

    yy, xx = np.meshgrid(np.arange(ny, dtype=np.float64), np.arange(nx, dtype=np.float64), indexing="ij")
    for attempt in range(1, max_tries + 1):
        if k == 1:
            label = np.zeros((ny, nx), dtype=np.int64)
            sites = np.array([[ny / 2.0, nx / 2.0]])
            target = np.ones(1)
        else:
            # displacement field: a broad wobble plus a finer one
            c1, c2 = 0.15 * L, 0.05 * L
            dy = warp * L * (smooth_field((ny, nx), c1, rng=rng) + 0.3 * smooth_field((ny, nx), c2, rng=rng))
            dx = warp * L * (smooth_field((ny, nx), c1, rng=rng) + 0.3 * smooth_field((ny, nx), c2, rng=rng))
            qy = (yy + dy).ravel()
            qx = (xx + dx).ravel()
            sites = _draw_sites(k, ny, nx, rng)
            target = min_fraction + (1.0 - k * min_fraction) * rng.dirichlet(np.full(k, float(size_concentration)))
            # fit the power weights to the target sizes on a coarse grid, then label all pixels
            step = max(1, int(round(L / 100)))
            coarse = (np.arange(ny)[::step, None] * nx + np.arange(nx)[None, ::step]).ravel()
            w = np.zeros(k)
            for _ in range(80):
                lab_c = _power_labels(qy[coarse], qx[coarse], sites, w)
                frac = np.bincount(lab_c, minlength=k) / coarse.size
                w += 0.5 * m * (target - frac)
                w -= w.mean()
            label = _power_labels(qy, qx, sites, w).reshape(ny, nx)
            label = _keep_largest_pieces(label, k)
        onehot = (label[None, :, :] == np.arange(k)[:, None, None]).astype(np.float64)
        if overlap > 0 and k > 1:
            W = np.stack([ndimage.gaussian_filter(onehot[j], sigma=overlap, mode="nearest") for j in range(k)])
            np.clip(W, 0.0, None, out=W)
            W /= W.sum(axis=0, keepdims=True)
            label = np.argmax(W, axis=0)
        else:
            W = onehot
        counts = np.bincount(label.ravel(), minlength=k)
        if counts.min() >= min_fraction * m:
            return Domains(W=W, label=label.astype(np.int64), fractions=W.reshape(k, -1).mean(axis=1),
                           sites=sites, target_fractions=target, tries=attempt)
    if overlap > 0:
        raise InputError(f"overlap {overlap} px leaves some domain under min_fraction {min_fraction} "
                         f"after {max_tries} layouts", source="overlap (--overlap)", fix="use a smaller --overlap")
    raise InputError(f"no layout of {k} domains on {ny} x {nx} gave every domain >= {min_fraction} of the "
                     f"image in {max_tries} tries", source="n_domains (--domains)",
                     fix="use fewer --domains, a larger --shape or a smaller min_fraction")


# --------------------------------------------------------------------------------------------
# spectra
# --------------------------------------------------------------------------------------------

def xas_spectrum(energy: np.ndarray, *, edge_center: float, edge_width: float, wl_center: float,
                 wl_height: float, wl_width: float, pe_center: float, pe_height: float,
                 pe_width: float) -> np.ndarray:
    """One XAS-like spectrum, normalized to 0 at the first and 1 at the last energy.

    ``raw(E) = (1 + erf((E - edge_center) / (sqrt(2) edge_width))) / 2
    + wl_height G(E; wl_center, wl_width) + pe_height G(E; pe_center, pe_width)``,
    ``G(E; c, s) = exp(-(E - c)^2 / (2 s^2))``; returned as
    ``(raw - raw[0]) / (raw[-1] - raw[0])``.

    Parameters
    ----------
    energy : ndarray, shape (n,), eV, increasing
    edge_center, edge_width, wl_center, wl_width, pe_center, pe_width : float
        eV (widths are standard deviations).
    wl_height, pe_height : float
        Relative to the unit edge step.

    Returns
    -------
    ndarray, shape (n,)
    """
    raw = xas_components(energy, edge_center=edge_center, edge_width=edge_width, wl_center=wl_center,
                         wl_height=wl_height, wl_width=wl_width, pe_center=pe_center,
                         pe_height=pe_height, pe_width=pe_width).sum(axis=0)
    return (raw - raw[0]) / (raw[-1] - raw[0])


def xas_components(energy: np.ndarray, *, edge_center: float, edge_width: float, wl_center: float,
                   wl_height: float, wl_width: float, pe_center: float, pe_height: float,
                   pe_width: float) -> np.ndarray:
    """The three un-normalized parts of :func:`xas_spectrum`: shape (3, n) = edge, white line, post-edge."""
    e = np.asarray(energy, dtype=np.float64)
    edge = 0.5 * (1.0 + erf((e - edge_center) / (math.sqrt(2.0) * edge_width)))
    wl = wl_height * np.exp(-0.5 * ((e - wl_center) / wl_width) ** 2)
    pe = pe_height * np.exp(-0.5 * ((e - pe_center) / pe_width) ** 2)
    return np.stack([edge, wl, pe])


def nominal_params(energy: np.ndarray) -> dict[str, float]:
    """The reference (Li0.5CoO2 mimic) parameters on the window of ``energy``, in eV."""
    e = np.asarray(energy, dtype=np.float64)
    e0, span = float(e[0]), float(e[-1] - e[0])
    out = {}
    for name in SPECTRUM_PARAMS:
        v = NOMINAL[name]
        if name.endswith("center"):
            out[name] = e0 + v * span
        elif name.endswith("width"):
            out[name] = v * span
        else:
            out[name] = v
    return out


def reference_spectrum(energy: np.ndarray) -> np.ndarray:
    """The reference spectrum b (the paper's Li0.5CoO2 mimic): the family's nominal member.

    Li0.5CoO2 is the half-charged state, so it sits at the centre of the ranges the domain
    spectra are drawn from.  Shape (n,), 0 at the first and 1 at the last energy.
    """
    return xas_spectrum(energy, **nominal_params(energy))


def peak_top_energy(params: dict[str, float], energy: np.ndarray, *, step: float = 0.005) -> float:
    """Energy (eV) of the maximum of :func:`xas_spectrum` on a fine grid (``step`` eV) over the window."""
    e = np.asarray(energy, dtype=np.float64)
    fine = np.arange(e[0], e[-1] + step / 2, step)
    comps = xas_components(fine, **params).sum(axis=0)
    return float(fine[int(np.argmax(comps))])


@dataclass
class Spectra:
    """Ground-truth spectra.

    Attributes
    ----------
    H : ndarray, shape (n, n_energy)
        Spectra, each 0 at the first and 1 at the last energy.
    params : dict of str -> ndarray, shape (n,)
        Parameters of each spectrum (eV for centres and widths).
    reference : ndarray, shape (n_energy,)
        The nominal member b (:func:`reference_spectrum`).
    reference_params : dict of str -> float
    singular_values : ndarray, shape (min(n, n_energy),)
        Singular values of ``H - b``.
    tries : int
        Designs drawn until the independence criterion was met (or ``max_tries``).
    """

    H: np.ndarray
    params: dict[str, np.ndarray]
    reference: np.ndarray
    reference_params: dict[str, float]
    singular_values: np.ndarray
    tries: int = 1
    design: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


def _sign_design(n: int, p: int, rng: np.random.Generator) -> np.ndarray:
    """(n, p) matrix of +-1 with mutually orthogonal rows when n <= p (p a power of 2)."""
    order = 1 << max(int(math.ceil(math.log2(max(n, p)))), 0)
    Hd = hadamard(order).astype(np.float64)
    cols = rng.permutation(order)[:p] if order > p else rng.permutation(order)
    rows = rng.permutation(order)[:n]
    S = Hd[np.ix_(rows, cols)]
    return S * rng.choice([-1.0, 1.0], size=p)[None, :]


def make_spectra(
    energy: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    half_range: dict[str, float] | None = None,
    min_magnitude: float = 0.5,
    min_independence: float = 0.004,
    max_tries: int = 200,
) -> Spectra:
    """``n`` XAS-like spectra of one family: erf edge + white line + post-edge Gaussian.

    Each spectrum moves each parameter of :data:`SPECTRUM_PARAMS` away from the nominal
    (reference) value by ``sign * magnitude * half_range``: the signs come from a randomly
    permuted, sign-flipped Hadamard design (orthogonal offsets for ``n <= 8``), the
    magnitudes are uniform in ``[min_magnitude, 1]``.  Centres shift by absolute amounts
    (``half_range`` in units of the window span), widths and heights by relative ones; see
    the module docstring for the ranges in eV.  Designs whose ``H - b`` has a smallest
    singular value below ``min_independence * sqrt(n_energy)`` (an RMS difference per energy)
    are redrawn, up to ``max_tries``; the most independent draw is kept and an
    :class:`~xasnmf.errors.XasnmfWarning` says so if none passed.

    Parameters
    ----------
    energy : ndarray, shape (n_energy,), eV, strictly increasing
    n : int
        Number of spectra (>= 1).
    rng : numpy.random.Generator
    half_range : dict, optional
        Override entries of :data:`HALF_RANGE`.
    min_magnitude : float
        Smallest magnitude of a deviation, as a fraction of its half range.
    min_independence : float
        Independence criterion (absorbance units per energy, relative to the unit edge
        step).  At the default 0.004 and 100 energies, ``sigma_min(H - b) >= 0.04``: times
        ``sqrt(3200)`` pixels of a 2 % domain that is a signal singular value of about 2.3 against
        ``noise * (m n)^(1/4) = 0.63``, the detection threshold of a rank-one signal under
        noise 0.01 on 160 000 x 100 values.
    max_tries : int

    Returns
    -------
    Spectra
        ``H`` of shape (n, n_energy), ``params``, ``reference``, ``singular_values``.
    """
    e = np.asarray(energy, dtype=np.float64)
    if e.ndim != 1 or e.size < 10 or not np.all(np.diff(e) > 0):
        raise InputError(f"expected a strictly increasing 1-D energy grid of >= 10 values, got shape {e.shape}",
                         source="energy", fix="use e.g. --energies 100 --erange 7700:7740")
    n = _as_int(n, "n", minimum=1, fix="ask for at least one spectrum")
    hr = dict(HALF_RANGE)
    if half_range:
        unknown = set(half_range) - set(hr)
        if unknown:
            raise InputError(f"unknown spectrum parameters {sorted(unknown)}; expected some of {list(hr)}",
                             source="half_range")
        hr.update({k: float(v) for k, v in half_range.items()})
    span = float(e[-1] - e[0])
    nom = nominal_params(e)
    b = xas_spectrum(e, **nom)
    p = len(SPECTRUM_PARAMS)
    scale = np.array([hr[k] * (nom[k] if k in _RELATIVE else span) for k in SPECTRUM_PARAMS])
    threshold = min_independence * math.sqrt(e.size)
    best = None
    for attempt in range(1, max_tries + 1):
        signs = _sign_design(n, p, rng)
        mags = rng.uniform(min_magnitude, 1.0, size=(n, p))
        offsets = signs * mags * scale[None, :]
        P = np.array([nom[k] for k in SPECTRUM_PARAMS])[None, :] + offsets
        H = np.stack([xas_spectrum(e, **dict(zip(SPECTRUM_PARAMS, row))) for row in P])
        sv = np.linalg.svd(H - b[None, :], compute_uv=False)
        smin = float(sv[min(n, e.size) - 1])
        if best is None or smin > best[0]:
            best = (smin, H, P, sv, signs * mags, attempt)
        if smin >= threshold:
            break
    smin, H, P, sv, design, _ = best
    if smin < threshold:
        warnings.warn(f"make_spectra: the {n} spectra are nearly linearly dependent (smallest singular value of "
                      f"H - b {smin:.4g} < {threshold:.4g} after {max_tries} designs); with {p} varied "
                      f"parameters more than {p} domains cannot be made well independent", XasnmfWarning,
                      stacklevel=2)
    params = {k: P[:, i].copy() for i, k in enumerate(SPECTRUM_PARAMS)}
    return Spectra(H=H, params=params, reference=b, reference_params=nom, singular_values=sv,
                   tries=attempt, design=design)


# --------------------------------------------------------------------------------------------
# the cube
# --------------------------------------------------------------------------------------------

def _parse_erange(erange: Any) -> tuple[float, float]:
    try:
        e0, e1 = (float(v) for v in erange)
    except (TypeError, ValueError):
        raise InputError(f"expected two energies (first, last) in eV, got {erange!r}", source="erange (--erange)",
                         fix="use e.g. --erange 7700:7740") from None
    if not (math.isfinite(e0) and math.isfinite(e1)) or e1 <= e0:
        raise InputError(f"expected first < last energy, got {e0:g}:{e1:g}", source="erange (--erange)",
                         fix=f"swap the ends: --erange {min(e0, e1):g}:{max(e0, e1):g}"
                         if e0 != e1 else "give two different energies, e.g. --erange 7700:7740")
    return e0, e1


def signal_singular_values(W: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Singular values of ``W D`` without forming it.

    Parameters
    ----------
    W : ndarray, shape (m, k)
    D : ndarray, shape (k, n)

    Returns
    -------
    ndarray, shape (min(k, n),)
    """
    G = W.T @ W
    evals, V = np.linalg.eigh(G)
    root = (V * np.sqrt(np.clip(evals, 0.0, None))) @ V.T
    return np.linalg.svd(root @ D, compute_uv=False)


def synthesize(
    *,
    shape: tuple[int, int] = (400, 400),
    n_domains: int = 8,
    n_energies: int = 100,
    erange: tuple[float, float] = (7700.0, 7740.0),
    noise: float = 0.01,
    thickness_variation: float = 0.0,
    overlap: float = 0.0,
    seed: int = 0,
    min_fraction: float = 0.02,
):
    """The paper's synthetic experiment as a canonical cube with its ground truth.

    ``X0 = t * (W_g H_g^T) + noise * N(0, 1)`` per pixel and energy, with ``W_g`` from
    :func:`make_domains`, ``H_g`` from :func:`make_spectra` and ``t`` the thickness factor.

    Parameters
    ----------
    shape : (ny, nx)
        Image size (paper: 400 x 400).
    n_domains : int
        Number of domains k (paper: 8).
    n_energies : int
        Energies, evenly spaced over ``erange`` including both ends (paper: 100 over
        7700-7740 eV, about 0.4 eV steps).
    erange : (float, float)
        First and last energy, eV.
    noise : float
        Standard deviation of additive i.i.d. Gaussian noise, in units of the edge step
        (default 0.01; the paper's X0 states none, real stacks have it).
    thickness_variation : float
        Per-pixel thickness ``t = exp(T f)``, ``f`` a smooth unit-variance random field
        (correlation length 8 % of the image size); ``T`` is the standard deviation of log
        thickness (about the relative variation for ``T <~ 0.3``).  0 = uniform.  The paper's
        edge normalization removes it (exactly when ``noise == 0``).
    overlap : float
        Soft-boundary width in pixels (see :func:`make_domains`); 0 = partition.
    seed : int
        Seed (>= 0).  Domains, spectra, thickness and noise come from independent child
        streams of ``numpy.random.SeedSequence(seed)``, so e.g. changing ``noise`` keeps the
        same domains and spectra; the same arguments give bit-identical output.
    min_fraction : float
        Smallest domain area fraction.

    Returns
    -------
    xarray.Dataset
        Canonical cube: ``absorbance(y, x, energy)`` = X0 (float32), ``reference(energy)``,
        plus ``truth_W(component, y, x)``, ``truth_H(component, energy)``,
        ``truth_label(y, x)`` (the ``component`` value, 1..k, of the largest membership;
        ``component`` runs 1..k like the fit files, names g1..gk), ``truth_name(component)``, ``truth_fraction(component)``,
        ``truth_peak_top_energy(component)``, ``truth_spectrum_param(component,
        spectrum_param)``, ``reference_spectrum_param(spectrum_param)`` and, when
        ``thickness_variation > 0``, ``truth_thickness(y, x)``.  ``absorbance`` has
        ``normalized = 1`` (with ``norm_rule``) only when ``noise == 0`` and
        ``thickness_variation == 0``; ``normalized_in_expectation = 1`` when
        ``thickness_variation == 0`` (zero-mean noise only).  See the module docstring for
        what per-pixel endpoint normalization does to the noise.

    Notes
    -----
    Attributes ``truth_signal_singular_values`` (singular values of ``W_g (H_g - b)^T``, the
    signal BCV has to find) and ``truth_noise_singular_value_edge`` (``noise (sqrt(m) +
    sqrt(n))``, the largest singular value pure noise gives) say how identifiable the rank is:
    at the defaults the smallest signal value is 5-10, the edge 4.1.
    """
    from .cube import append_history, make_cube
    from .provenance import provenance_attrs

    k = _as_int(n_domains, "n_domains (--domains)", minimum=1, fix="use at least 1 domain, e.g. --domains 8")
    ne = _as_int(n_energies, "n_energies (--energies)", minimum=10, fix="use e.g. --energies 100")
    if k > ne:
        raise InputError(f"{k} domains need at least as many energies, got {ne}", source="n_energies (--energies)",
                         fix=f"use --energies >= {k} (the paper: 100)")
    e0, e1 = _parse_erange(erange)
    noise = _as_nonneg_float(noise, "noise (--noise)", fix="give a standard deviation >= 0, e.g. --noise 0.01")
    tv = _as_nonneg_float(thickness_variation, "thickness_variation (--thickness-variation)",
                          fix="give a value >= 0, e.g. --thickness-variation 0.1")
    overlap = _as_nonneg_float(overlap, "overlap (--overlap)", fix="give a width in pixels >= 0, e.g. --overlap 2")
    seed = _as_int(seed, "seed (--seed)", minimum=0, fix="use a non-negative integer seed")
    min_fraction = _as_nonneg_float(min_fraction, "min_fraction (--min-fraction)", fix="use e.g. 0.02")
    ny, nx = _check_shape(shape, k, min_fraction)

    ss_dom, ss_spec, ss_thick, ss_noise = np.random.SeedSequence(seed).spawn(4)
    energy = np.linspace(e0, e1, ne)
    dom = make_domains((ny, nx), k, rng=np.random.default_rng(ss_dom), min_fraction=min_fraction,
                       overlap=overlap)
    spec = make_spectra(energy, k, rng=np.random.default_rng(ss_spec))
    m = ny * nx
    Wm = dom.W.reshape(k, m).T                                    # (m, k)
    X0 = Wm @ spec.H                                              # (m, ne) float64, normalized
    thickness = None
    if tv > 0:
        f = smooth_field((ny, nx), 0.08 * math.sqrt(m), rng=np.random.default_rng(ss_thick))
        thickness = np.exp(tv * f)
        X0 *= thickness.reshape(m, 1)
    X0 = X0.astype(np.float32)
    if noise > 0:
        X0 += np.float32(noise) * np.random.default_rng(ss_noise).standard_normal((m, ne), dtype=np.float32)

    D = spec.H - spec.reference[None, :]
    sig_sv = signal_singular_values(Wm, D)
    noise_edge = noise * (math.sqrt(m) + math.sqrt(ne))
    normalized = noise == 0 and tv == 0
    aattrs: dict[str, Any] = {"normalized": int(normalized),
                              # noise only: E[X0] is normalized, so edge normalization may be skipped
                              "normalized_in_expectation": int(tv == 0)}
    if normalized:
        aattrs["norm_rule"] = "synthetic: spectra built with 0 at first and 1 at last energy"
        aattrs["long_name"] = "normalized absorbance"
    else:
        aattrs["norm_note"] = ("synthetic: the clean spectra are 0 at the first and 1 at the last energy; noise "
                               "and/or thickness scaling break that, so run edge normalization (which turns "
                               "first-energy noise into a per-pixel offset)")
    params = dict(ny=ny, nx=nx, n_domains=k, n_energies=ne, erange_first=e0, erange_last=e1, noise=noise,
                  thickness_variation=tv, overlap=overlap, seed=seed, min_fraction=min_fraction,
                  generator="xasnmf.synthetic.synthesize")
    attrs = provenance_attrs(**params)
    counts = np.bincount(dom.label.ravel(), minlength=k)
    attrs.update({
        "truth_n_domains": k,
        "truth_domain_fraction_min": float(dom.fractions.min()),
        "truth_domain_fraction_max": float(dom.fractions.max()),
        "truth_mixed_pixel_fraction": float(np.mean(dom.W.max(axis=0) < 1.0 - 1e-12)),
        "truth_spectra_singular_values": [float(v) for v in spec.singular_values],
        "truth_signal_singular_values": [float(v) for v in sig_sv],
        "truth_noise_singular_value_edge": float(noise_edge),
        "truth_layout_tries": int(dom.tries),
        "truth_spectra_tries": int(spec.tries),
        "spectrum_model": "(1+erf((E-edge_center)/(sqrt2 edge_width)))/2 + wl_height G(wl_center, wl_width) "
                          "+ pe_height G(pe_center, pe_width), then (s - s[0]) / (s[-1] - s[0])",
    })
    ds = make_cube(X0.reshape(ny, nx, ne), energy, reference=spec.reference,
                   title="xasnmf synthetic ground truth (Tanimoto et al. 2020, sec. II.D)",
                   source="xasnmf.synthetic.synthesize", attrs=attrs, absorbance_attrs=aattrs)
    append_history(ds, "synthesize(" + ", ".join(f"{a}={v!r}" for a, v in params.items()
                                                  if a != "generator") + ")")
    comp = np.arange(k)
    ds = ds.assign_coords(
        component=("component", comp + 1, {"long_name": "true domain number (g1 = 1, ...)", "units": "1"}),
        spectrum_param=("spectrum_param", np.array(SPECTRUM_PARAMS),
                        {"long_name": "spectrum model parameter"}),
    )
    ds["truth_W"] = (("component", "y", "x"), dom.W.astype(np.float32),
                     {"long_name": "true domain membership W_g", "units": "1",
                      "comment": "memberships >= 0 summing to 1 over component at every pixel"})
    ds["truth_H"] = (("component", "energy"), spec.H,
                     {"long_name": "true domain spectrum H_g (0 at first, 1 at last energy)", "units": "1"})
    ds["truth_label"] = (("y", "x"), (dom.label + 1).astype(np.int32),
                         {"long_name": "component (domain number) of largest membership", "units": "1",
                          "flag_values": (comp + 1).astype(np.int32),
                          "comment": "values are the component coordinate: 1 = g1, ..."})
    ds["truth_name"] = ("component", np.array([f"g{j + 1}" for j in comp]), {"long_name": "domain name"})
    ds["truth_fraction"] = ("component", dom.fractions,
                            {"long_name": "domain area fraction (mean membership)", "units": "1"})
    ds["truth_pixel_count"] = ("component", counts.astype(np.int64),
                               {"long_name": "pixels labelled with the domain", "units": "1"})
    pte = [peak_top_energy({p: float(spec.params[p][j]) for p in SPECTRUM_PARAMS}, energy) for j in comp]
    ds["truth_peak_top_energy"] = ("component", np.array(pte),
                                   {"long_name": "peak-top energy of the true spectrum (0.005 eV grid)",
                                    "units": "eV"})
    ds["truth_spectrum_param"] = (("component", "spectrum_param"),
                                  np.stack([spec.params[p] for p in SPECTRUM_PARAMS], axis=1),
                                  {"long_name": "spectrum model parameters",
                                   "comment": "centres and widths in eV, heights relative to the edge step"})
    ds["reference_spectrum_param"] = ("spectrum_param",
                                      np.array([spec.reference_params[p] for p in SPECTRUM_PARAMS]),
                                      {"long_name": "reference spectrum model parameters"})
    ds["reference"].attrs["long_name"] = "reference spectrum b (synthetic Li0.5CoO2 mimic: nominal member)"
    ds["reference"].attrs["peak_top_energy"] = peak_top_energy(spec.reference_params, energy)
    if thickness is not None:
        ds["truth_thickness"] = (("y", "x"), thickness.astype(np.float32),
                                 {"long_name": "true per-pixel thickness factor t", "units": "1"})
    return ds
