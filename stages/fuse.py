"""DVC stage ``fuse``: published and learned fusion weights, fused scores for every pair."""

from __future__ import annotations

from t2ieval.fusion import BRANCHES, merge_branch_scores, run_fusion
from t2ieval.io import read_table, write_metrics, write_table
from t2ieval.params import load_params
from t2ieval.paths import FUSED_DIR, FUSION_DIR, SPLIT_PAIRS, scores_path
from t2ieval.runtime import setup_logging


def main() -> None:
    setup_logging()
    params = load_params()
    p = params.fuse
    pairs = read_table(SPLIT_PAIRS, ["pair_id", "prompt", "preferred", "split", "category"])
    scores = {b: read_table(scores_path(b), ["pair_id", "score_1", "score_2"]) for b in BRANCHES}
    result = run_fusion(merge_branch_scores(pairs, scores), p.mode, p.fixed_weights,
                        p.cv_folds, params.base.seed)
    result.fixed.save(FUSION_DIR / "fixed.json")
    result.learned.save(FUSION_DIR / "learned.json")
    result.chosen.save(FUSION_DIR / "weights.json")
    write_table(FUSED_DIR / "pairs.csv", result.table)
    write_metrics("fuse", result.metrics)


if __name__ == "__main__":
    main()
