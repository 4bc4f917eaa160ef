"""Natural-scene statistics: the 36 BRISQUE features (Mittal, Moorthy & Bovik, IEEE TIP 2012).

At each of two scales (the 8-bit luminance scaled to ``[0, 1]``, and that image resized to half
its size), 18 numbers:

* **MSCN coefficients** ``m = (I - mu) / (sigma + C)`` with ``mu`` and ``sigma`` the local mean
  and standard deviation under a 7x7 Gaussian window (sigma ``7/6``, borders replicated) and
  ``C = 1/255`` on the ``[0, 1]`` scale (``C = 1`` in 8-bit units);
* a generalised-Gaussian fit of ``m``: shape ``alpha`` and variance;
* for each of the four pairwise products of neighbouring MSCN coefficients (horizontal
  ``m[i,j] m[i,j+1]``, vertical ``m[i,j] m[i+1,j]``, main diagonal ``m[i,j] m[i+1,j+1]``,
  anti-diagonal ``m[i,j] m[i-1,j+1]``) an asymmetric generalised-Gaussian (AGGD) fit: shape,
  mean, left variance, right variance.

The fit is moment matching: with ``sigma_l^2`` (``sigma_r^2``) the mean square of the negative
(positive) values, ``g = sigma_l / sigma_r``, ``r = E|x|^2 / E[x^2]`` and
``R = r (g^3 + 1)(g + 1) / (g^2 + 1)^2``, the shape is the ``alpha`` on the grid
``0.2, 0.201, ... < 10`` whose ``rho(alpha) = Gamma(2/alpha)^2 / (Gamma(1/alpha) Gamma(3/alpha))``
is nearest to ``R`` (a precomputed table, searched with ``np.searchsorted``), and the AGGD mean
is ``(sigma_r - sigma_l) Gamma(2/alpha) / sqrt(Gamma(1/alpha) Gamma(3/alpha))``.

**Reference and agreement.** This follows OpenCV's ``cv2.quality.QualityBRISQUE_computeFeatures``
(opencv-contrib 5.x, itself a port of the LIVE release) choice for choice, so the two can be
compared number for number:

* OpenCV divides its input by 255 whatever the dtype, so it is fed the same ``uint8`` luminance
  (:func:`t2ieval.images.to_luminance`, PIL's ``L``); the colour-to-grey conversions of PIL and
  OpenCV differ by one grey level on some pixels, which is why the luminance is computed once
  here and handed to both;
* the MSCN "GGD" pair is OpenCV's: the AGGD fit of ``m`` (shape) and ``(sigma_l^2 + sigma_r^2)/2``
  (variance), not the symmetric GGD fit of the MATLAB release (the two coincide when both
  sides have the same spread and count);
* the half scale is ``cv2.resize(..., (W // 2, H // 2), INTER_CUBIC)``: Keys' cubic kernel with
  ``a = -0.75``, source coordinate ``(d + 0.5) * W / (W // 2) - 0.5``, replicated borders, no
  anti-aliasing prefilter; reproduced here by four gathered taps per axis;
* a product image has the size of the image, with zeros where the neighbour falls outside; the
  zeros count in ``E|x|`` and ``E[x^2]`` but in neither side's mean square, so the sums here run
  over the valid products and divide by the full pixel count.

OpenCV computes in ``float32``; this module in ``float64``. Agreement measured with
opencv-contrib-python-headless 5.1.0.95 (``tests/test_quality_nss.py`` keeps the first two):

* textured images (synthetic 512x512, 383x511, 130x97, and a real generated photo): every shape
  equal up to OpenCV's float32 output rounding (``<= 1.2e-7``), every other feature within
  ``6e-5`` relative (``4e-6`` absolute); the test asserts ``rtol=1e-4, atol=1e-5`` and a shape
  within one grid step, the margin left for float32 rounding;
* the 145 images of the avt-ai-images set: per image, the largest relative difference of the
  non-shape features (denominator floored at ``1e-3``) has median ``1e-3``, 25 % of images
  below ``1.2e-4``, 90 % below ``4.5e-2``, worst 3.7 (a near-zero AGGD mean); a shape differs
  by one grid step or more on 37 of the 145 images, by at most ``0.007``.

The drift grows with the share of smooth pixels (correlation 0.72 with the share whose local
variance is below ``1e-5``): there OpenCV's float32 ``E[x^2] - E[x]^2`` cancels (an absolute
error near ``1e-7`` is a local sd error near ``3e-4`` against ``C = 0.0039``), goes negative
(NaN after the square root; OpenCV's output stays finite), and flat patches get tiny non-zero
MSCN values of either sign that the sign-split moments count. Rebuilding OpenCV's float32 MSCN
map with ``cv2.GaussianBlur`` (NaN as 0) and applying this module's fits to it takes the three
worst images from 3.7, 1.6 and 1.2 to 0.16, 0.002 and 0.006 (shapes within one grid step): the
drift comes from OpenCV's float32 MSCN, not from the fits or the resize (which agrees with
``cv2.resize`` to ``2e-7``).

Here the local variance is clipped at zero, and ``|I - mu|`` below :data:`FLAT_EPS` (float64
rounding noise of a flat patch, ``< 1e-15``; the smallest real difference seen is ``1.8e-11``)
is set to exactly zero, so a flat patch contributes zeros as exact arithmetic would. A flat
image gives finite features: every shape ``0.2`` (the point-mass end of the grid) and zero
variances and means.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from scipy.ndimage import correlate1d
from scipy.special import gammaln

from t2ieval.quality._workspace import buffer, sum_of_squares

log = logging.getLogger(__name__)

GAUSSIAN_SIZE = 7
GAUSSIAN_SIGMA = 7.0 / 6.0
MSCN_C = 1.0 / 255.0
"""Stabilising constant of the MSCN divisor on the ``[0, 1]`` scale (1 grey level)."""
CUBIC_A = -0.75
"""Keys' cubic-convolution parameter used by ``cv2.resize(INTER_CUBIC)``."""
FLAT_EPS = 1e-13
"""``|I - mu|`` below this (on the ``[0, 1]`` scale) is rounding noise of a flat patch: set to 0.

Measured over the avt-ai-images set at both scales: float64 rounding noise stays below ``1e-15``,
the smallest real difference is ``1.8e-11``, and nothing falls in between."""
MIN_SIDE = 4
"""Smallest image side: the half-scale image must still have pairs of neighbours."""

_ORIENTATIONS = ("h", "v", "d1", "d2")


def _shape_grid() -> np.ndarray:
    """The shape grid ``0.2, 0.201, ...`` accumulated as the reference does (``gam += 0.001``)."""
    values = []
    gam = 0.2
    while gam < 10:
        values.append(gam)
        gam += 0.001
    return np.asarray(values, dtype=np.float64)


SHAPE_GRID: np.ndarray = _shape_grid()
"""Candidate shapes ``alpha`` (9801 values from 0.2 to just under 10)."""
_LG1 = gammaln(1.0 / SHAPE_GRID)
_LG2 = gammaln(2.0 / SHAPE_GRID)
_LG3 = gammaln(3.0 / SHAPE_GRID)
RHO_TABLE: np.ndarray = np.exp(2.0 * _LG2 - _LG1 - _LG3)
"""``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` on :data:`SHAPE_GRID`; strictly increasing."""
_MEAN_FACTOR: np.ndarray = np.exp(_LG2 - 0.5 * (_LG1 + _LG3))
"""``Gamma(2/a) / sqrt(Gamma(1/a) Gamma(3/a))``: AGGD mean per unit ``sigma_r - sigma_l``."""
assert np.all(np.diff(RHO_TABLE) > 0), "rho(alpha) must increase on the grid"


def feature_names() -> list[str]:
    """Names of the 36 features, in OpenCV's order: per scale ``s1`` (full), ``s2`` (half):
    ``mscn_alpha, mscn_var``, then ``alpha, mean, lvar, rvar`` for ``h, v, d1, d2``."""
    names: list[str] = []
    for scale in (1, 2):
        names += [f"nss_s{scale}_mscn_alpha", f"nss_s{scale}_mscn_var"]
        for o in _ORIENTATIONS:
            names += [f"nss_s{scale}_{o}_{p}" for p in ("alpha", "mean", "lvar", "rvar")]
    return names


N_FEATURES = 36


def _gaussian_kernel() -> np.ndarray:
    x = np.arange(GAUSSIAN_SIZE, dtype=np.float64) - (GAUSSIAN_SIZE - 1) / 2
    k = np.exp(-(x * x) / (2.0 * GAUSSIAN_SIGMA * GAUSSIAN_SIGMA))
    return k / k.sum()


_KERNEL = _gaussian_kernel()
_RADIUS = GAUSSIAN_SIZE // 2


def _blur_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Separable 7x7 Gaussian of ``x`` into ``out``, borders replicated (``BORDER_REPLICATE``).

    Along the rows the symmetric taps are summed over whole shifted row blocks (contiguous, fast);
    along the columns ``scipy.ndimage.correlate1d``. All temporaries are reused buffers.
    """
    h, w = x.shape
    r = _RADIUS
    pad = buffer("nss.pad", (h + 2 * r, w))
    pad[r : r + h] = x
    pad[:r] = x[0]
    pad[r + h :] = x[-1]
    rows = buffer("nss.rows", (h, w))
    term = buffer("nss.term", (h, w))
    np.multiply(pad[r : r + h], _KERNEL[r], out=rows)
    for k in range(1, r + 1):
        np.add(pad[r - k : r - k + h], pad[r + k : r + k + h], out=term)
        term *= _KERNEL[r + k]
        rows += term
    correlate1d(rows, _KERNEL, axis=1, output=out, mode="nearest")
    return out


def blur(x: np.ndarray) -> np.ndarray:
    """The MSCN window: 7x7 Gaussian, sigma 7/6, replicated borders (a new array)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    return _blur_into(x, np.empty_like(x))


@functools.lru_cache(maxsize=64)
def _cubic_taps(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (clamped) and weights, each ``(4, n_dst)``, of OpenCV's cubic resize."""
    scale = n_src / n_dst
    pos = (np.arange(n_dst, dtype=np.float64) + 0.5) * scale - 0.5
    base = np.floor(pos)
    t = pos - base
    a = CUBIC_A
    w = np.empty((4, n_dst), dtype=np.float64)
    w[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1
    w[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    w[3] = 1.0 - w[0] - w[1] - w[2]
    idx = np.clip(base.astype(np.intp)[None, :] + np.arange(-1, 3)[:, None], 0, n_src - 1)
    idx.setflags(write=False)
    w.setflags(write=False)
    return idx, w


def _resize_half_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    h, w = x.shape
    h2, w2 = out.shape
    hi, hw = _cubic_taps(h, h2)
    wi, ww = _cubic_taps(w, w2)
    rows = buffer("nss.rsz_rows", (h2, w))
    gather = buffer("nss.rsz_gather", (h2, w))
    rows.fill(0.0)
    for k in range(4):
        np.take(x, hi[k], axis=0, out=gather, mode="clip")
        gather *= hw[k][:, None]
        rows += gather
    gather2 = buffer("nss.rsz_gather2", (h2, w2))
    out.fill(0.0)
    for k in range(4):
        np.take(rows, wi[k], axis=1, out=gather2, mode="clip")
        gather2 *= ww[k][None, :]
        out += gather2
    return out


def resize_half_cubic(x: np.ndarray) -> np.ndarray:
    """``cv2.resize(x, (W // 2, H // 2), interpolation=cv2.INTER_CUBIC)`` in float64 (new array)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    return _resize_half_into(x, np.empty((x.shape[0] // 2, x.shape[1] // 2)))


def _mscn_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    shape = x.shape
    mu = _blur_into(x, buffer("nss.mu", shape))
    sq = buffer("nss.sq", shape)
    np.multiply(x, x, out=sq)
    sd = _blur_into(sq, buffer("nss.sd", shape))
    np.multiply(mu, mu, out=sq)
    sd -= sq
    np.maximum(sd, 0.0, out=sd)
    np.sqrt(sd, out=sd)
    sd += MSCN_C
    np.subtract(x, mu, out=out)
    # on a flat patch x - mu is float64 rounding noise (< 1e-15) instead of 0; real differences
    # are 1e-11 and up (FLAT_EPS docstring), so snap the noise to the exact 0
    np.abs(out, out=sq)
    flat = buffer("nss.flat", shape, np.bool_)
    np.less(sq, FLAT_EPS, out=flat)
    np.copyto(out, 0.0, where=flat)
    out /= sd
    return out


def mscn(x: np.ndarray) -> np.ndarray:
    """MSCN coefficients of a ``[0, 1]`` float image (a new array; local variance clipped at 0)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    return _mscn_into(x, np.empty_like(x))


def _shape_index(rho: float) -> int:
    """Grid index whose ``rho(alpha)`` is nearest ``rho``; on an exact tie the larger shape, as the
    reference's upward scan (which stops at the first increase of the distance) does."""
    k = int(np.searchsorted(RHO_TABLE, rho, side="left"))
    if k <= 0:
        return 0
    if k >= len(RHO_TABLE):
        return len(RHO_TABLE) - 1
    return k if RHO_TABLE[k] - rho <= rho - RHO_TABLE[k - 1] else k - 1


def aggd_fit(values: np.ndarray, total: int | None = None) -> tuple[float, float, float, float]:
    """Asymmetric generalised-Gaussian fit: ``(alpha, mean, left_var, right_var)``.

    ``values`` is any array; ``total`` (default ``values.size``) is the count the moments divide
    by, larger when zeros outside the array belong to the sample (the products' borders). Values
    equal to zero count in ``total`` but in neither side's mean square. With no non-zero value
    (a flat image) the fit is ``(0.2, 0, 0, 0)``.
    """
    v = np.ascontiguousarray(values, dtype=np.float64).ravel()
    n = v.size if total is None else int(total)
    if n < v.size:
        raise ValueError(f"aggd_fit: total {n} is smaller than the {v.size} values")
    neg = buffer("nss.neg", v.shape)
    np.minimum(v, 0.0, out=neg)
    mask = buffer("nss.mask", v.shape, np.bool_)
    sq_all = sum_of_squares(v)
    sq_neg = sum_of_squares(neg)
    sq_pos = sq_all - sq_neg
    abs_sum = float(v.sum()) - 2.0 * float(neg.sum())
    n_neg = int(np.count_nonzero(np.less(v, 0.0, out=mask)))
    n_pos = int(np.count_nonzero(np.greater(v, 0.0, out=mask)))
    if sq_all <= 0.0 or n == 0:
        return float(SHAPE_GRID[0]), 0.0, 0.0, 0.0
    var_l = sq_neg / n_neg if n_neg else 0.0
    var_r = sq_pos / n_pos if n_pos else 0.0
    sig_l, sig_r = float(np.sqrt(var_l)), float(np.sqrt(var_r))
    # g = sigma_l / sigma_r; the correction below is symmetric in g <-> 1/g and tends to 1 at
    # g = 0 and g = inf, so an empty side (g = 0 or inf) is handled as g = 0
    g = sig_l / sig_r if (sig_l > 0 and sig_r > 0) else 0.0
    r_hat = (abs_sum / n) ** 2 / (sq_all / n)
    rho = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    k = _shape_index(rho)
    mean = (sig_r - sig_l) * float(_MEAN_FACTOR[k])
    return float(SHAPE_GRID[k]), float(mean), float(var_l), float(var_r)


def _scale_features(x: np.ndarray, out: np.ndarray) -> None:
    """The 18 features of one scale of a ``[0, 1]`` float image into ``out``."""
    h, w = x.shape
    n = h * w
    m = _mscn_into(x, buffer("nss.mscn", (h, w)))
    alpha, _, var_l, var_r = aggd_fit(m)
    out[0] = alpha
    out[1] = (var_l + var_r) / 2.0
    prod = buffer("nss.prod", (n,))
    pairs = (
        (m[:, :-1], m[:, 1:]),  # horizontal: m[i, j] m[i, j+1]
        (m[:-1, :], m[1:, :]),  # vertical:   m[i, j] m[i+1, j]
        (m[:-1, :-1], m[1:, 1:]),  # diagonal:   m[i, j] m[i+1, j+1]
        (m[1:, :-1], m[:-1, 1:]),  # anti-diag:  m[i, j] m[i-1, j+1]
    )
    for k, (a, b) in enumerate(pairs):
        p = prod[: a.size].reshape(a.shape)
        np.multiply(a, b, out=p)
        out[2 + 4 * k : 6 + 4 * k] = aggd_fit(p, total=n)


def _check_luminance(gray: np.ndarray) -> np.ndarray:
    arr = np.asarray(gray)
    if arr.ndim != 2:
        raise ValueError(
            f"BRISQUE features need a 2-D luminance array [row, column], got shape {arr.shape}"
        )
    if arr.dtype != np.uint8:
        raise ValueError(
            f"BRISQUE features need uint8 luminance (t2ieval.images.to_luminance), "
            f"got dtype {arr.dtype}"
        )
    if min(arr.shape) < MIN_SIDE:
        raise ValueError(
            f"BRISQUE features need an image of at least {MIN_SIDE}x{MIN_SIDE} "
            f"pixels, got {arr.shape[1]}x{arr.shape[0]} (columns x rows)"
        )
    return arr


def luminance_to_unit(gray: np.ndarray) -> np.ndarray:
    """8-bit luminance as float64 in ``[0, 1]`` (OpenCV's ``convertTo(CV_32F, 1/255)``)."""
    return _check_luminance(gray) * (1.0 / 255.0)


def brisque_features(gray: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features (:func:`feature_names` order) of an 8-bit luminance array.

    Raises ``ValueError`` for an array that is not 2-D ``uint8`` or smaller than 4x4.
    """
    arr = _check_luminance(gray)
    x = buffer("nss.x", arr.shape)
    np.multiply(arr, 1.0 / 255.0, out=x)
    out = np.empty(N_FEATURES, dtype=np.float64)
    _scale_features(x, out[:18])
    half = _resize_half_into(x, buffer("nss.half", (arr.shape[0] // 2, arr.shape[1] // 2)))
    _scale_features(half, out[18:])
    return out
