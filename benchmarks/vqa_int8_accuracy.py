"""The accuracy cost of ``vqa.quantize: int8`` on a reproduced pipeline's own splits (issue 16).

    python benchmarks/vqa_int8_accuracy.py            # in a project after `make repro`

Runs the ``score_vqa`` stage's function (:func:`t2ieval.pipeline.vqa.score_stage`) twice over
``data/split``: with the model ``train_vqa`` wrote (``models/vqa``, as trained) and with a copy
of it whose ``quantize`` setting is ``int8`` (what ``vqa.quantize: int8`` writes; the weights are
the same). Prints, per split, the pairwise D accuracy of each with its 95 % bootstrap interval over
prompts, how many pair verdicts int8 changes, the mean |dP(yes)| over every answer, the validation
answer accuracy, and the scoring time of each (same process, one after the other).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from t2ieval.images import load_image
from t2ieval.io import read_table
from t2ieval.metrics import accuracy_report
from t2ieval.params import load_params
from t2ieval.pipeline.vqa import read_qa, score_stage
from t2ieval.runtime import configure_process, pick_device

log = logging.getLogger("vqa_int8_accuracy")


def _score(pairs, images, qa, model_dir: Path, params):
    t0 = time.perf_counter()
    result = score_stage(
        pairs,
        images,
        qa,
        model_dir=model_dir,
        device=pick_device("cpu"),
        infer_batch_size=params.vqa.infer_batch_size,
        load=load_image,
    )
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=Path("."), help="a reproduced project")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = args.project.resolve()
    params = load_params(root / "params.yaml")
    configure_process(params.base.seed, params.base.threads, params.base.cpu_isa)
    pairs = read_table(root / "data/split/pairs.csv", ["pair_id", "split", "preferred", "prompt"])
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    images = read_table(root / "data/split/images.csv", ["image", "pair_id", "split", "prompt"])
    images["pair_id"] = images["pair_id"].astype(str)
    images["image"] = [str(root / p) for p in images["image"]]
    qa = read_qa(root / "data/prepared/qa.csv")
    if qa is not None:
        qa["image"] = [str(root / p) for p in qa["image"]]
    model_dir = root / "models/vqa"
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        int8_dir = Path(tmp) / "vqa"
        shutil.copytree(model_dir, int8_dir)
        settings = json.loads((int8_dir / "t2ieval_vqa.json").read_text())
        settings["quantize"] = "int8"
        (int8_dir / "t2ieval_vqa.json").write_text(json.dumps(settings, indent=2))
        for mode, folder in (("fp32", model_dir), ("int8", int8_dir)):
            runs[mode] = _score(pairs, images, qa, folder, params)
            log.warning("%s scored in %.1f s", mode, runs[mode][1])

    meta = pairs[["pair_id", "preferred", "prompt"]]
    reports, verdict = {}, {}
    for mode, (result, _) in runs.items():
        table = result.scores.merge(meta, on="pair_id")
        reports[mode] = accuracy_report(
            table, "d", category_splits=(), intervals=True, seed=params.base.seed
        )
        verdict[mode] = table.set_index("pair_id").sort_index()
    a, b = verdict["fp32"], verdict["int8"]
    flips = np.sign(a["score_1"] - a["score_2"]) != np.sign(b["score_1"] - b["score_2"])
    dp = np.abs(
        runs["fp32"][0].answers["p_yes"].to_numpy() - runs["int8"][0].answers["p_yes"].to_numpy()
    )

    print(
        f"\nD-branch int8 vs fp32 on {root} ({len(pairs)} pairs; CPU, "
        f"{params.base.threads} threads)"
    )
    print(
        f"{'split':5} | {'fp32 accuracy [95% CI]':24} | {'int8 accuracy [95% CI]':24} "
        "| verdicts changed"
    )
    for split in ("train", "val", "test"):
        cells = []
        for mode in ("fp32", "int8"):
            r = reports[mode]
            key = f"{split}_accuracy_d"
            cells.append(f"{r[key]:.3f} [{r[key + '_ci_low']:.3f}, {r[key + '_ci_high']:.3f}]")
        n_split = int((a["split"] == split).sum())
        n_flip = int(flips[(a["split"] == split).to_numpy()].sum())
        print(f"{split:5} | {cells[0]:24} | {cells[1]:24} | {n_flip} of {n_split}")
    m32, m8 = runs["fp32"][0].metrics, runs["int8"][0].metrics
    if m32.get("vqa_answer_accuracy") is not None:
        print(
            f"validation answer accuracy: fp32 {m32['vqa_answer_accuracy']:.3f}, "
            f"int8 {m8['vqa_answer_accuracy']:.3f}"
        )
    print(
        f"P(yes) over {len(dp)} answers: mean |dP| {dp.mean():.2e}, max {dp.max():.2e}; "
        f"scoring time fp32 {runs['fp32'][1]:.1f} s, int8 {runs['int8'][1]:.1f} s "
        f"(ratio {runs['fp32'][1] / runs['int8'][1]:.2f}x)"
    )


if __name__ == "__main__":
    main()
