"""The embedded default data: a synthetic, compositional text-to-image preference set.

Deterministic from a seed: pair ``i`` draws from ``numpy.random.default_rng([seed, i])``, so the
same seed gives byte-identical images whatever ``n_pairs`` is and in whatever order pairs are made.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from t2ieval.data.render import render_scene
from t2ieval.data.scenes import PairSpec, Scene, questions, sample_pair
from t2ieval.io import write_table

log = logging.getLogger(__name__)

MIN_SIZE = 96


@dataclass(frozen=True)
class GeneratedPair:
    """One generated pair, with the images still in memory."""

    pair_id: str
    spec: PairSpec
    preferred: int  # which slot holds the faithful image
    images: tuple  # (image_1, image_2) as PIL images
    scenes: tuple[Scene, Scene]  # scene drawn in slot 1, slot 2


def make_pair(index: int, seed: int, size: int) -> GeneratedPair:
    """Generate pair number ``index`` of the set seeded by ``seed``."""
    rng = np.random.default_rng([seed, index])
    spec = sample_pair(rng)
    good = render_scene(spec.good, size, rng)
    bad = render_scene(spec.bad, size, rng, degradation=spec.degradation)
    preferred = 1 if rng.random() < 0.5 else 2
    images = (good, bad) if preferred == 1 else (bad, good)
    scenes = (spec.good, spec.bad) if preferred == 1 else (spec.bad, spec.good)
    return GeneratedPair(f"p{index:06d}", spec, preferred, images, scenes)


def generate(out_dir: str | Path, n_pairs: int, size: int = 128, seed: int = 0,
             image_root: str | Path | None = None) -> dict:
    """Write ``n_pairs`` pairs to ``out_dir``: ``images/``, ``pairs.csv``, ``qa.csv``, ``scenes.jsonl``.

    Image paths in the tables are ``image_root/images/<file>`` (``image_root`` defaults to
    ``out_dir``), i.e. relative to the project root when ``out_dir`` is. Returns summary counts.
    """
    if n_pairs < 1:
        raise ValueError(f"data.n_pairs must be >= 1, got {n_pairs}")
    if size < MIN_SIZE:
        raise ValueError(f"data.image_size must be >= {MIN_SIZE}, got {size}")
    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    prefix = Path(image_root) if image_root is not None else out_dir

    pair_rows, qa_rows = [], []
    with (out_dir / "scenes.jsonl").open("w", encoding="utf-8") as scenes_fh:
        for i in tqdm(range(n_pairs), desc="generating pairs", unit="pair", mininterval=1.0):
            pair = make_pair(i, seed, size)
            paths = []
            qa_rng = np.random.default_rng([seed, i, 1])
            for slot, (img, scene) in enumerate(zip(pair.images, pair.scenes), start=1):
                name = f"{pair.pair_id}_{slot}.png"
                img.save(image_dir / name, format="PNG", optimize=False)
                rel = (prefix / "images" / name).as_posix()
                paths.append(rel)
                for qa in questions(pair.spec.good, scene, qa_rng):
                    qa_rows.append({"image": rel, "pair_id": pair.pair_id, "question": qa.question,
                                    "answer": qa.answer, "kind": qa.kind})
                scenes_fh.write(json.dumps({
                    "image": rel, "pair_id": pair.pair_id, "slot": slot,
                    "preferred": int(slot == pair.preferred), "scene": scene.to_dict(),
                    "degradation": None if slot == pair.preferred else pair.spec.degradation,
                }) + "\n")
            pair_rows.append({"pair_id": pair.pair_id, "prompt": pair.spec.prompt,
                              "image_1": paths[0], "image_2": paths[1],
                              "preferred": pair.preferred, "category": pair.spec.category})
    pairs = pd.DataFrame(pair_rows)
    write_table(out_dir / "pairs.csv", pairs)
    write_table(out_dir / "qa.csv", pd.DataFrame(qa_rows))
    counts = Counter(pairs["category"])
    log.info("generated %d pairs (%d questions) in %s", len(pairs), len(qa_rows), out_dir)
    return {"pairs": len(pairs), "images": 2 * len(pairs), "questions": len(qa_rows),
            "unique_prompts": int(pairs["prompt"].nunique()),
            "preferred_is_1": float((pairs["preferred"] == 1).mean()),
            "category": {k: counts.get(k, 0) for k in sorted(counts)}}
