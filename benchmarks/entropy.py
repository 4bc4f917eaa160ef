"""Benchmark: t2ieval's vectorised complexity_entropy against ordpy on a 512x512 image.

Run from the project root: ``python benchmarks/entropy.py [--size 512] [--repeats 5]``.
Prints, for each window, the best-of-``repeats`` time of both implementations, their ratio and the
largest difference of (H, C) (which must stay below 1e-9). ``ordpy`` is a test dependency.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from scenes import scene

from t2ieval.entropy.features import complexity_entropy
from t2ieval.images import to_luminance

CONFIGS = [(2, 2, 1, 1), (3, 2, 1, 1), (2, 3, 1, 1), (2, 2, 2, 1), (3, 3, 1, 1)]


def realistic_image(size: int, seed: int = 0) -> np.ndarray:
    """8-bit luminance of :func:`scenes.scene` (flat areas give many ties)."""
    return to_luminance(scene(size, seed))


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    import ordpy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    images = {
        "realistic": realistic_image(args.size),
        "random": np.random.default_rng(1).integers(0, 256, (args.size, args.size), dtype=np.uint8),
    }
    print(
        f"{'image':10s} {'dx,dy,tx,ty':12s} {'ordpy s':>9s} {'t2ieval s':>10s} {'ratio':>7s}"
        f" {'max |diff|':>11s}"
    )
    for name, gray in images.items():
        for dx, dy, taux, tauy in CONFIGS:
            t_ref, ref = best_time(
                lambda: ordpy.complexity_entropy(gray, dx=dx, dy=dy, taux=taux, tauy=tauy),
                max(1, args.repeats // 2),
            )
            t_ours, ours = best_time(
                lambda: complexity_entropy(gray, dx, dy, taux, tauy), args.repeats
            )
            diff = float(np.max(np.abs(np.asarray(ref, dtype=float) - np.asarray(ours))))
            print(
                f"{name:10s} {f'{dx},{dy},{taux},{tauy}':12s} {t_ref:9.4f} {t_ours:10.5f}"
                f" {t_ref / t_ours:6.0f}x {diff:11.1e}"
            )


if __name__ == "__main__":
    main()
