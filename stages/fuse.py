"""DVC stage ``fuse``: published and learned fusion weights, fused scores for every pair.

Fuses the active branches: ``clip`` and ``ce``, and ``d`` unless ``vqa.enabled`` is false.
"""

from __future__ import annotations

from t2ieval.fusion import BRANCHES, merge_branch_scores, run_fusion
from t2ieval.io import read_table, write_metrics, write_table
from t2ieval.paths import FUSED_DIR, FUSION_DIR, SPLIT_PAIRS, scores_path
from t2ieval.pipeline import start_stage


def main() -> None:
    params = start_stage()
    p = params.fuse
    branches = tuple(b for b in BRANCHES if b != "d" or params.vqa.enabled)
    pairs = read_table(SPLIT_PAIRS, ["pair_id", "prompt", "preferred", "split", "category"])
    scores = {b: read_table(scores_path(b), ["pair_id", "score_1", "score_2"]) for b in branches}
    result = run_fusion(merge_branch_scores(pairs, scores), p.mode, p.fixed_weights,
                        p.cv_folds, params.base.seed, branches)
    result.fixed.save(FUSION_DIR / "fixed.json")
    result.learned.save(FUSION_DIR / "learned.json")
    result.chosen.save(FUSION_DIR / "weights.json")
    write_table(FUSED_DIR / "pairs.csv", result.table)
    write_metrics("fuse", result.metrics)


if __name__ == "__main__":
    main()
