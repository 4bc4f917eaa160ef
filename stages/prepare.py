"""DVC stage ``prepare``: generate the embedded synthetic set or import the user's manifest."""

from __future__ import annotations

import logging
import shutil

from t2ieval.data.manifest import import_manifest
from t2ieval.data.synthetic import generate
from t2ieval.io import write_metrics
from t2ieval.paths import PREPARED_DIR
from t2ieval.pipeline import start_stage

log = logging.getLogger("stages.prepare")


def main() -> None:
    p = start_stage().data
    shutil.rmtree(PREPARED_DIR, ignore_errors=True)
    if p.source == "synthetic":
        summary = generate(PREPARED_DIR, p.n_pairs, p.image_size, p.seed)
        metrics = {"source": "synthetic", "pairs": summary["pairs"], "images": summary["images"],
                   "questions": summary["questions"], "unique_prompts": summary["unique_prompts"],
                   "skipped_rows": 0, "category": summary["category"]}
    else:
        if not p.manifest:
            raise SystemExit("params.yaml: data.source is 'manifest' but data.manifest is not set")
        result = import_manifest(p.manifest, PREPARED_DIR, p.max_pixels, p.on_error)
        metrics = {"source": "manifest", "pairs": len(result.pairs),
                   "images": int(len(set(result.pairs["image_1"]) | set(result.pairs["image_2"]))),
                   "skipped_rows": len({x.row for x in result.problems}),
                   "tied_rows": result.ties,
                   "skip_reason": result.skip_reasons,
                   "category": result.pairs["category"].value_counts().sort_index().to_dict()}
    write_metrics("prepare", metrics)


if __name__ == "__main__":
    main()
