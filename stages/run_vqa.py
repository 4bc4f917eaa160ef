"""DVC stage ``run_vqa``: the D-score branch.

Gets a VQA model (trains the embedded tiny ViLT on the train split's generated questions, or loads
``vqa.model``), asks every image the questions parsed from its prompt, and writes
``models/vqa/``, ``data/vqa/answers.csv``, ``data/scores/d.csv`` and ``metrics/run_vqa.json``.
Answers are cached in ``cache/vqa/`` so that a re-run on the same inputs answers nothing anew.
"""

from __future__ import annotations

import logging

from t2ieval.images import load_image
from t2ieval.io import read_table, write_metrics, write_plot, write_table
from t2ieval.params import load_params
from t2ieval.paths import (PREPARED_QA, PREPARED_SCENES, SPLIT_IMAGES, SPLIT_PAIRS,
                           VQA_CACHE, VQA_DIR, VQA_MODEL_DIR, scores_path)
from t2ieval.runtime import pick_device, seed_everything, setup_logging
from t2ieval.vqa.pipeline import read_qa, read_scenes, run
from t2ieval.vqa.train import TrainSettings

log = logging.getLogger("run_vqa")


def main() -> None:
    setup_logging()
    params = load_params()
    p = params.vqa
    seed_everything(params.base.seed)
    device = pick_device(params.base.device)
    pairs = read_table(SPLIT_PAIRS, ["pair_id", "split", "preferred"])
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    images = read_table(SPLIT_IMAGES, ["image", "pair_id", "split", "prompt", "slot"])
    images["pair_id"] = images["pair_id"].astype(str)
    qa = read_qa(PREPARED_QA)
    result = run(
        pairs, images, qa, model=p.model, kind=p.kind, device=device,
        settings=TrainSettings(epochs=p.epochs, lr=p.lr, batch_size=p.batch_size,
                               seed=params.base.seed, pretrain_epochs=p.pretrain_epochs,
                               aux_weight=p.aux_weight, shift=p.shift),
        train_embedded=p.train_embedded, infer_batch_size=p.infer_batch_size,
        max_questions=p.max_questions_per_image, model_dir=VQA_MODEL_DIR, cache_dir=VQA_CACHE,
        load=load_image, scenes=read_scenes(PREPARED_SCENES),
    )
    write_table(VQA_DIR / "answers.csv", result.answers)
    write_table(scores_path("d"), result.scores)
    if result.curve:
        write_plot("run_vqa", "train_curve", result.curve)
    write_metrics("run_vqa", result.metrics)


if __name__ == "__main__":
    main()
