"""The ``run_vqa`` stage's logic: get a VQA model (train the embedded one or load a checkpoint),
answer every image's questions, and turn the answers into D-scores and metrics.

The stage script (``stages/run_vqa.py``) only reads params, calls :func:`run` and writes files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image

from t2ieval.data.scenes import Scene, scene_facts
from t2ieval.metrics import accuracy_by, pairwise_accuracy
from t2ieval.vqa.model import EMBEDDED_MODELS, VqaModel, load_embedded_spec, load_vqa_model
from t2ieval.io import read_json, write_json
from t2ieval.vqa.score import SCORER_SETTINGS, AnswerCache, VqaScorer, image_hash
from t2ieval.vqa.train import (QaExamples, TrainSettings, answer_accuracy, build_embedded_model,
                               save_vqa, train_vqa)

log = logging.getLogger(__name__)

TRAINED_CACHE = "trained"             # cache/vqa/trained/<key>/: embedded models by training input
QA_COLUMNS = ("image", "pair_id", "question", "answer", "kind")
ANSWER_COLUMNS = ["pair_id", "image", "slot", "question", "kind", "p_yes"]


class VqaStageError(ValueError):
    """The stage cannot run with these inputs; the message says why and what to change."""


@dataclass
class VqaRunResult:
    """What the stage writes."""

    answers: pd.DataFrame          # ANSWER_COLUMNS (+ split)
    scores: pd.DataFrame           # pair_id, split, score_1, score_2
    metrics: dict[str, float | int | None]
    curve: list[dict] = field(default_factory=list)
    vqa: VqaModel | None = None
    n_computed: int = 0   # answers the model computed (the rest came from the cache)
    n_forward: int = 0    # model forward passes of the scoring


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
        raise VqaStageError(f"{path}: row {row + 2}: answer must be 'yes' or 'no', "
                            f"got {qa['answer'].iloc[row]!r}")
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
                raise VqaStageError(f"{path}: line {line_no}: not a scene record "
                                    f"({type(exc).__name__}: {exc})") from exc
    return scenes


def _examples(qa: pd.DataFrame, images: dict[str, Image.Image],
              scenes: dict[str, Scene] | None = None) -> QaExamples:
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
            raise VqaStageError(f"data/prepared/scenes.jsonl: no scene for {len(missing)} "
                                f"image(s) with questions, e.g. {missing[0]}")
        facts = np.stack([scene_facts(scenes[n]) for n in names])
    return QaExamples([images[n] for n in names], qa["image"].map(pos).to_numpy(),
                      list(qa["question"]), (qa["answer"] == "yes").astype(int).to_numpy(),
                      groups, facts)


def _training_key(name: str, train_qa: pd.DataFrame, hashes: dict[str, str],
                  settings: TrainSettings, texts: list[str],
                  facts: np.ndarray | None = None) -> str:
    """Identity of a training run: data (by image content), settings, spec and training code."""
    h = hashlib.sha256()
    h.update(json.dumps(load_embedded_spec(name), sort_keys=True).encode())
    h.update(json.dumps(asdict(settings), sort_keys=True).encode())
    for module in ("train.py", "tokenizer.py", "model.py", "auxiliary.py"):
        h.update((Path(__file__).parent / module).read_bytes())
    h.update(b"no facts" if facts is None else np.ascontiguousarray(facts).tobytes())
    frame = train_qa.assign(image=train_qa["image"].map(hashes))[["image", "question", "answer"]]
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    h.update("\n".join(texts).encode())
    return h.hexdigest()[:24]


def get_embedded_model(name: str, qa: pd.DataFrame | None, image_split: pd.DataFrame,
                       load: Callable[[str], Image.Image], settings: TrainSettings, device,
                       out_dir: Path, cache_dir: Path | None,
                       scenes: dict[str, Scene] | None = None,
                       hashes: dict[str, str] | None = None) -> tuple[VqaModel, list[dict]]:
    """Train the embedded ViLT on the train split's questions (or reuse an identical run).

    ``hashes`` (image path -> :func:`image_hash`) is filled in for every image loaded here, so
    that scoring afterwards does not hash them again.

    ``scenes`` (the generator's scene graphs) give the auxiliary loss its facts; without them it
    falls back to each image's answer sheet (see :mod:`t2ieval.vqa.auxiliary`).
    """
    if qa is None:
        raise VqaStageError(
            f"vqa.model is the embedded {name!r}, which is trained on the synthetic set's "
            "generated questions, but data/prepared/qa.csv is absent or empty (user data has "
            "none). Set vqa.model in params.yaml to a real VQA checkpoint: a hub name such as "
            "dandelin/vilt-b32-finetuned-vqa or Salesforce/blip-vqa-base, or a local folder "
            "holding one (see docs/vqa.md)."
        )
    split_of = image_split.set_index("image")["split"]
    qa = qa.assign(split=qa["image"].map(split_of))
    unknown = qa["split"].isna()
    if unknown.any():
        log.warning("%d qa.csv rows name images absent from data/split/images.csv; ignored",
                    int(unknown.sum()))
        qa = qa[~unknown]
    train_qa = qa[qa["split"] == "train"].reset_index(drop=True)
    val_qa = qa[qa["split"] == "val"].reset_index(drop=True)
    if train_qa.empty:
        raise VqaStageError("data/prepared/qa.csv has no question about a train-split image")
    names = sorted(set(train_qa["image"]) | set(val_qa["image"]))
    images = {n: load(n) for n in names}
    hashes = {} if hashes is None else hashes
    hashes.update({n: image_hash(img) for n, img in images.items() if n not in hashes})
    prompts = image_split.loc[image_split["split"] == "train", "prompt"].drop_duplicates()
    texts = sorted(set(train_qa["question"])) + sorted(prompts)
    if scenes is None:
        log.warning("no scene graphs (data/prepared/scenes.jsonl): the auxiliary loss uses each "
                    "image's answers to its train questions instead, a weaker signal")
    train = _examples(train_qa, images, scenes)
    key = _training_key(name, train_qa, hashes, settings, texts, train.facts)
    cached = cache_dir / TRAINED_CACHE / key if cache_dir is not None else None
    if cached is not None and (cached / "config.json").is_file():
        log.info("reusing the embedded VQA model trained on the same inputs (%s)", cached)
        vqa = load_vqa_model(cached, kind="vilt", device=device)
        history = read_json(cached / "train_curve.json")
    else:
        vqa = build_embedded_model(name, texts, device=device)
        val = _examples(val_qa, images) if not val_qa.empty else None
        history = train_vqa(vqa, train, settings, val=val, progress=True)
        if cached is not None:
            save_vqa(vqa, cached)
            write_json(cached / "train_curve.json", history)
    _reset_dir(out_dir)
    if cached is not None:  # the files as training saved them: a tokenizer re-saved after loading
        for f in cached.iterdir():  # gains config keys, and models/vqa would change its bytes
            if f.is_file() and f.name != "train_curve.json":
                shutil.copy2(f, out_dir / f.name)
    else:
        save_vqa(vqa, out_dir)
    return vqa, history


def _pairs_to_scores(answers: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    per = answers.groupby(["pair_id", "slot"], sort=False)["p_yes"].mean().unstack("slot")
    per = per.reindex(columns=[1, 2])
    out = pairs[["pair_id", "split"]].copy()
    out["score_1"] = out["pair_id"].map(per[1]).to_numpy(dtype=float)
    out["score_2"] = out["pair_id"].map(per[2]).to_numpy(dtype=float)
    return out


def run(pairs: pd.DataFrame, image_split: pd.DataFrame, qa: pd.DataFrame | None, *,
        model: str, kind: str, device, settings: TrainSettings, train_embedded: bool,
        infer_batch_size: int, max_questions: int, model_dir: Path,
        cache_dir: Path | None, load: Callable[[str], Image.Image],
        scenes: dict[str, Scene] | None = None) -> VqaRunResult:
    """Everything the ``run_vqa`` stage computes (``load`` opens an image by its table path).

    ``scenes`` (image path -> scene graph) feed the embedded model's auxiliary loss.
    """
    for col in ("image", "pair_id", "split", "prompt", "slot"):
        if col not in image_split.columns:
            raise VqaStageError(f"data/split/images.csv: missing column {col!r}")
    history: list[dict] = []
    hashes: dict[str, str] = {}  # image path -> image_hash, computed once per image
    if model in EMBEDDED_MODELS:
        if train_embedded:
            vqa, history = get_embedded_model(model, qa, image_split, load, settings, device,
                                              model_dir, cache_dir, scenes, hashes)
        elif (model_dir / "config.json").is_file():
            vqa = load_vqa_model(model_dir, kind="vilt", device=device)
        else:
            raise VqaStageError(f"vqa.train_embedded is false but {model_dir} holds no trained "
                                "model; set it to true or point vqa.model to a checkpoint")
    else:
        vqa = load_vqa_model(model, kind=kind, device=device)  # type: ignore[arg-type]
        _reset_dir(model_dir)
        save_vqa(vqa, model_dir)  # the served model then needs no hub either
    write_json(model_dir / SCORER_SETTINGS,
               {"source": str(model), "kind": vqa.kind, "max_questions": max_questions,
                "fingerprint": vqa.fingerprint})

    cache = AnswerCache(cache_dir) if cache_dir is not None else None
    scorer = VqaScorer(vqa, cache=cache, batch_size=infer_batch_size,
                       max_questions=max_questions, progress=True)
    table = image_split[["pair_id", "image", "slot", "split", "prompt"]]
    answers = scorer.score_table(table, load, hashes)
    answers = answers[ANSWER_COLUMNS + ["split"]]
    scores = _pairs_to_scores(answers, pairs)

    metrics: dict[str, float | int | None] = {}
    truth = pairs.set_index("pair_id")
    for split in ("train", "val", "test"):
        s = scores[scores["split"] == split]
        metrics[f"{split}_accuracy_d"] = pairwise_accuracy(
            s["score_1"], s["score_2"], truth.loc[s["pair_id"], "preferred"])
    if "category" in pairs.columns:
        val = scores[scores["split"] == "val"].merge(pairs[["pair_id", "preferred", "category"]],
                                                     on="pair_id")
        for cat, acc in accuracy_by(val, "category").items():
            metrics[f"val_accuracy_d.{cat}"] = acc

    metrics["vqa_answer_accuracy"] = None
    if qa is not None:
        split_of = image_split.set_index("image")["split"]
        val_qa = qa[qa["image"].map(split_of) == "val"].reset_index(drop=True)
        if not val_qa.empty:
            positions = {p: i for i, p in enumerate(dict.fromkeys(val_qa["image"]))}
            paths = list(positions)
            p = scorer.answer([(lambda p=p: load(p)) for p in paths],
                              [(positions[i], q) for i, q in zip(val_qa["image"], val_qa["question"])],
                              hashes=[hashes[p] for p in paths])
            labels = (val_qa["answer"] == "yes").astype(int).to_numpy()
            metrics["vqa_answer_accuracy"] = answer_accuracy(p, labels)
            for kind_name, idx in val_qa.groupby("kind").indices.items():
                metrics[f"vqa_answer_accuracy.{kind_name}"] = answer_accuracy(p[idx], labels[idx])
            if history:
                history[-1] = {**history[-1], "val_answer_accuracy": metrics["vqa_answer_accuracy"]}
    per_image = answers.groupby("image").size()
    metrics["questions"] = int(len(answers))
    metrics["questions_per_image"] = float(per_image.mean()) if len(per_image) else 0.0
    metrics["model_parameters"] = int(sum(p.numel() for p in vqa.model.parameters()))
    log.info("run_vqa: %d answers (%d computed, %d forward passes)", len(answers),
             scorer.n_computed, scorer.n_forward)
    if cache is not None:
        cache.close()
    return VqaRunResult(answers=answers[ANSWER_COLUMNS], scores=scores, metrics=metrics,
                        curve=history, vqa=vqa, n_computed=scorer.n_computed,
                        n_forward=scorer.n_forward)


def _reset_dir(folder: Path) -> None:
    """Empty ``folder`` before a model is saved there (no stale files of another model)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
