"""``t2ieval eval``: the pairwise accuracy of a model on a preference manifest, as published
tables report it.

:func:`evaluate_manifest` reads and checks a manifest (:mod:`t2ieval.data.manifest`), scores both
images of every pair in batches through the composite scorer (:meth:`Evaluator.score_pairs`),
and reports the accuracy with a 95 % bootstrap interval over prompt groups, the accuracy per
category, the counts, a ``result.csv`` with one row per pair, and one MLflow run.

**Tie policy** (``ties``), for the pairs the raters found equal (``preferred`` 0 or ``tie``):

* ``drop`` (default): such a pair is left out of the accuracy, is not scored and is counted
  (``ties_dropped``). ImageReward's ``test.py`` does this (its ``acc`` counts a pair only when
  the two ``ranking`` values differ), and so does every owner whose test set holds no tie.
* ``half``: such a pair is kept and earns 0.5 whatever the model says (``ties_scored``). This is
  PickScore's ``eval_preference_predictor.py`` at threshold 0: a tie label against a non-tie
  prediction scores 0.5.

A model's own exact tie (``score_1 == score_2``) earns 0.5 under both policies, the project's one
rule (:func:`t2ieval.metrics.pair_credit`); its ``verdict`` is 0 in ``result.csv``.

The accuracy is pooled over pairs (credit sum / pairs), as ImageReward's ``test.py`` pools it;
``accuracy_prompt_mean`` is the mean over prompts of each prompt's accuracy, the average HPSv2's
``evaluation.py`` reports. The two are equal when every prompt has as many scored pairs.
See ``docs/eval.md``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from tqdm import tqdm

from t2ieval.data.manifest import (
    ManifestError,
    ManifestRow,
    RowProblem,
    check_rows,
    image_problem,
    is_blank,
    read_manifest,
)
from t2ieval.data.split import prompt_key
from t2ieval.images import ImageError, load_image
from t2ieval.io import write_json, write_table
from t2ieval.metrics import accuracy_report, pair_credit, verdicts

if TYPE_CHECKING:  # pragma: no cover
    from t2ieval.evaluator import Evaluator

log = logging.getLogger(__name__)

TIE_POLICIES = ("drop", "half")
ON_ERROR = ("skip", "fail")
EXPERIMENT = "t2ieval-eval"
DEFAULT_BATCH_SIZE = 32
#: result.csv: one row per scored pair, in manifest order (``p_1_over_2`` when the scorer gives it)
RESULT_COLUMNS = [
    "pair_id",
    "row",
    "prompt",
    "category",
    "image_1",
    "image_2",
    "score_1",
    "score_2",
    "clip_score_1",
    "clip_score_2",
    "ce_score_1",
    "ce_score_2",
    "d_score_1",
    "d_score_2",
    "verdict",
    "preferred",
    "credit",
]
OPTIONAL_COLUMNS = ["p_1_over_2"]
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class EvalError(ValueError):
    """The evaluation cannot run or has nothing to report; the message says why."""


@dataclass
class EvalRun:
    """What :func:`evaluate_manifest` returns: the summary it prints and ``result.csv``'s rows."""

    summary: dict[str, Any]
    result: pd.DataFrame


def _category(checked: ManifestRow) -> str:
    value = checked.extra.get("category")
    return "unknown" if is_blank(value) else str(value).strip()


def _score(
    evaluator: Evaluator, rows: list[ManifestRow], batch_size: int, on_error: str, manifest: Path
) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Score ``rows`` ``batch_size`` pairs at a time; rows whose images do not load are skipped
    (``on_error="skip"``, returned as problems) or stop the run (``"fail"``)."""
    frames, problems = [], []
    for start in tqdm(
        range(0, len(rows), batch_size),
        desc="scoring pairs",
        unit="batch",
        mininterval=2.0,
        leave=False,
    ):
        chunk, images = rows[start : start + batch_size], {}
        kept, firsts, seconds = [], [], []
        for checked in chunk:
            loaded, bad = [], []
            for field in ("image_1", "image_2"):
                path = getattr(checked, field)
                if path not in images:
                    try:
                        images[path] = load_image(path, evaluator.max_pixels)
                    except ImageError as exc:
                        images[path] = exc
                if isinstance(images[path], ImageError):
                    bad.append(image_problem(checked.row, field, images[path]))
                else:
                    loaded.append(images[path])
            if bad:
                if on_error == "fail":
                    raise ManifestError(manifest, bad, advice="fix them or pass --on-error skip")
                problems.extend(bad)
                continue
            kept.append(checked)
            firsts.append(loaded[0])
            seconds.append(loaded[1])
        if not kept:
            continue
        scored = evaluator.score_pairs([r.prompt for r in kept], firsts, seconds)
        scored = scored.drop(columns=["preferred", "branches"], errors="ignore")
        frames.append(
            scored.assign(
                pair_id=[r.pair_id for r in kept],
                row=[r.row for r in kept],
                prompt=[r.prompt for r in kept],
                category=[_category(r) for r in kept],
                image_1=[r.image_1 for r in kept],
                image_2=[r.image_2 for r in kept],
                preferred=[r.preferred for r in kept],
            )
        )
    if not frames:
        return pd.DataFrame(columns=RESULT_COLUMNS), problems
    return pd.concat(frames, ignore_index=True), problems


def _metrics(result: pd.DataFrame, seed: int) -> tuple[dict[str, Any], dict[str, dict]]:
    """The overall metrics and the per-category table, through the one accuracy report."""
    report = accuracy_report(
        result.assign(split="all"),
        splits=("all",),
        category_splits=("all",),
        intervals=True,
        seed=seed,
        human_ties=True,
    )
    overall = {k.removeprefix("all_"): v for k, v in report.items() if "." not in k}
    per_category: dict[str, dict] = {}
    for key, value in report.items():
        if key.startswith("all_pairs."):
            cat = key.removeprefix("all_pairs.")
            acc = f"all_accuracy.{cat}"
            per_category[cat] = {
                "accuracy": report[acc],
                "ci_low": report[f"{acc}_ci_low"],
                "ci_high": report[f"{acc}_ci_high"],
                "pairs": value,
            }
    by_prompt = result.groupby(result["prompt"].map(prompt_key))["credit"].mean()
    overall["accuracy_prompt_mean"] = float(by_prompt.mean())
    overall["prompts"] = int(by_prompt.size)
    return overall, per_category


def registry_model(model: str) -> tuple[str, str | None, str | None] | None:
    """``(name, alias, version)`` of a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` URI,
    None for any other model URI or path."""
    match = _REGISTRY_URI.match(str(model))
    if match is None:
        return None
    return match.group("name"), match.group("alias"), match.group("version")


def _model_version(client, model: str) -> dict[str, str]:
    """Tags naming the registered version behind ``model`` (none for other URIs)."""
    parsed = registry_model(model)
    if parsed is None:
        return {}
    name, alias, version = parsed
    try:
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
    except Exception as exc:  # noqa: BLE001 - an MlflowException of any kind: just say so
        log.warning("cannot resolve the version of %s: %s", model, exc)
        return {"model_name": name}
    return {
        "model_name": name,
        "model_version": str(mv.version),
        "model_run_id": str(mv.run_id or ""),
    }


_METRIC_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")


def _artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Where a new experiment keeps its artifacts: for a local SQLite store, ``mlruns/`` beside
    the database (as a pipeline run at the project root does), whatever the working directory;
    MLflow's default (None) for any other store."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    if not database.is_absolute():
        database = Path.cwd() / database
    return (database.parent / "mlruns" / re.sub(r"[^A-Za-z0-9_.-]", "_", experiment)).as_uri()


def _log_run(
    summary: dict[str, Any], result_csv: Path, tracking_uri: str | None, experiment: str
) -> dict[str, str]:
    """One MLflow run in ``experiment``: params, metrics, tags and ``result.csv``; the process's
    MLflow URIs and environment are left as they were. Returns the run's ids and version tags."""
    import tempfile

    import mlflow
    from mlflow.entities import Metric, Param

    from t2ieval.tracking import run_tags, using_tracking_uri

    with using_tracking_uri(tracking_uri) as uri:
        client = mlflow.MlflowClient()
        version = _model_version(client, summary["model"])
        found = client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found
            else client.create_experiment(
                experiment, artifact_location=_artifact_location(uri, experiment)
            )
        )
        tags = {
            "t2ieval.kind": "eval",
            **run_tags("."),
            "model_uri": summary["model"],
            "manifest_sha256": summary["manifest_sha256"],
            **version,
        }
        run = client.create_run(
            experiment_id, run_name=f"eval {Path(summary['manifest']).name}", tags=tags
        )
        run_id = run.info.run_id
        try:
            params = {
                "model_uri": summary["model"],
                "manifest": summary["manifest"],
                "manifest_sha256": summary["manifest_sha256"],
                "ties": summary["ties"],
                "image_root": str(summary["image_root"]),
                "on_error": summary["on_error"],
                "batch_size": str(summary["batch_size"]),
                "seed": str(summary["seed"]),
            }
            numbers = {
                k: v
                for k, v in summary.items()
                if isinstance(v, (int, float))
                and not isinstance(v, bool)
                and k not in ("batch_size", "seed")
                and v is not None
            }
            for cat, values in summary["per_category"].items():
                safe = _METRIC_NAME.sub("_", cat)
                numbers[f"accuracy.{safe}"] = values["accuracy"]
                numbers[f"accuracy.{safe}_ci_low"] = values["ci_low"]
                numbers[f"accuracy.{safe}_ci_high"] = values["ci_high"]
                numbers[f"pairs.{safe}"] = values["pairs"]
            client.log_batch(
                run_id,
                params=[Param(k, v) for k, v in params.items()],
                metrics=[Metric(k, float(v), 0, 0) for k, v in numbers.items() if v is not None],
            )
            client.log_artifact(run_id, str(result_csv))
            with tempfile.TemporaryDirectory() as tmp:
                client.log_artifact(run_id, str(write_json(Path(tmp) / "summary.json", summary)))
            client.set_terminated(run_id)
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
    log.info("logged the evaluation as run %s in experiment %s (%s)", run_id, experiment, uri)
    return {
        "tracking_uri": uri,
        "experiment": experiment,
        "experiment_id": experiment_id,
        "run_id": run_id,
        **version,
    }


def evaluate_manifest(
    model: str | Path,
    manifest: str | Path,
    *,
    image_root: str | Path | None = None,
    ties: str = "drop",
    out: str | Path = "result.csv",
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_error: str = "skip",
    seed: int = 0,
    device: str = "auto",
    log_run: bool = True,
    evaluator: Evaluator | None = None,
) -> EvalRun:
    """The pairwise accuracy of ``model`` on ``manifest`` under the tie policy ``ties``.

    Args:
        model: what :meth:`Evaluator.load` takes (``models:/t2ieval@champion``, any MLflow model
            URI, a pipeline root).
        manifest: a ``.csv``/``.jsonl`` manifest (``prompt``, ``image_1``, ``image_2``,
            ``preferred`` 1, 2 or 0/``tie``; optional ``category``, ``pair_id``).
        image_root: the folder relative image paths start from (default: the manifest's).
        ties: ``drop`` or ``half``: what becomes of the pairs the raters found equal (module
            docstring).
        out: the ``result.csv`` to write (one row per scored pair).
        tracking_uri: MLflow store of the model registry and of the run (default:
            ``MLFLOW_TRACKING_URI``, else ``./mlflow.db``); the process's settings are restored.
        experiment: the MLflow experiment of the run.
        batch_size: pairs per scoring call (both images of each are scored in one batch).
        on_error: ``skip`` (default): a bad row (a problem :func:`check_rows` finds, or an image
            that is missing or does not decode) is left out, logged and counted; ``fail`` stops
            with a :class:`ManifestError` naming every bad row.
        seed: seeds the bootstrap interval.
        device: ``auto``, ``cpu`` or ``cuda`` for a pipeline root.
        log_run: log the MLflow run (on by default).
        evaluator: an already loaded model for ``model`` (otherwise it is loaded here).

    Returns:
        :class:`EvalRun`: the JSON-ready summary (what ``t2ieval eval`` prints) and the result.
    """
    from t2ieval.evaluator import Evaluator
    from t2ieval.tracking import file_sha256

    if ties not in TIE_POLICIES:
        raise EvalError(f"ties must be one of {TIE_POLICIES}, got {ties!r}")
    if on_error not in ON_ERROR:
        raise EvalError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if batch_size < 1:
        raise EvalError(f"batch_size must be at least 1, got {batch_size}")
    manifest = Path(manifest)
    frame = read_manifest(manifest)
    rows = check_rows(manifest, frame, image_root)
    problems = [p for r in rows for p in r.problems]
    if problems and on_error == "fail":
        raise ManifestError(manifest, problems, advice="fix them or pass --on-error skip")
    good = [r for r in rows if not r.problems]
    human_ties = [r for r in good if r.preferred == 0]
    to_score = good if ties == "half" else [r for r in good if r.preferred != 0]
    if not to_score:
        raise EvalError(
            f"{manifest}: no pair to score ({len(rows)} rows, {len(problems)} "
            f"problems, {len(human_ties)} human ties dropped)"
        )

    if evaluator is None:
        from mlflow.exceptions import MlflowException

        try:
            evaluator = Evaluator.load(model, device=device, tracking_uri=tracking_uri)
        except (MlflowException, OSError, TypeError, ValueError) as exc:
            raise EvalError(f"cannot load model {str(model)!r}: {exc}") from exc
    scored, image_problems = _score(evaluator, to_score, batch_size, on_error, manifest)
    problems += image_problems
    for problem in problems:
        log.warning("%s: skipping %s", manifest, problem)
    if scored.empty:
        raise EvalError(
            f"{manifest}: every pair to score was skipped; problems: "
            f"{dict(Counter(p.reason for p in problems))}"
        )
    scored["verdict"] = verdicts(scored["score_1"], scored["score_2"])
    scored["credit"] = pair_credit(
        scored["score_1"], scored["score_2"], scored["preferred"], human_ties=True
    )
    columns = RESULT_COLUMNS + [c for c in OPTIONAL_COLUMNS if c in scored.columns]
    result = scored[columns]
    result_csv = write_table(out, result)

    overall, per_category = _metrics(result, seed)
    bad_rows = {p.row for p in problems}
    tied_scored = int((result["preferred"] == 0).sum())
    summary: dict[str, Any] = {
        "model": str(model),
        "manifest": str(manifest.resolve()),
        "manifest_sha256": file_sha256(manifest),
        "image_root": str(Path(image_root).resolve()) if image_root is not None else None,
        "ties": ties,
        "on_error": on_error,
        "batch_size": batch_size,
        "seed": seed,
        "branches": evaluator.scorer.branches,
        "rows": len(rows),
        "pairs": int(len(result)),
        "human_ties": len(human_ties),
        "ties_dropped": len(human_ties) if ties == "drop" else 0,
        "ties_scored": tied_scored,
        "bad_rows_skipped": len(bad_rows),
        "skip_reasons": {
            reason: len({p.row for p in problems if p.reason == reason})
            for reason in sorted({p.reason for p in problems})
        },
        "model_ties": int((result["verdict"] == 0).sum()),
        **overall,
        "per_category": per_category,
        "result": str(result_csv),
    }
    if log_run:
        summary["mlflow"] = _log_run(summary, result_csv, tracking_uri, experiment)
    log.info(
        "%s: accuracy %.4f [%.4f, %.4f] on %d pairs (ties %s: %d; %d bad rows skipped)",
        manifest,
        summary["accuracy"],
        summary["accuracy_ci_low"],
        summary["accuracy_ci_high"],
        summary["pairs"],
        ties,
        len(human_ties),
        len(bad_rows),
    )
    return EvalRun(summary=summary, result=result)
