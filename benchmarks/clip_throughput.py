"""Throughput of the CLIP branch: training steps and scoring, in pairs per second.

    python benchmarks/clip_throughput.py --model t2i-tiny --batch-size 64 --steps 10 --threads 2

Uses random images and a fixed prompt, so it needs no data; prints one line per measurement.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from t2ieval.clip.loss import PairwiseInfoNCE
from t2ieval.clip.model import create_clip
from t2ieval.clip.score import ClipScorer
from t2ieval.clip.train import param_groups, set_trainable
from t2ieval.runtime import pick_device, seed_everything


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="t2i-tiny")
    ap.add_argument("--train", default="full", choices=["heads", "last_blocks", "full"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(0)
    device = pick_device(args.device)
    bundle = create_clip(args.model, device=device)
    model = bundle.model
    set_trainable(model, args.train)
    size = bundle.preprocess_cfg["size"]
    h, w = (size, size) if isinstance(size, int) else size
    b = args.batch_size
    tokens = bundle.tokenizer(["two red squares to the left of a blue star"] * b).to(device)
    images = torch.randn(2 * b, 3, h, w, device=device)
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4)
    loss_fn = PairwiseInfoNCE()
    times = []
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        text, img, scale = model(tokens=tokens, images=images)
        loss = loss_fn(text, img[:b], img[b:], scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up
            times.append(time.perf_counter() - t0)
    print(
        f"train ({args.train}): {b / np.median(times):.1f} pairs/s "
        f"(median {np.median(times) * 1000:.0f} ms, min {np.min(times) * 1000:.0f} ms "
        f"per batch of {b})"
    )
    rng = np.random.default_rng(0)
    pil = [
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)) for _ in range(2 * b)
    ]
    scorer = ClipScorer(bundle, device=device, batch_size=b)
    scorer.score(["a prompt"] * len(pil), pil)
    t0 = time.perf_counter()
    scorer.score([f"prompt {i % 7}" for i in range(len(pil))], pil)
    dt = time.perf_counter() - t0
    print(f"score: {len(pil) / dt:.1f} images/s")


if __name__ == "__main__":
    main()
