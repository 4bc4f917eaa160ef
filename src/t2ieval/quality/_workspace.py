"""Per-thread scratch arrays reused from one image to the next.

Why: the feature code works on whole-image temporaries (2 MB each for a 512x512 ``float64``
array). Allocated afresh, such arrays are returned to the operating system when freed and their
pages fault in again on the next image: measured here, a 7-tap blur spent 3.7 ms in about 2,000
minor page faults against 0.5 ms for the same arithmetic into reused buffers. Reusing a few named
buffers per thread removes that cost.

Buffers are cached per thread (so joblib worker threads never share one) and only up to
:data:`MAX_CACHED_BYTES` each; a larger request gets a fresh, uncached array, so a huge image does
not leave hundreds of megabytes behind. A buffer is scratch: its contents are undefined on return
from :func:`buffer`, and no public function returns one to its caller.
"""

from __future__ import annotations

import threading

import numpy as np

MAX_CACHED_BYTES = 8 * 1024 * 1024
"""Largest buffer kept between calls (a 1024x1024 ``float64`` array)."""

_local = threading.local()


def buffer(name: str, shape: tuple[int, ...], dtype: type | np.dtype = np.float64) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, reused per thread by
    ``name`` when it fits in :data:`MAX_CACHED_BYTES`. Callers must not hold two live uses of one
    name."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > MAX_CACHED_BYTES:
        return np.empty(shape, dtype=dtype)
    cache: dict[str, np.ndarray] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    arr = cache.get(name)
    if arr is None or arr.dtype != dtype or arr.size < nbytes // dtype.itemsize:
        arr = np.empty(nbytes // dtype.itemsize, dtype=dtype)
        cache[name] = arr
    return arr[: nbytes // dtype.itemsize].reshape(shape)


def sum_of_squares(v: np.ndarray) -> float:
    """``sum(v * v)`` of a 1-D float64 array by NumPy's pairwise summation, the same bits on
    every run.

    Not ``np.dot``: BLAS may split a dot product over its own thread pool, which the feature
    threads share, and its kernel is chosen by CPU. A precaution, not a measured failure: runs
    of ``quality_features`` on one machine gave the same bytes; what differed (last digits of a
    few NSS features) was this machine's output against a lock written on another machine, the
    CPU-kernel difference :mod:`t2ieval.runtime` pins.
    """
    sq = buffer("sum_of_squares", v.shape)
    np.multiply(v, v, out=sq)
    return float(sq.sum())


def clear() -> None:
    """Drop this thread's cached buffers."""
    if hasattr(_local, "cache"):
        _local.cache.clear()
