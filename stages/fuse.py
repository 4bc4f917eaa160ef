"""DVC stage ``fuse``: published and learned fusion weights, fused scores for every pair.

Fuses the active branches: ``clip`` and ``ce``, and ``d`` unless ``vqa.enabled`` is false.
"""

from __future__ import annotations

from t2ieval.io import write_metrics, write_table
from t2ieval.paths import FUSED_DIR, FUSION_DIR, FUSION_WEIGHTS
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.fuse import fuse_stage


def main() -> None:
    result = fuse_stage(start_stage(torch=False))
    result.fixed.save(FUSION_DIR / "fixed.json")
    result.learned.save(FUSION_DIR / "learned.json")
    result.chosen.save(FUSION_WEIGHTS)
    write_table(FUSED_DIR / "pairs.csv", result.table)
    write_metrics("fuse", result.metrics)


if __name__ == "__main__":
    main()
