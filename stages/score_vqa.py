"""DVC stage ``score_vqa``: D-scores of every image with the model of ``train_vqa``.

Writes ``data/scores/d.csv``, ``data/vqa/answers.csv`` (one row per image and question) and
``metrics/score_vqa.json``. With the D-branch off, the scores are empty (NaN) and the metrics
say so.
"""

from __future__ import annotations

from t2ieval.images import load_image
from t2ieval.io import read_table, write_metrics, write_table
from t2ieval.paths import (
    PREPARED_QA,
    SPLIT_IMAGES,
    SPLIT_PAIRS,
    VQA_DIR,
    VQA_MODEL_DIR,
    scores_path,
)
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.vqa import read_qa, score_stage
from t2ieval.runtime import pick_device


def main() -> None:
    params = start_stage()
    pairs = read_table(SPLIT_PAIRS, ["pair_id", "split", "preferred", "category"])
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    images = read_table(SPLIT_IMAGES, ["image", "pair_id", "split", "prompt", "slot"])
    images["pair_id"] = images["pair_id"].astype(str)
    result = score_stage(
        pairs,
        images,
        read_qa(PREPARED_QA),
        model_dir=VQA_MODEL_DIR,
        device=pick_device(params.base.device),
        infer_batch_size=params.vqa.infer_batch_size,
        load=load_image,
    )
    write_table(VQA_DIR / "answers.csv", result.answers)
    write_table(scores_path("d"), result.scores)
    write_metrics("score_vqa", result.metrics)


if __name__ == "__main__":
    main()
