"""The ``prepare`` stage: the embedded synthetic set, or the user's manifest, into
``data/prepared`` (pairs, RGB PNG images, and for the synthetic set its questions and scenes)."""

from __future__ import annotations

import shutil

from t2ieval.data.manifest import import_manifest
from t2ieval.data.synthetic import generate
from t2ieval.params import DataParams, ParamsError
from t2ieval.paths import PREPARED_DIR


def prepare_stage(p: DataParams) -> dict:
    """Write ``data/prepared`` afresh; returns the stage's metrics (what was kept, skipped,
    tied)."""
    shutil.rmtree(PREPARED_DIR, ignore_errors=True)
    if p.source == "synthetic":
        summary = generate(PREPARED_DIR, p.n_pairs, p.image_size, p.seed)
        return {
            "source": "synthetic",
            "pairs": summary["pairs"],
            "images": summary["images"],
            "questions": summary["questions"],
            "unique_prompts": summary["unique_prompts"],
            "skipped_rows": 0,
            "tied_rows": 0,
            "category": summary["category"],
        }
    if not p.manifest:
        raise ParamsError("params.yaml: data.source is 'manifest' but data.manifest is not set")
    result = import_manifest(p.manifest, PREPARED_DIR, p.max_pixels, p.on_error)
    return {
        "source": "manifest",
        "pairs": len(result.pairs),
        "images": int(len(set(result.pairs["image_1"]) | set(result.pairs["image_2"]))),
        "skipped_rows": len({x.row for x in result.problems}),
        "tied_rows": result.ties,
        "skip_reason": result.skip_reasons,
        "category": result.pairs["category"].value_counts().sort_index().to_dict(),
    }
