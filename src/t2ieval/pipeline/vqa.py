"""The D-branch stages' logic.

* ``train_vqa`` (:func:`train_stage`): train the embedded ViLT on the generated questions, or
  export a VQA checkpoint, into ``models/vqa``; or record that the branch is off.
* ``score_vqa`` (:func:`score_stage`): answer every image's questions with that model and turn
  the answers into D-scores and metrics.

The stage scripts only read params, call one of these and write files.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from t2ieval.batching import pair_scores, score_image_table
from t2ieval.data.scenes import Scene, scene_facts
from t2ieval.io import write_json
from t2ieval.metrics import accuracy_report
from t2ieval.runtime import seed_everything
from t2ieval.vqa.model import (
    EMBEDDED_MODELS,
    QUANTIZE_MODES,
    VqaModel,
    build_embedded_model,
    load_vqa_model,
    save_vqa,
)
from t2ieval.vqa.score import SCORER_SETTINGS, VqaScorer, scorer_enabled
from t2ieval.vqa.settings import TrainSettings
from t2ieval.vqa.train import QaExamples, answer_accuracy, train_vqa

log = logging.getLogger(__name__)

QA_COLUMNS = ("image", "pair_id", "question", "answer", "kind")
ANSWER_COLUMNS = ["pair_id", "image", "slot", "question", "kind", "p_yes"]
#: columns of the training curve (a stage that trains nothing writes just this header)
CURVE_COLUMNS = [
    "epoch",
    "train_loss",
    "train_answer_accuracy",
    "train_aux_loss",
    "val_answer_accuracy",
]


class VqaStageError(ValueError):
    """The stage cannot run with these inputs; the message says why and what to change."""


def read_qa(path: Path) -> pd.DataFrame | None:
    """The generated question/answer table, or None when the file is absent or has no row."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    qa = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if qa.empty:
        return None
    missing = [c for c in QA_COLUMNS if c not in qa.columns]
    if missing:
        raise VqaStageError(f"{path}: missing column(s) {missing}; found {list(qa.columns)}")
    bad = ~qa["answer"].isin(["yes", "no"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise VqaStageError(
            f"{path}: row {row + 2}: answer must be 'yes' or 'no', got {qa['answer'].iloc[row]!r}"
        )
    return qa


def read_scenes(path: Path) -> dict[str, Scene] | None:
    """The synthetic set's scene graph of every image (``scenes.jsonl``), or None when absent."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    scenes: dict[str, Scene] = {}
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                scenes[str(row["image"])] = Scene.from_dict(row["scene"])
            except (ValueError, KeyError, TypeError) as exc:
                raise VqaStageError(
                    f"{path}: line {line_no}: not a scene record ({type(exc).__name__}: {exc})"
                ) from exc
    return scenes


def _examples(
    qa: pd.DataFrame, images: dict[str, Image.Image], scenes: dict[str, Scene] | None = None
) -> QaExamples:
    """Training examples; a pair's two images asked the same question share a batch.

    Such minimal pairs differ in the one attribute the pair was built to differ in, so batching
    them together puts the image evidence, not the question's prior, into the gradient. With
    ``scenes``, every image also carries its scene facts for the auxiliary loss.
    """
    names = sorted(set(qa["image"]))
    pos = {n: i for i, n in enumerate(names)}
    groups = pd.factorize(qa["pair_id"].astype(str) + "\x1f" + qa["question"])[0]
    facts = None
    if scenes is not None:
        missing = [n for n in names if n not in scenes]
        if missing:
            raise VqaStageError(
                f"data/prepared/scenes.jsonl: no scene for {len(missing)} "
                f"image(s) with questions, e.g. {missing[0]}"
            )
        facts = np.stack([scene_facts(scenes[n]) for n in names])
    return QaExamples(
        [images[n] for n in names],
        qa["image"].map(pos).to_numpy(),
        list(qa["question"]),
        (qa["answer"] == "yes").astype(int).to_numpy(),
        groups,
        facts,
    )


def train_embedded_model(
    name: str,
    qa: pd.DataFrame | None,
    image_split: pd.DataFrame,
    load: Callable[[str], Image.Image],
    settings: TrainSettings,
    seed: int,
    device,
    scenes: dict[str, Scene] | None = None,
) -> tuple[VqaModel, list[dict]]:
    """Train the embedded ViLT on the train split's generated questions.

    ``scenes`` (the generator's scene graphs) give the auxiliary loss its facts; without them it
    falls back to each image's answer sheet (see :mod:`t2ieval.vqa.auxiliary`). A run with the
    same inputs is skipped by DVC's run cache, not by a cache of ours.
    """
    if qa is None:
        raise VqaStageError(
            f"vqa.model is the embedded {name!r}, which is trained on the synthetic set's "
            "generated questions, but data/prepared/qa.csv is absent or empty (user data has "
            "none). Set vqa.model in params.yaml to a real VQA checkpoint: a hub name such as "
            "dandelin/vilt-b32-finetuned-vqa or Salesforce/blip-vqa-base, or a local folder "
            "holding one (see docs/vqa.md); or turn the D-branch off with vqa.enabled: false."
        )
    split_of = image_split.set_index("image")["split"]
    qa = qa.assign(split=qa["image"].map(split_of))
    unknown = qa["split"].isna()
    if unknown.any():
        log.warning(
            "%d qa.csv rows name images absent from data/split/images.csv; ignored",
            int(unknown.sum()),
        )
        qa = qa[~unknown]
    train_qa = qa[qa["split"] == "train"].reset_index(drop=True)
    val_qa = qa[qa["split"] == "val"].reset_index(drop=True)
    if train_qa.empty:
        raise VqaStageError("data/prepared/qa.csv has no question about a train-split image")
    names = sorted(set(train_qa["image"]) | set(val_qa["image"]))
    images = {n: load(n) for n in names}
    prompts = image_split.loc[image_split["split"] == "train", "prompt"].drop_duplicates()
    texts = sorted(set(train_qa["question"])) + sorted(prompts)
    if scenes is None:
        log.warning(
            "no scene graphs (data/prepared/scenes.jsonl): the auxiliary loss uses each "
            "image's answers to its train questions instead, a weaker signal"
        )
    train = _examples(train_qa, images, scenes)
    seed_everything(seed)  # the random initialisation: same seed, same model
    vqa = build_embedded_model(name, texts, device=device)
    val = _examples(val_qa, images) if not val_qa.empty else None
    history = train_vqa(vqa, train, settings, seed, val=val, progress=True)
    return vqa, history


@dataclass
class VqaModelResult:
    """What the ``train_vqa`` stage writes besides the model folder."""

    vqa: VqaModel | None  # None: the D-branch is off
    curve: list[dict]
    metrics: dict[str, float | int | str | None]


def train_stage(
    image_split: pd.DataFrame,
    qa: pd.DataFrame | None,
    *,
    enabled: bool,
    model: str,
    kind: str,
    device,
    settings: TrainSettings,
    seed: int,
    train_embedded: bool,
    max_questions: int,
    out_dir: Path,
    load: Callable[[str], Image.Image],
    scenes: dict[str, Scene] | None = None,
    quantize: str = "none",
) -> VqaModelResult:
    """The ``train_vqa`` stage: train the embedded ViLT or export ``model``, into ``out_dir``.

    ``out_dir`` always ends up holding :data:`SCORER_SETTINGS` (how the model is to be used,
    ``enabled: false`` when the D-branch is off) and, when on, the model in its
    ``save_pretrained`` form, so that scoring and the served model need no hub. The settings
    hold the question cap and ``quantize`` (``none``, ``bf16`` or ``int8``), which every scorer
    loaded from the folder applies (``score_vqa``, the served model, Spark); the saved weights
    stay fp32.
    """
    if quantize not in QUANTIZE_MODES:
        raise VqaStageError(f"vqa.quantize must be one of {list(QUANTIZE_MODES)}, got {quantize!r}")
    _reset_dir(out_dir)
    if not enabled:
        write_json(out_dir / SCORER_SETTINGS, {"enabled": False})
        log.info("vqa.enabled is false: the D-branch is off")
        return VqaModelResult(None, [], {"d_branch": "off"})
    history: list[dict] = []
    if model in EMBEDDED_MODELS:
        if not train_embedded:
            raise VqaStageError(
                f"vqa.model is the embedded {model!r}, which has no weights until this stage "
                "trains it, but vqa.train_embedded is false: set it to true, point vqa.model to "
                "a VQA checkpoint, or turn the D-branch off with vqa.enabled: false"
            )
        vqa, history = train_embedded_model(
            model, qa, image_split, load, settings, seed, device, scenes
        )
    else:
        vqa = load_vqa_model(model, kind=kind, device=device)  # type: ignore[arg-type]
    save_vqa(vqa, out_dir)
    write_json(
        out_dir / SCORER_SETTINGS,
        {
            "enabled": True,
            "source": str(model),
            "kind": vqa.kind,
            "max_questions": max_questions,
            "quantize": quantize,
            "fingerprint": vqa.fingerprint,
        },
    )
    metrics: dict[str, float | int | str | None] = {
        "d_branch": "on",
        "kind": vqa.kind,
        "trained": bool(history),
        "model_parameters": int(sum(p.numel() for p in vqa.model.parameters())),
    }
    if history:
        metrics.update({f"final_{k}": v for k, v in history[-1].items() if k != "epoch"})
    return VqaModelResult(vqa, history, metrics)


@dataclass
class VqaScoreResult:
    """What the ``score_vqa`` stage writes."""

    answers: pd.DataFrame  # ANSWER_COLUMNS
    scores: pd.DataFrame  # pair_id, split, score_1, score_2 (NaN when the branch is off)
    metrics: dict[str, float | int | str | None]
    n_computed: int = 0  # answers the model computed
    n_forward: int = 0  # model forward passes of the scoring


def score_stage(
    pairs: pd.DataFrame,
    image_split: pd.DataFrame,
    qa: pd.DataFrame | None,
    *,
    model_dir: Path,
    device,
    infer_batch_size: int,
    load: Callable[[str], Image.Image],
    quantize: str | None = None,
) -> VqaScoreResult:
    """The ``score_vqa`` stage: ask every image its prompt's questions with the stage's model.

    D-score of an image = mean P(yes) over its questions; pairwise accuracy per split and per
    validation category; with generated questions (``qa``), the answer accuracy on validation.
    ``quantize`` overrides the folder's ``vqa.quantize`` (None: the folder's; the stage passes
    None, ``benchmarks/vqa_quantize_accuracy.py`` compares modes with it).
    """
    for col in ("image", "pair_id", "split", "prompt", "slot"):
        if col not in image_split.columns:
            raise VqaStageError(f"data/split/images.csv: missing column {col!r}")
    if not scorer_enabled(model_dir):
        scores = pairs[["pair_id", "split"]].assign(score_1=np.nan, score_2=np.nan)
        return VqaScoreResult(pd.DataFrame(columns=ANSWER_COLUMNS), scores, {"d_branch": "off"})
    scorer = VqaScorer.load(
        model_dir, device=device, batch_size=infer_batch_size, quantize=quantize
    )
    scorer.progress = True
    table = image_split[["pair_id", "image", "slot", "split", "prompt"]].reset_index(drop=True)
    d, parts = score_image_table(table, scorer.score_images, load=load, desc="VQA-scoring images")
    found = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["image", "question", "kind", "p_yes"])
    )
    row = table.loc[found["image"].to_numpy()].reset_index(drop=True)
    answers = pd.concat(
        [
            row[["pair_id", "slot", "split"]].assign(image=row["image"]),
            found[["question", "kind", "p_yes"]],
        ],
        axis=1,
    )
    scores = pair_scores(pairs, table, d)
    metrics: dict[str, float | int | str | None] = {
        "d_branch": "on",
        **accuracy_report(scores.merge(pairs.drop(columns="split"), on="pair_id"), "d"),
    }

    metrics["vqa_answer_accuracy"] = None
    if qa is not None:
        split_of = image_split.set_index("image")["split"]
        val_qa = qa[qa["image"].map(split_of) == "val"].reset_index(drop=True)
        if not val_qa.empty:
            positions = {p: i for i, p in enumerate(dict.fromkeys(val_qa["image"]))}
            p = scorer.answer(
                [load(p) for p in positions],
                [(positions[i], q) for i, q in zip(val_qa["image"], val_qa["question"])],
            )
            labels = (val_qa["answer"] == "yes").astype(int).to_numpy()
            metrics["vqa_answer_accuracy"] = answer_accuracy(p, labels)
            for kind_name, idx in val_qa.groupby("kind").indices.items():
                metrics[f"vqa_answer_accuracy.{kind_name}"] = answer_accuracy(p[idx], labels[idx])
    per_image = answers.groupby("image").size()
    metrics["questions"] = int(len(answers))
    metrics["questions_per_image"] = float(per_image.mean()) if len(per_image) else 0.0
    log.info(
        "score_vqa: %d answers (%d computed, %d forward passes)",
        len(answers),
        scorer.n_computed,
        scorer.n_forward,
    )
    return VqaScoreResult(
        answers=answers[ANSWER_COLUMNS],
        scores=scores,
        metrics=metrics,
        n_computed=scorer.n_computed,
        n_forward=scorer.n_forward,
    )


def _reset_dir(folder: Path) -> None:
    """Empty ``folder`` before a model is saved there (no stale files of another model)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
