"""DVC stage ``train_vqa``: the D-branch's VQA model.

Trains the embedded tiny ViLT on the train split's generated questions, or exports the checkpoint
``vqa.model`` names, into ``models/vqa/`` (with ``vqa.enabled: false``, records that the branch is
off); writes ``metrics/train_vqa.json`` and ``plots/train_vqa/curve.csv``.
"""

from __future__ import annotations

from t2ieval.images import load_image
from t2ieval.io import read_table, write_metrics, write_plot
from t2ieval.paths import PREPARED_QA, PREPARED_SCENES, SPLIT_IMAGES, VQA_MODEL_DIR
from t2ieval.pipeline import start_stage
from t2ieval.pipeline.vqa import CURVE_COLUMNS, read_qa, read_scenes, train_stage
from t2ieval.runtime import pick_device


def main() -> None:
    params = start_stage()
    p = params.vqa
    images = read_table(SPLIT_IMAGES, ["image", "pair_id", "split", "prompt", "slot"])
    result = train_stage(
        images,
        read_qa(PREPARED_QA),
        enabled=p.enabled,
        model=p.model,
        kind=p.kind,
        device=pick_device(params.base.device),
        settings=p.train_settings(),
        seed=params.base.seed,
        train_embedded=p.train_embedded,
        max_questions=p.max_questions_per_image,
        quantize=p.quantize,
        out_dir=VQA_MODEL_DIR,
        load=load_image,
        scenes=read_scenes(PREPARED_SCENES),
    )
    write_plot("train_vqa", "curve", result.curve, columns=CURVE_COLUMNS)
    write_metrics("train_vqa", result.metrics)


if __name__ == "__main__":
    main()
