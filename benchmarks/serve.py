"""Benchmark: the served model over HTTP, one pair per request against 32 pairs per request.

Run from the project root after ``dvc repro``:
``python benchmarks/serve.py [--model models:/t2ieval@champion] [--tracking-uri sqlite:///mlflow.db]
[--pairs 64]``.

Starts the real ``mlflow models serve --env-manager local`` on a free loopback port, sends the same
``--pairs`` pairs (the first test pairs of ``data/split/pairs.csv``, else generated images) in
requests of 1 and of 32 pairs, and prints pairs per second and the median and p95 latency per
request for each, plus the throughput ratio batch-32 / batch-1 (the reference, measured in the same
run). The server is stopped at the end whatever happens.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from t2ieval.images import encode_image_base64
from t2ieval.serving.server import ModelServer, split_body
from t2ieval.tracking import tracking_uri as project_tracking_uri


def project_pairs(root: Path, n: int) -> pd.DataFrame | None:
    """``n`` pairs of the split table (test split first), images as base64; None if absent."""
    path = root / "data" / "split" / "pairs.csv"
    if not path.is_file():
        return None
    pairs = pd.read_csv(path, dtype={"pair_id": str})
    pairs = pd.concat([pairs[pairs["split"] == "test"], pairs[pairs["split"] != "test"]])
    pairs = pairs.head(n)
    if len(pairs) < n:
        pairs = pd.concat([pairs] * (n // max(len(pairs), 1) + 1)).head(n)
    return pd.DataFrame(
        {
            "prompt": pairs["prompt"].to_numpy(),
            "image_1": [encode_image_base64(root / p) for p in pairs["image_1"]],
            "image_2": [encode_image_base64(root / p) for p in pairs["image_2"]],
        }
    )


def generated_pairs(n: int, size: int = 128, seed: int = 0) -> pd.DataFrame:
    """``n`` pairs of random shapes with fixed prompts, for a model without its data at hand."""
    rng = np.random.default_rng(seed)
    colours = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60)}
    rows = []
    for i in range(n):
        name = list(colours)[i % len(colours)]
        imgs = []
        for slot in range(2):
            img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(180, 256, 3)))
            x, y = (int(v) for v in rng.integers(0, size // 2, 2))
            fill = colours[name] if slot == 0 else colours[list(colours)[(i + 1) % len(colours)]]
            ImageDraw.Draw(img).ellipse([x, y, x + size // 3, y + size // 3], fill=fill)
            imgs.append(encode_image_base64(img))
        rows.append({"prompt": f"a {name} circle", "image_1": imgs[0], "image_2": imgs[1]})
    return pd.DataFrame(rows)


def run_batches(server: ModelServer, pairs: pd.DataFrame, batch: int) -> dict[str, float]:
    """Send every pair in requests of ``batch`` rows; throughput and per-request latency."""
    latencies = []
    start = time.perf_counter()
    for lo in range(0, len(pairs), batch):
        body = split_body(pairs.iloc[lo : lo + batch])
        t0 = time.perf_counter()
        response = server.invoke(body)
        latencies.append(time.perf_counter() - t0)
        if response.status != 200:
            raise RuntimeError(f"batch {batch}: HTTP {response.status}: {response.message[:500]}")
    total = time.perf_counter() - start
    lat = np.asarray(latencies) * 1000.0
    return {
        "batch": batch,
        "requests": len(latencies),
        "pairs_per_s": len(pairs) / total,
        "median_ms": float(np.median(lat)),
        "p95_ms": float(np.percentile(lat, 95)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/t2ieval@champion")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="default: MLFLOW_TRACKING_URI, else sqlite:///<root>/mlflow.db",
    )
    parser.add_argument("--root", default=".", help="project root (for mlflow.db and the pairs)")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument(
        "--generated",
        action="store_true",
        help="use generated images even when data/split/pairs.csv exists",
    )
    args = parser.parse_args()

    root = Path(args.root).resolve()
    uri = args.tracking_uri or project_tracking_uri(root)
    pairs = None if args.generated else project_pairs(root, args.pairs)
    source = "data/split/pairs.csv"
    if pairs is None:
        pairs, source = generated_pairs(args.pairs), "generated 128x128 images"
    print(f"model {args.model} (tracking {uri}); {len(pairs)} pairs from {source}")

    t0 = time.perf_counter()
    with ModelServer(args.model, tracking_uri=uri) as server:
        print(f"server ready in {time.perf_counter() - t0:.1f}s at {server.url}")
        run_batches(server, pairs.head(4), 4)  # warm-up: first-call costs out of the timings
        results = [run_batches(server, pairs, b) for b in (1, 32)]
    print(f"{'batch':>5s} {'requests':>8s} {'pairs/s':>9s} {'median ms':>10s} {'p95 ms':>9s}")
    for r in results:
        print(
            f"{r['batch']:5d} {r['requests']:8d} {r['pairs_per_s']:9.2f} {r['median_ms']:10.1f}"
            f" {r['p95_ms']:9.1f}"
        )
    print(
        "throughput batch-32 / batch-1: "
        f"{results[1]['pairs_per_s'] / results[0]['pairs_per_s']:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
