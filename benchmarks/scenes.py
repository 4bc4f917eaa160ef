"""A synthetic test image for the benchmarks: shapes over a noisy colour gradient (flat areas,
which give ordinal-pattern ties, and edges, like rendered images)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def scene(size: int, seed: int = 0) -> Image.Image:
    """Shapes over a noisy colour gradient (flat areas and edges, like rendered images)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx, yy, (xx + yy) / 2], axis=-1) * (255.0 / size)
    base += rng.normal(0, 8, base.shape)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = (int(v) for v in rng.integers(0, size - size // 4, 2))
        x1 = x0 + int(rng.integers(size // 16, size // 4))
        y1 = y0 + int(rng.integers(size // 16, size // 4))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    return img
