"""Benchmark: milliseconds per image of each quality feature family, on one core.

Run from the project root: ``python benchmarks/quality_features.py [--size 512] [--repeats 15]
[--data ../shared/data/avt-ai-images]``.

Prints, for 512x512 RGB images (uniform noise, a synthetic scene, and a real generated image from
the avt-ai-images set when the folder is there), the best and median time of each family and of
the whole vector (all three families, entropy at the ``params.yaml`` features), and each time as a
ratio to two references measured in the same run on the same image: ``decode`` (one
``np.asarray(img)`` plus :func:`t2ieval.images.to_luminance`) and ``blur`` (one
``scipy.ndimage.gaussian_filter`` of the float64 luminance, sigma 7/6). Ratios travel between
machines better than milliseconds. Nothing is asserted; this reports.

BLAS/OpenMP threads are limited to 1 (environment variables set before numpy is imported, and
``threadpoolctl`` when installed), so the numbers are single-core.
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scenes import scene  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from t2ieval.entropy.features import luminance_features  # noqa: E402
from t2ieval.entropy.spec import DEFAULT_ENTROPY_SPECS  # noqa: E402
from t2ieval.images import load_image, to_luminance  # noqa: E402
from t2ieval.quality.config import FAMILIES  # noqa: E402
from t2ieval.quality.families import PreparedImage, image_feature_vector  # noqa: E402
from t2ieval.quality.handcrafted import handcrafted_features  # noqa: E402
from t2ieval.quality.nss import brisque_features  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data" / "avt-ai-images"


def single_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def real_image(data: Path, size: int) -> tuple[str, Image.Image] | None:
    """A real generated image of the avt set, centre-cropped/padded to ``size`` x ``size``."""
    folder = data / "images"
    if not folder.is_dir():
        return None
    files = sorted(folder.glob("*.jpg"))
    if not files:
        return None
    square = [f for f in files if Image.open(f).size == (size, size)]
    path = (square or files)[0]
    img = load_image(path)
    if img.size != (size, size):
        canvas = Image.new("RGB", (size, size), (128, 128, 128))
        canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
        img = canvas
    return path.name, img


def timings(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best and median wall time in ms over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images = {
        "noise": Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)),
        "scene": scene(args.size),
    }
    real = real_image(args.data, args.size)
    if real is not None:
        images[f"real:{real[0]}"] = real[1]
    else:
        print(f"{args.data}: no avt images; real image skipped")

    specs = DEFAULT_ENTROPY_SPECS
    print(
        f"{args.size}x{args.size} RGB, 1 thread, best / median of {args.repeats} runs (ms); "
        f"entropy features: {', '.join(s.suffix for s in specs)}"
    )
    print(f"{'image':34s} {'step':12s} {'best':>7s} {'median':>7s} {'x decode':>9s} {'x blur':>7s}")
    with single_thread():
        for name, img in images.items():
            prepared = PreparedImage.from_pil(img)
            lum_f = prepared.lum.astype(np.float64)
            ref_decode, _ = timings(lambda: (np.asarray(img), to_luminance(img)), args.repeats)
            ref_blur, _ = timings(lambda: gaussian_filter(lum_f, 7.0 / 6.0), args.repeats)
            steps = {
                "decode (ref)": lambda: (np.asarray(img), to_luminance(img)),
                "blur (ref)": lambda: gaussian_filter(lum_f, 7.0 / 6.0),
                "prepare": lambda: PreparedImage.from_pil(img),
                "entropy": lambda: luminance_features(prepared.lum, specs),
                "nss": lambda: brisque_features(prepared.lum),
                "handcrafted": lambda: handcrafted_features(prepared.rgb, prepared.lum),
                "all": lambda: image_feature_vector(img, FAMILIES, specs),
            }
            for step, fn in steps.items():
                best, median = timings(fn, args.repeats)
                print(
                    f"{name:34s} {step:12s} {best:7.2f} {median:7.2f} "
                    f"{best / ref_decode:9.1f} {best / ref_blur:7.1f}"
                )


if __name__ == "__main__":
    main()
