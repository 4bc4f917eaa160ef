"""Handcrafted image-quality and aesthetics features, as the pre-2016 surveys list them.

Every feature is a deterministic function of the 8-bit RGB pixels ``R, G, B`` and the 8-bit
luminance ``L`` (PIL's ``L``, ``(299 R + 587 G + 114 B) / 1000``, from
:func:`t2ieval.images.to_luminance`), both indexed ``[row, column]``. Means and sums run over
the pixels named; grey levels are 0..255.
The features, in :func:`feature_names` order:

``hc_sharp_s1``, ``hc_sharp_s2``
    Sharpness: ``log(1 + Var(lap L))`` with the 4-neighbour Laplacian
    ``lap L[i,j] = L[i-1,j] + L[i+1,j] + L[i,j-1] + L[i,j+1] - 4 L[i,j]`` over interior pixels
    (Pech-Pacheco et al. 2000), at full resolution (``s1``) and on the 2x2 block mean (``s2``).
    The logarithm (monotone, 0 for a flat image) tames the heavy tail for linear models.
``hc_edge_density``
    Share of interior pixels whose central-difference gradient magnitude
    ``sqrt(((L[i,j+1] - L[i,j-1]) / 2)^2 + ((L[i+1,j] - L[i-1,j]) / 2)^2)`` exceeds
    :data:`EDGE_THRESHOLD` grey levels per pixel: a Canny-free edge density with a fixed
    threshold chosen a priori (not tuned on any data).
``hc_colourfulness``
    Hasler & Suesstrunk (2003): with ``rg = R - G`` and ``yb = (R + G) / 2 - B``,
    ``M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)`` (population sd).
``hc_sat_mean``, ``hc_sat_sd``, ``hc_bright_mean``, ``hc_bright_sd``
    HSV saturation ``S = (max - min) / max`` (0 where ``max = 0``) and value
    ``V = max(R, G, B) / 255``: mean and population sd over pixels.
``hc_hue_cos``, ``hc_hue_sin``, ``hc_hue_circ_sd``
    Circular statistics of hue. Hue is the angle in the opponent chromaticity plane,
    ``h = atan2(b, a)`` with ``a = R - (G + B) / 2``, ``b = (sqrt(3) / 2)(G - B)`` (HSV's hexcone
    hue is a piecewise-linear approximation of it), and each pixel is weighted by its chroma
    ``c = sqrt(a^2 + b^2)``, so grey pixels, whose hue is undefined, carry no weight. The mean
    resultant vector is ``(sum c cos h, sum c sin h) / sum c = (sum a, sum b) / sum c``: its
    components are ``hue_cos`` and ``hue_sin`` (no wrap-around at 0/360 degrees; both 0 for a grey
    image), its length ``R`` gives the circular sd ``sqrt(-2 ln R)`` with ``R`` floored at
    :data:`MIN_RESULTANT` (a grey image has the maximal ``sqrt(-2 ln 1e-6) = 5.26``).
``hc_rms_contrast``, ``hc_spread``
    RMS contrast ``sd(L) / 255`` and the percentile spread ``(P95(L) - P5(L)) / 255``
    (percentiles by the inverted empirical CDF of the 8-bit histogram).
``hc_clip_low``, ``hc_clip_high``
    Share of pixels with ``L <= 2`` and with ``L >= 253`` (crushed shadows, blown highlights).
``hc_noise_sigma``
    Immerkaer (1996) fast noise estimate, in grey levels:
    ``sigma = sqrt(pi / 2) / (6 (W - 2)(H - 2)) * sum |L * N|`` with the mask
    ``N = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` over interior pixels (the variance is its
    square).
``hc_blockiness``
    JPEG blockiness: with ``D_h[i,j] = |L[i,j+1] - L[i,j]|`` and ``D_v[i,j] = |L[i+1,j] - L[i,j]|``,
    the mean of the differences that straddle an 8x8 grid line (``j = 7, 15, ...`` for ``D_h``,
    ``i = 7, 15, ...`` for ``D_v``) over the mean of all other differences, as
    ``log((boundary + 0.001) / (interior + 0.001))``: 0 for a flat image or no grid, positive
    when block edges stand out. The grid is anchored at the top-left pixel, as a JPEG encoder's is.

Integer arithmetic is exact; means and sds are two-pass in float64, on grey levels where the
data are integers, so a flat image gives exactly 0 for sharpness, edges, contrast, spread,
colourfulness, saturation, the sds, noise and blockiness.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from PIL import Image

from t2ieval.images import to_luminance
from t2ieval.quality._workspace import buffer, sum_of_squares

log = logging.getLogger(__name__)

EDGE_THRESHOLD = 20.0
"""Gradient magnitude (grey levels per pixel, central differences) above which a pixel is an
edge."""
CLIP_LOW = 2
CLIP_HIGH = 253
MIN_RESULTANT = 1e-6
BLOCK = 8
BLOCK_EPS = 1e-3
MIN_SIDE = 6
"""Smallest image side: the half-resolution Laplacian needs a 3x3 image."""

FEATURE_NAMES: tuple[str, ...] = (
    "hc_sharp_s1",
    "hc_sharp_s2",
    "hc_edge_density",
    "hc_colourfulness",
    "hc_sat_mean",
    "hc_sat_sd",
    "hc_bright_mean",
    "hc_bright_sd",
    "hc_hue_cos",
    "hc_hue_sin",
    "hc_hue_circ_sd",
    "hc_rms_contrast",
    "hc_spread",
    "hc_clip_low",
    "hc_clip_high",
    "hc_noise_sigma",
    "hc_blockiness",
)


def feature_names() -> list[str]:
    """Names of the handcrafted features, in the order :func:`handcrafted_features` returns."""
    return list(FEATURE_NAMES)


def _mean_sd(x: np.ndarray) -> tuple[float, float]:
    """Mean and population sd of a float64 scratch array, two-pass; **overwrites** ``x``.

    Two passes (deviations from the mean, then their squares) avoid the cancellation of
    ``E[x^2] - E[x]^2``; on integer-valued data (grey levels) the sum is exact, so a constant
    array has sd exactly 0.
    """
    v = x.reshape(-1)
    n = v.size
    mean = float(v.sum()) / n
    v -= mean
    return mean, math.sqrt(sum_of_squares(v) / n)


def laplacian_variance(lum: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels of a 2-D array."""
    x = np.asarray(lum, dtype=np.float64)
    h, w = x.shape
    lap = buffer("hc.lap", (h - 2, w - 2))
    np.add(x[:-2, 1:-1], x[2:, 1:-1], out=lap)
    lap += x[1:-1, :-2]
    lap += x[1:-1, 2:]
    centre = x[1:-1, 1:-1]
    for _ in range(4):
        lap -= centre
    return _mean_sd(lap)[1] ** 2


def _block_mean(x: np.ndarray) -> np.ndarray:
    """2x2 block mean (odd last row/column dropped)."""
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    out = buffer("hc.half", (h // 2, w // 2))
    np.add(x[0:h:2, 0:w:2], x[1:h:2, 0:w:2], out=out)
    out += x[0:h:2, 1:w:2]
    out += x[1:h:2, 1:w:2]
    out *= 0.25
    return out


def edge_density(lum: np.ndarray, threshold: float = EDGE_THRESHOLD) -> float:
    """Share of interior pixels whose central-difference gradient magnitude exceeds
    ``threshold``."""
    x = np.asarray(lum, dtype=np.int32)
    h, w = x.shape
    gx = buffer("hc.gx", (h - 2, w - 2), np.int32)
    gy = buffer("hc.gy", (h - 2, w - 2), np.int32)
    np.subtract(x[1:-1, 2:], x[1:-1, :-2], out=gx)
    np.subtract(x[2:, 1:-1], x[:-2, 1:-1], out=gy)
    gx *= gx
    gy *= gy
    gx += gy
    # |grad|^2 = (gx^2 + gy^2) / 4 > t^2  <=>  gx^2 + gy^2 > 4 t^2
    return float(np.count_nonzero(gx > 4.0 * threshold * threshold)) / gx.size


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness ``M`` of an 8-bit RGB array ``(H, W, 3)``."""
    rgb = _check_rgb(rgb)
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b  # half grey levels: sums stay exact
    m_rg, s_rg = _mean_sd(rg)
    m_yb, s_yb = _mean_sd(yb)
    return math.hypot(s_rg, s_yb) + 0.3 * math.hypot(m_rg, m_yb)


def immerkaer_sigma(lum: np.ndarray) -> float:
    """Immerkaer (1996) noise standard deviation (grey levels) of a 2-D array, >= 3x3."""
    x = np.asarray(lum, dtype=np.int32)
    h, w = x.shape
    d = buffer("hc.d2", (h, w - 2), np.int32)
    np.add(x[:, :-2], x[:, 2:], out=d)
    d -= 2 * x[:, 1:-1]
    e = buffer("hc.e2", (h - 2, w - 2), np.int32)
    np.add(d[:-2], d[2:], out=e)
    e -= 2 * d[1:-1]
    np.abs(e, out=e)
    total = float(e.sum(dtype=np.int64))
    return math.sqrt(math.pi / 2.0) * total / (6.0 * (w - 2) * (h - 2))


def blockiness(lum: np.ndarray, block: int = BLOCK, eps: float = BLOCK_EPS) -> float:
    """``log((boundary + eps) / (interior + eps))`` of mean absolute neighbour differences on an
    8x8 grid anchored at the top-left pixel; 0 when the image has no grid line."""
    x = np.asarray(lum, dtype=np.int16)
    h, w = x.shape
    boundary_sum = interior_sum = 0.0
    boundary_n = interior_n = 0
    for axis, length, other in ((1, w, h), (0, h, w)):
        if length < 2:
            continue
        d = np.abs(np.diff(x, axis=axis))
        line = d.sum(axis=1 - axis, dtype=np.int64)  # one sum per difference position
        at_edge = (np.arange(length - 1) % block) == block - 1
        boundary_sum += float(line[at_edge].sum())
        interior_sum += float(line[~at_edge].sum())
        boundary_n += int(at_edge.sum()) * other
        interior_n += int((~at_edge).sum()) * other
    if boundary_n == 0 or interior_n == 0:
        return 0.0
    return math.log((boundary_sum / boundary_n + eps) / (interior_sum / interior_n + eps))


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(
            f"handcrafted features need an RGB array (rows, columns, 3), got shape {arr.shape}"
        )
    if arr.dtype != np.uint8:
        raise ValueError(f"handcrafted features need 8-bit RGB (uint8), got dtype {arr.dtype}")
    if min(arr.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"handcrafted features need an image of at least {MIN_SIDE}x{MIN_SIDE} "
            f"pixels, got {arr.shape[1]}x{arr.shape[0]} (columns x rows)"
        )
    return arr


def _luminance_of(rgb: np.ndarray) -> np.ndarray:
    return to_luminance(Image.fromarray(rgb, mode="RGB"))


def handcrafted_features(rgb: np.ndarray, lum: np.ndarray | None = None) -> np.ndarray:
    """The handcrafted feature vector (:func:`feature_names` order) of an 8-bit RGB array.

    ``lum`` is the image's 8-bit luminance (:func:`t2ieval.images.to_luminance`); computed from
    ``rgb`` when not given. Raises ``ValueError`` for a non-``uint8`` or non-RGB array, a
    luminance of another shape, or an image smaller than 6x6.
    """
    rgb = _check_rgb(rgb)
    h, w = rgb.shape[:2]
    if lum is None:
        lum = _luminance_of(rgb)
    lum = np.asarray(lum)
    if lum.shape != (h, w) or lum.dtype != np.uint8:
        raise ValueError(
            f"luminance must be uint8 of shape {(h, w)} like the RGB image, got "
            f"{lum.dtype} {lum.shape}"
        )
    out = np.empty(len(FEATURE_NAMES), dtype=np.float64)
    n = h * w

    # luminance-based: sharpness at two scales, edges, noise, blockiness
    lf = buffer("hc.lum", (h, w))
    np.copyto(lf, lum)
    out[0] = math.log1p(laplacian_variance(lf))
    out[1] = math.log1p(laplacian_variance(_block_mean(lf)))
    out[2] = edge_density(lum)
    out[15] = immerkaer_sigma(lum)
    out[16] = blockiness(lum)
    out[11] = _mean_sd(lf)[1] / 255.0  # overwrites lf, not needed after
    hist = np.bincount(lum.ravel(), minlength=256)
    cdf = np.cumsum(hist)
    p5 = int(np.searchsorted(cdf, 0.05 * n, side="left"))
    p95 = int(np.searchsorted(cdf, 0.95 * n, side="left"))
    out[12] = (p95 - p5) / 255.0
    out[13] = float(cdf[CLIP_LOW]) / n
    out[14] = float(n - cdf[CLIP_HIGH - 1]) / n

    # colour: planes as float64 (reused buffers), then moments by sums and dot products
    r = buffer("hc.r", (h, w))
    g = buffer("hc.g", (h, w))
    b = buffer("hc.b", (h, w))
    np.copyto(r, rgb[..., 0])
    np.copyto(g, rgb[..., 1])
    np.copyto(b, rgb[..., 2])
    t1 = buffer("hc.t1", (h, w))
    t2 = buffer("hc.t2", (h, w))
    np.subtract(r, g, out=t1)  # rg
    np.add(r, g, out=t2)
    t2 *= 0.5
    t2 -= b  # yb
    m_rg, s_rg = _mean_sd(t1)
    m_yb, s_yb = _mean_sd(t2)
    out[3] = math.hypot(s_rg, s_yb) + 0.3 * math.hypot(m_rg, m_yb)

    # hue: a = R - (G + B) / 2, b' = sqrt(3) / 2 (G - B), chroma c = sqrt(a^2 + b'^2)
    np.add(g, b, out=t1)
    t1 *= -0.5
    t1 += r  # a
    np.subtract(g, b, out=t2)
    t2 *= math.sqrt(3.0) / 2.0  # b'
    sum_a = float(t1.sum())
    sum_b = float(t2.sum())
    t1 *= t1
    t2 *= t2
    t1 += t2
    np.sqrt(t1, out=t1)  # chroma c
    sum_c = float(t1.sum())
    if sum_c > 0:
        hue_cos, hue_sin = sum_a / sum_c, sum_b / sum_c
    else:
        hue_cos = hue_sin = 0.0
    resultant = min(max(math.hypot(hue_cos, hue_sin), MIN_RESULTANT), 1.0)
    out[8], out[9] = hue_cos, hue_sin
    out[10] = math.sqrt(-2.0 * math.log(resultant))

    # HSV value and saturation
    np.maximum(r, g, out=t1)
    np.maximum(t1, b, out=t1)  # max
    np.minimum(r, g, out=t2)
    np.minimum(t2, b, out=t2)  # min
    np.subtract(t1, t2, out=t2)  # max - min
    sat = buffer("hc.sat", (h, w))
    sat.fill(0.0)
    np.divide(t2, t1, out=sat, where=t1 > 0)
    out[4], out[5] = _mean_sd(sat)
    mean_v, sd_v = _mean_sd(t1)  # in grey levels: exact for flat images
    out[6], out[7] = mean_v / 255.0, sd_v / 255.0
    return out


def image_handcrafted_features(img: Image.Image) -> np.ndarray:
    """:func:`handcrafted_features` of a PIL image (converted to RGB first)."""
    rgb_img = img.convert("RGB")
    return handcrafted_features(np.asarray(rgb_img, dtype=np.uint8), to_luminance(rgb_img))
