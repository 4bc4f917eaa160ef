"""Drawing scenes with Pillow: shapes, colours, layout for relations, jitter and degradations."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from t2ieval.data.scenes import COLOURS, Scene

BACKGROUNDS: tuple[tuple[int, int, int], ...] = (
    (250, 250, 250), (236, 232, 220), (222, 230, 238), (232, 240, 226),
    (245, 235, 240), (210, 210, 210), (240, 240, 225),
)


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a shape of radius ``r`` centred at (cx, cy), rotated by ``angle`` radians."""
    if shape == "square":
        pts = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        pts = [(x * 0.8, y * 0.8) for x, y in pts]
    elif shape == "triangle":
        pts = [(math.cos(a), math.sin(a)) for a in np.linspace(-math.pi / 2, 1.5 * math.pi, 4)[:3]]
    elif shape == "hexagon":
        pts = [(math.cos(a), math.sin(a)) for a in np.linspace(0, 2 * math.pi, 7)[:6]]
    elif shape == "diamond":
        pts = [(0, -1), (0.6, 0), (0, 1), (-0.6, 0)]
    elif shape == "star":
        pts = []
        for i in range(10):
            a = -math.pi / 2 + i * math.pi / 5
            rad = 1.0 if i % 2 == 0 else 0.42
            pts.append((rad * math.cos(a), rad * math.sin(a)))
    elif shape == "cross":
        w = 0.33
        pts = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w),
               (-1, w), (-1, -w), (-w, -w)]
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in pts]


def _jitter_colour(rgb: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(np.clip(v + rng.integers(-18, 19), 0, 255)) for v in rgb)  # type: ignore


def _regions(scene: Scene, size: int) -> list[tuple[float, float, float, float]]:
    """One box (x0, y0, x1, y1) per group that makes the scene's relation true."""
    full = (0.0, 0.0, float(size), float(size))
    if len(scene.groups) == 1:
        return [full]
    h = size / 2
    left, right = (0.0, 0.0, h - 2, float(size)), (h + 2, 0.0, float(size), float(size))
    top, bottom = (0.0, 0.0, float(size), h - 2), (0.0, h + 2, float(size), float(size))
    rel = scene.relation
    pairs = {"left of": (left, right), "right of": (right, left),
             "above": (top, bottom), "below": (bottom, top)}
    a, b = pairs[rel or "left of"]
    return [a, b]


def _place(rng: np.random.Generator, box: tuple[float, float, float, float], count: int,
           radius: float, taken: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Non-overlapping centres for ``count`` objects inside ``box`` (rejection sampling)."""
    x0, y0, x1, y1 = box
    out: list[tuple[float, float, float]] = []
    for _ in range(count):
        r = radius
        for attempt in range(400):
            r = radius * (1.0 if attempt < 200 else 0.75)
            cx = rng.uniform(x0 + r + 1, x1 - r - 1)
            cy = rng.uniform(y0 + r + 1, y1 - r - 1)
            if all((cx - ox) ** 2 + (cy - oy) ** 2 > (r + orr + 2) ** 2 for ox, oy, orr in taken + out):
                break
        out.append((cx, cy, r))
    return out


def render_scene(scene: Scene, size: int, rng: np.random.Generator,
                 degradation: str | None = None) -> Image.Image:
    """Draw ``scene`` at ``size`` x ``size`` with random layout, size, rotation and colour jitter."""
    bg = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    img = Image.new("RGB", (size, size), _jitter_colour(bg, rng))
    draw = ImageDraw.Draw(img)
    taken: list[tuple[float, float, float]] = []
    n_objects = sum(g.count for g in scene.groups)
    base_r = size * (0.13 if n_objects <= 2 else 0.10 if n_objects <= 4 else 0.085)
    for group, box in zip(scene.groups, _regions(scene, size)):
        radius = base_r * rng.uniform(0.85, 1.15)
        for cx, cy, r in _place(rng, box, group.count, radius, taken):
            taken.append((cx, cy, r))
            colour = _jitter_colour(COLOURS[group.colour], rng)
            width = max(2, size // 48)
            angle = rng.uniform(-0.35, 0.35)
            if group.shape == "circle":
                bbox = [cx - r, cy - r, cx + r, cy + r]
                if scene.style == "filled":
                    draw.ellipse(bbox, fill=colour)
                else:
                    draw.ellipse(bbox, outline=colour, width=width)
            else:
                pts = _polygon(group.shape, cx, cy, r, angle)
                if scene.style == "filled":
                    draw.polygon(pts, fill=colour)
                else:
                    draw.line(pts + [pts[0]], fill=colour, width=width, joint="curve")
    if degradation is not None:
        img = degrade(img, degradation, rng)
    return img


def degrade(img: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """Visual degradation of a faithful rendering: ``noise``, ``blur`` or ``clutter``."""
    if kind == "noise":
        arr = np.asarray(img, dtype=np.float32)
        arr = arr + rng.normal(0.0, rng.uniform(28, 45), size=arr.shape)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB")
    if kind == "blur":
        return img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(2.0, 3.2))))
    if kind == "clutter":
        out = img.copy()
        draw = ImageDraw.Draw(out)
        w, h = out.size
        for _ in range(int(rng.integers(25, 45))):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            dx, dy = rng.uniform(-w / 6, w / 6), rng.uniform(-h / 6, h / 6)
            colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
            draw.line([(x, y), (x + dx, y + dy)], fill=colour, width=1)
        return out
    raise ValueError(f"unknown degradation {kind!r}; known: noise, blur, clutter")
