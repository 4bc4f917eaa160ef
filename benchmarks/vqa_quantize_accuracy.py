"""The accuracy cost of ``vqa.quantize: int8`` and ``bf16`` on a reproduced pipeline's own splits
(issue 16).

    python benchmarks/vqa_quantize_accuracy.py                 # in a project after `make repro`
    python benchmarks/vqa_quantize_accuracy.py --modes bf16

Runs the ``score_vqa`` stage's function (:func:`t2ieval.pipeline.vqa.score_stage`) over
``data/split`` with the model ``train_vqa`` wrote (``models/vqa``) once as trained (fp32) and once
per mode with that mode as its ``quantize`` (what ``vqa.quantize: <mode>`` gives every scorer of
the folder; the weights are the same). Prints, per split, the pairwise D accuracy of each with its
95 % bootstrap interval over prompts, how many pair verdicts the mode changes, the mean |dP(yes)|
over every answer, the validation answer accuracy, and the scoring time of each (same process,
one after the other). The process is set up as the stage's (``base.*``; with ``cpu_isa: avx2``
oneDNN is capped at AVX2, where bf16 is emulated: its time here is not its speed, see
``benchmarks/vqa_speed.py`` for that).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from t2ieval.images import load_image
from t2ieval.io import read_table
from t2ieval.metrics import accuracy_report
from t2ieval.params import load_params
from t2ieval.paths import PREPARED_QA, SPLIT_IMAGES, SPLIT_PAIRS, VQA_MODEL_DIR
from t2ieval.pipeline.vqa import read_qa, score_stage
from t2ieval.runtime import configure_process, pick_device

log = logging.getLogger("vqa_quantize_accuracy")


def _score(pairs, images, qa, params, quantize: str):
    t0 = time.perf_counter()
    result = score_stage(
        pairs,
        images,
        qa,
        model_dir=VQA_MODEL_DIR,
        device=pick_device("cpu"),
        infer_batch_size=params.vqa.infer_batch_size,
        load=load_image,
        quantize=quantize,
    )
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=Path("."), help="a reproduced project")
    ap.add_argument(
        "--modes", nargs="+", default=["int8", "bf16"], choices=["int8", "bf16"], help="vs fp32"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = args.project.resolve()
    os.chdir(root)  # the stage's relative paths, as in stages/score_vqa.py
    params = load_params("params.yaml")
    configure_process(params.base.seed, params.base.threads, params.base.cpu_isa)
    pairs = read_table(SPLIT_PAIRS, ["pair_id", "split", "preferred", "prompt"])
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    images = read_table(SPLIT_IMAGES, ["image", "pair_id", "split", "prompt", "slot"])
    images["pair_id"] = images["pair_id"].astype(str)
    qa = read_qa(PREPARED_QA)
    runs = {}
    for mode in ("none", *args.modes):
        runs["fp32" if mode == "none" else mode] = _score(pairs, images, qa, params, mode)
        log.warning("%s scored in %.1f s", mode, runs["fp32" if mode == "none" else mode][1])

    meta = pairs[["pair_id", "preferred", "prompt"]]
    reports, verdict = {}, {}
    for mode, (result, _) in runs.items():
        table = result.scores.merge(meta, on="pair_id")
        reports[mode] = accuracy_report(
            table, "d", category_splits=(), intervals=True, seed=params.base.seed
        )
        verdict[mode] = table.set_index("pair_id").sort_index()
    a = verdict["fp32"]
    m32 = runs["fp32"][0].metrics
    for mode in args.modes:
        b = verdict[mode]
        flips = np.sign(a["score_1"] - a["score_2"]) != np.sign(b["score_1"] - b["score_2"])
        dp = np.abs(
            runs["fp32"][0].answers["p_yes"].to_numpy() - runs[mode][0].answers["p_yes"].to_numpy()
        )
        print(
            f"\nD-branch {mode} vs fp32 on {root} ({len(pairs)} pairs; CPU, "
            f"{params.base.threads} threads, cpu_isa {params.base.cpu_isa})"
        )
        print(
            f"{'split':5} | {'fp32 accuracy [95% CI]':24} | {mode + ' accuracy [95% CI]':24} "
            "| verdicts changed"
        )
        for split in ("train", "val", "test"):
            cells = []
            for m in ("fp32", mode):
                r = reports[m]
                key = f"{split}_accuracy_d"
                cells.append(f"{r[key]:.3f} [{r[key + '_ci_low']:.3f}, {r[key + '_ci_high']:.3f}]")
            n_split = int((a["split"] == split).sum())
            n_flip = int(flips[(a["split"] == split).to_numpy()].sum())
            print(f"{split:5} | {cells[0]:24} | {cells[1]:24} | {n_flip} of {n_split}")
        mq = runs[mode][0].metrics
        if m32.get("vqa_answer_accuracy") is not None:
            print(
                f"validation answer accuracy: fp32 {m32['vqa_answer_accuracy']:.3f}, "
                f"{mode} {mq['vqa_answer_accuracy']:.3f}"
            )
        print(
            f"P(yes) over {len(dp)} answers: mean |dP| {dp.mean():.2e}, max {dp.max():.2e}; "
            f"scoring time fp32 {runs['fp32'][1]:.1f} s, {mode} {runs[mode][1]:.1f} s "
            f"(ratio {runs['fp32'][1] / runs[mode][1]:.2f}x)"
        )


if __name__ == "__main__":
    main()
