"""Ordinal-pattern (Bandt-Pompe) entropy and statistical complexity of 2-D images.

The quantities follow Sigaki, Perc & Ribeiro (PNAS 2018) as ``docs/method.md`` defines them, and
match ``ordpy.complexity_entropy`` (the reference implementation by the same authors) to rounding
error:

* the image is a 2-D array indexed ``[row, column]``; a window has ``dx`` pixels along the columns
  and ``dy`` along the rows, with embedding delays ``taux`` and ``tauy``;
* each window is flattened row-major (``x_k`` with ``k = r * dx + c``) and mapped to its ordinal
  pattern;
* **tie rule**: equal values are ordered by their position in the flattened window, the earlier
  one first. That is what ``ordpy`` does (``np.argsort(kind="stable")``), so a flat patch maps to
  the identity pattern.

Instead of argsorting every window, the pattern is encoded by its Lehmer code: for the ranks
induced by the tie rule, element ``i`` outranks a later element ``j > i`` exactly when
``x_j < x_i`` (strictly), so ``L_i = #{j > i : x_j < x_i}`` and ``code = sum_i L_i (m-1-i)!`` is a
bijection between the ``m!`` patterns (``m = dx * dy``) and ``0 .. m!-1``. Every ``x_k`` over all
windows is just a shifted slice of the image, so the codes of all windows take ``m(m-1)/2``
vectorised comparisons, and ``np.bincount`` gives the distribution. Rows of windows are processed in
chunks so that memory stays bounded on large images.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from t2ieval.entropy.spec import FeatureSpec, check_window
from t2ieval.images import to_luminance

log = logging.getLogger(__name__)

_BINCOUNT_MAX_STATES = math.factorial(10)
"""Up to this many patterns the histogram is a dense ``np.bincount``; beyond, ``np.unique``."""

_CHUNK_WINDOWS = 1 << 19
"""About this many windows are encoded at once (bounds the temporary arrays to a few MB)."""


def _as_image_array(gray: object) -> np.ndarray:
    arr = np.asarray(gray)
    if arr.ndim != 2:
        raise ValueError(
            f"complexity_entropy expects a 2-D array [row, column] (e.g. 8-bit luminance from "
            f"t2ieval.images.to_luminance), got shape {arr.shape}"
        )
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"complexity_entropy expects a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("complexity_entropy: the array holds NaN or infinite values")
    return arr


def pattern_counts(
    gray: np.ndarray,
    dx: int = 2,
    dy: int = 2,
    taux: int = 1,
    tauy: int = 1,
    chunk_windows: int = _CHUNK_WINDOWS,
) -> np.ndarray:
    """Occurrence count of every ordinal pattern that occurs in ``gray`` (zeros dropped).

    The order of the returned counts is that of the patterns' Lehmer codes; only the multiset of
    counts matters for entropy and complexity. About ``chunk_windows`` windows (at least one row
    of them) are encoded at a time. Raises ``ValueError`` for a non-2-D array or a window that
    does not fit in the image.
    """
    check_window(dx, dy, taux, tauy)
    arr = _as_image_array(gray)
    n_rows, n_cols = arr.shape
    span_y = (dy - 1) * tauy + 1
    span_x = (dx - 1) * taux + 1
    out_rows = n_rows - span_y + 1
    out_cols = n_cols - span_x + 1
    if out_rows < 1 or out_cols < 1:
        raise ValueError(
            f"window dx={dx}, dy={dy}, taux={taux}, tauy={tauy} spans {span_x} columns x {span_y} "
            f"rows, larger than the {n_cols} x {n_rows} (columns x rows) image"
        )
    m = dx * dy
    n_states = math.factorial(m)
    code_dtype = np.int32 if n_states <= np.iinfo(np.int32).max else np.int64
    weights = [math.factorial(m - 1 - i) for i in range(m)]
    offsets = [(r * tauy, c * taux) for r in range(dy) for c in range(dx)]  # row-major flatten
    dense = n_states <= _BINCOUNT_MAX_STATES
    counts = np.zeros(n_states, dtype=np.int64) if dense else None
    sparse_codes: list[np.ndarray] = []
    sparse_counts: list[np.ndarray] = []

    chunk_rows = max(1, int(chunk_windows) // out_cols)
    for r0 in range(0, out_rows, chunk_rows):
        r1 = min(out_rows, r0 + chunk_rows)
        # x[k] = value of window element k for every window whose top-left row is in [r0, r1)
        x = [arr[r0 + oy : r1 + oy, ox : ox + out_cols] for oy, ox in offsets]
        code = np.zeros((r1 - r0, out_cols), dtype=code_dtype)
        lehmer = np.empty((r1 - r0, out_cols), dtype=code_dtype)
        less = np.empty((r1 - r0, out_cols), dtype=bool)
        for i in range(m - 1):
            lehmer.fill(0)
            for j in range(i + 1, m):
                np.less(x[j], x[i], out=less)
                lehmer += less
            if weights[i] != 1:
                lehmer *= weights[i]
            code += lehmer
        if dense:
            counts += np.bincount(code.ravel(), minlength=n_states)
        else:
            uniq, cnt = np.unique(code.ravel(), return_counts=True)
            sparse_codes.append(uniq)
            sparse_counts.append(cnt)
    if dense:
        return counts[counts > 0]
    codes = np.concatenate(sparse_codes)
    cnts = np.concatenate(sparse_counts)
    uniq, inverse = np.unique(codes, return_inverse=True)
    return np.bincount(inverse, weights=cnts, minlength=len(uniq)).astype(np.int64)


def entropy_complexity_from_counts(counts: np.ndarray, n_states: int) -> tuple[float, float]:
    """Normalised permutation entropy H and statistical complexity C from pattern counts.

    ``counts`` holds the occurrences of the patterns that occur (zeros are ignored); ``n_states``
    is the number ``(dx*dy)!`` of possible patterns. The arithmetic is ``ordpy``'s, term for term.
    """
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    if counts.size == 0:
        raise ValueError("no ordinal patterns counted")
    n = float(n_states)
    probabilities = counts / counts.sum()
    s = -np.sum(probabilities * np.log(probabilities))
    h = s / np.log(n)

    n_missing = n - len(probabilities)
    uniform = 1.0 / n
    p_plus_u_over_2 = (uniform + probabilities) / 2
    s_of_p_plus_u_over_2 = (
        -np.sum(p_plus_u_over_2 * np.log(p_plus_u_over_2))
        - (0.5 * uniform) * np.log(0.5 * uniform) * n_missing
    )
    s_of_p_over_2 = -np.sum(probabilities * np.log(probabilities)) / 2
    s_of_u_over_2 = np.log(n) / 2.0
    js_div_max = -0.5 * (((n + 1) / n) * np.log(n + 1) + np.log(n) - 2 * np.log(2 * n))
    js_div = s_of_p_plus_u_over_2 - s_of_p_over_2 - s_of_u_over_2
    # a single pattern gives -0.0 for h; report it as +0.0
    return float(h) + 0.0, float(h * js_div / js_div_max) + 0.0


def complexity_entropy(
    gray: np.ndarray, dx: int = 2, dy: int = 2, taux: int = 1, tauy: int = 1
) -> tuple[float, float]:
    """Normalised permutation entropy ``H`` and statistical complexity ``C`` of a 2-D image.

    Args:
        gray: 2-D array indexed ``[row, column]``, normally the ``uint8`` luminance of
            :func:`t2ieval.images.to_luminance` (integers make ties exact).
        dx: window width (pixels along the columns); ``dy``: window height (along the rows).
        taux, tauy: embedding delays along columns and rows (1 = adjacent pixels).

    Returns:
        ``(H, C)``, both in ``[0, 1]``, equal to ``ordpy.complexity_entropy(gray, dx, dy, taux,
        tauy)`` up to rounding.

    Raises:
        ValueError: for an array that is not 2-D, holds NaN, or is smaller than the window, or for
            ``dx * dy < 2``.

    A constant image (or any image whose windows are all flat) has a single ordinal pattern (the
    identity, by the tie rule), so it returns ``(0.0, 0.0)``, as ``ordpy`` does.
    """
    counts = pattern_counts(gray, dx, dy, taux, tauy)
    h, c = entropy_complexity_from_counts(counts, math.factorial(dx * dy))
    if len(counts) == 1:
        log.debug("image has a single ordinal pattern (flat image): H = C = 0")
    return h, c


def feature_specs(features: Iterable[object]) -> tuple[FeatureSpec, ...]:
    """Normalise a feature list (params dataclasses, mappings, specs); at least one, no repeats."""
    specs = tuple(FeatureSpec.from_any(f) for f in features)
    if not specs:
        raise ValueError("entropy.features is empty: configure at least one (dx, dy, ...) feature")
    seen: set[FeatureSpec] = set()
    for spec in specs:
        if spec in seen:
            raise ValueError(f"entropy.features lists {spec.to_dict()} twice")
        seen.add(spec)
    return specs


def feature_columns(features: Iterable[object]) -> list[str]:
    """Column names of the feature vector: ``H_<suffix>, C_<suffix>`` per feature, in order."""
    return [col for spec in feature_specs(features) for col in spec.columns]


def downsample(gray: np.ndarray, scale: int) -> np.ndarray:
    """Luminance reduced by an integer ``scale`` with PIL's box filter (``Image.reduce``).

    ``scale == 1`` returns the array unchanged. The result stays ``uint8``, so ties keep the same
    meaning at every scale.
    """
    if scale == 1:
        return gray
    if gray.dtype != np.uint8:
        raise ValueError(f"downsample expects uint8 luminance, got {gray.dtype}")
    return np.asarray(Image.fromarray(gray, mode="L").reduce(scale), dtype=np.uint8)


def luminance_features(gray: np.ndarray, features: Sequence[object]) -> np.ndarray:
    """Feature vector ``[H_1, C_1, H_2, C_2, ...]`` of an 8-bit luminance array."""
    specs = feature_specs(features)
    out = np.empty(2 * len(specs), dtype=np.float64)
    reduced: dict[int, np.ndarray] = {}
    for k, spec in enumerate(specs):
        if spec.scale not in reduced:
            reduced[spec.scale] = downsample(gray, spec.scale)
        img = reduced[spec.scale]
        try:
            out[2 * k], out[2 * k + 1] = complexity_entropy(
                img, spec.dx, spec.dy, spec.taux, spec.tauy
            )
        except ValueError as exc:
            raise ValueError(
                f"feature {spec.suffix} on the {gray.shape[1]}x{gray.shape[0]} image "
                f"(downsampled to {img.shape[1]}x{img.shape[0]}): {exc}"
            ) from exc
    return out


def image_features(img: Image.Image, features: Sequence[object]) -> np.ndarray:
    """Feature vector of a PIL image: 8-bit luminance, then :func:`luminance_features`.

    The quality branch's ``entropy`` family (:mod:`t2ieval.quality.families`) computes the same
    from the same luminance, for the stage and the served model alike.
    """
    return luminance_features(to_luminance(img), features)
