"""A whole benchmark, in order: inputs, model, scores, comparisons, strengths, distribution
metrics, files, MLflow run. ``t2ieval benchmark`` is a thin layer over :func:`run_benchmark`."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from t2ieval.benchmark.compare import Comparisons, compare_within_prompts, pairwise_table
from t2ieval.benchmark.distribution import CLIPSCORE_NOTE, DistributionResult
from t2ieval.benchmark.distribution import COLUMNS as DISTRIBUTION_COLUMNS
from t2ieval.benchmark.inputs import GeneratedImages
from t2ieval.benchmark.mlflow_run import EXPERIMENT, ModelInfo
from t2ieval.benchmark.report import category_table, flat_metrics, leaderboard_table
from t2ieval.benchmark.strengths import DEFAULT_BOOTSTRAP, DEFAULT_PRIOR, bootstrap_strengths
from t2ieval.images import DEFAULT_MAX_PIXELS
from t2ieval.io import write_json

log = logging.getLogger(__name__)

DEFAULT_MODEL = "models:/t2ieval@champion"
#: what MLflow assigned to this benchmark (run id, model version): beside the files, not one of
#: them (a DVC stage does not declare it)
RUN_FILE = "run.json"
UNKNOWN_CATEGORY = "unknown"


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything a benchmark run reads (the CLI's options).

    Inputs are either ``manifest`` (with ``image_root``) or ``folder`` with ``prompts``.
    ``root`` is the project whose ``mlflow.db`` holds the model and receives the run when
    neither ``tracking_uri`` nor ``MLFLOW_TRACKING_URI`` says otherwise, and whose git commit
    the run is tagged with.
    """

    out: Path
    manifest: Path | None = None
    folder: Path | None = None
    prompts: Path | None = None
    image_root: Path | None = None
    reference: Path | None = None
    model: str = DEFAULT_MODEL
    tracking_uri: str | None = None
    root: Path = Path(".")
    device: str = "auto"
    features: str = "auto"
    inception_weights: Path | None = None
    distribution: bool = True
    on_error: str = "fail"
    max_pixels: int = DEFAULT_MAX_PIXELS
    batch_size: int = 32
    n_bootstrap: int = DEFAULT_BOOTSTRAP
    level: float = 0.95
    seed: int = 0
    prior: float = DEFAULT_PRIOR
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    spark_master: str | None = None
    log_mlflow: bool = True
    experiment: str = EXPERIMENT

    def __post_init__(self) -> None:
        if (self.manifest is None) == (self.folder is None):
            raise ValueError(
                "give either a manifest (--manifest) or a folder layout (--folder "
                "with --prompts), not both or neither"
            )
        if self.folder is not None and self.prompts is None:
            raise ValueError("a folder layout needs its prompts file (--prompts)")
        if self.batch_size < 1 or self.n_bootstrap < 1:
            raise ValueError("batch_size and n_bootstrap must be >= 1")


@dataclass
class BenchmarkResult:
    """The leaderboard and everything behind it; ``files`` by key; the model as resolved and
    loaded; ``run_id`` if logged."""

    model: ModelInfo
    leaderboard: pd.DataFrame
    pairwise: pd.DataFrame
    categories: pd.DataFrame
    scores: pd.DataFrame
    distribution: DistributionResult | None
    summary: dict[str, Any]
    metrics: dict[str, float]
    files: dict[str, Path] = field(default_factory=dict)
    run_id: str | None = None


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return value.as_posix()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [_jsonable(r) for r in frame.to_dict("records")]


def read_inputs(cfg: BenchmarkConfig) -> GeneratedImages:
    """The checked images of ``cfg``'s manifest or folder layout."""
    from t2ieval.benchmark.inputs import read_generated_folder, read_generated_manifest

    if cfg.manifest is not None:
        return read_generated_manifest(cfg.manifest, cfg.image_root, cfg.on_error, cfg.max_pixels)
    return read_generated_folder(cfg.folder, cfg.prompts, cfg.on_error, cfg.max_pixels)


def strengths_by_category(c: Comparisons, categories: dict[str, str], cfg: BenchmarkConfig):
    """Bradley-Terry strengths with intervals within each category of prompts."""
    prompt_category = np.array([categories.get(p, UNKNOWN_CATEGORY) for p in c.prompts])
    out = {}
    for cat in sorted(set(prompt_category)):
        part = c.subset(prompt_category == cat)
        out[cat] = bootstrap_strengths(
            part.wins, c.generators, cfg.n_bootstrap, cfg.seed, cfg.level, cfg.prior
        )
    return out


def run_benchmark(cfg: BenchmarkConfig) -> BenchmarkResult:
    """Run the benchmark ``cfg`` describes; write its files to ``cfg.out`` and, unless
    ``cfg.log_mlflow`` is false, one MLflow run."""
    from t2ieval.benchmark.features import make_extractor
    from t2ieval.benchmark.inputs import read_reference
    from t2ieval.benchmark.mlflow_run import log_benchmark_run, resolve_model
    from t2ieval.benchmark.report import write_report
    from t2ieval.benchmark.score import extract_features, score_images, score_with_spark
    from t2ieval.data.manifest import manifest_path
    from t2ieval.evaluator import is_pipeline_root, load_scorer
    from t2ieval.runtime import pick_device
    from t2ieval.tracking import run_tags, tracking_uri

    inputs = read_inputs(cfg)
    generators = inputs.generators
    if len(generators) < 2:
        raise ValueError(
            f"{inputs.source}: a benchmark compares at least two generators; "
            f"found {list(generators)}"
        )
    reference = (
        read_reference(cfg.reference, cfg.on_error, cfg.max_pixels)
        if cfg.reference is not None and cfg.distribution
        else None
    )
    log.info(
        "%s: %d images of %d generators for %d prompts (%d rows skipped)",
        inputs.source,
        len(inputs.images),
        len(generators),
        len(inputs.prompts),
        inputs.skipped_rows,
    )

    # an Inception extractor that cannot be had fails here, before the model is even looked up
    extractor = (
        make_extractor(
            "inception", inception_weights=cfg.inception_weights, device=pick_device(cfg.device)
        )
        if cfg.distribution and cfg.features == "inception"
        else None
    )
    uri = cfg.tracking_uri or tracking_uri(cfg.root)
    if is_pipeline_root(cfg.model):
        model = ModelInfo(uri=str(cfg.model), loaded_uri=str(cfg.model))
    else:
        model = resolve_model(cfg.model, uri)
    scorer = None
    if cfg.spark_master is None or (cfg.distribution and extractor is None):
        scorer = load_scorer(model.loaded_uri, device=cfg.device, tracking_uri=uri)
    if cfg.distribution and extractor is None:
        extractor = make_extractor(
            cfg.features,
            clip_scorer=scorer.clip,
            inception_weights=cfg.inception_weights,
            device=scorer.clip.device,
        )
    scored = score_images(
        inputs.images,
        None if cfg.spark_master else scorer,
        extractor,
        cfg.batch_size,
        cfg.max_pixels,
    )
    scores = scored.scores
    if cfg.spark_master is not None:
        scores = score_with_spark(
            inputs.images,
            model.loaded_uri,
            Path(cfg.out) / "spark",
            master=cfg.spark_master,
            tracking_uri=uri,
            batch_size=min(cfg.batch_size, 1024),
        )
    unscored = int(scores["score"].isna().sum())
    if unscored:
        log.warning("%d image(s) got no fused score; they count as missing", unscored)

    categories = {
        r["prompt_id"]: (r["category"] or UNKNOWN_CATEGORY)
        for r in inputs.prompts.to_dict("records")
    }
    has_categories = any(r["category"] for r in inputs.prompts.to_dict("records"))
    comparisons = compare_within_prompts(scores, generators, inputs.prompts["prompt_id"])
    strengths = bootstrap_strengths(
        comparisons.wins, generators, cfg.n_bootstrap, cfg.seed, cfg.level, cfg.prior
    )
    per_category = strengths_by_category(comparisons, categories, cfg) if has_categories else {}
    cat_table = category_table(comparisons, categories, per_category)

    dist = None
    if cfg.distribution:
        from t2ieval.benchmark.distribution import distribution_metrics

        ref_features = (
            None
            if reference is None
            else extract_features(reference.paths, extractor, cfg.batch_size, cfg.max_pixels)
        )
        dist = distribution_metrics(
            generators,
            scores["generator"].to_numpy(),
            scored.features,
            scored.logits,
            scores["clip_score"].to_numpy(),
            extractor.space,
            ref_features,
            cfg.seed,
            cfg.kid_subsets,
            cfg.kid_subset_size,
        )
    board = leaderboard_table(
        comparisons, strengths, scores, dist.wide() if dist is not None else None
    )
    if dist is not None:
        board["feature_space"] = dist.space.description
        board["feature_space_comparable_to_published"] = dist.space.comparable
    pairwise = pairwise_table(comparisons)
    problems = pd.DataFrame(
        [asdict(p) for p in inputs.problems], columns=["row", "field", "reason", "message"]
    )
    if reference is not None and reference.problems:
        problems = pd.concat(
            [
                problems,
                pd.DataFrame(
                    [{**asdict(p), "field": f"reference:{p.field}"} for p in reference.problems]
                ),
            ]
        )

    counts = {
        "generators": len(generators),
        "prompts": len(comparisons.prompts),
        "images": len(scores),
        "rows": inputs.rows,
        "skipped_rows": inputs.skipped_rows,
        "unscored_images": unscored,
        "distinct_pictures": scored.distinct_pictures,
        "scored_prompt_pictures": scored.scored_pairs,
        "comparisons": int(round(comparisons.comparisons.sum() / 2)),
        "ties": int(round(comparisons.ties.sum() / 2)),
        "reference_images": 0 if reference is None else len(reference.paths),
    }
    branches = scorer.branches if scorer is not None else "see the served model"
    summary = _jsonable(
        {
            # the model as asked for; what MLflow assigned (version, run ids) goes to run.json and
            # the run's tags, not into these files: same inputs, same bytes
            # (as reports/registry.json)
            "model": {
                "uri": model.uri,
                "name": model.name,
                "alias": model.alias,
                "branches": branches,
            },
            "inputs": {
                "source": Path(inputs.source).as_posix(),
                "kind": "manifest" if cfg.manifest is not None else "folder",
                **counts,
                "skip_reasons": inputs.skip_reasons,
                "problems": [str(p) for p in inputs.problems[:50]],
                "reference": None
                if reference is None
                else {
                    "folder": Path(reference.folder).as_posix(),
                    "images": len(reference.paths),
                    "skipped": len(reference.problems),
                },
            },
            "method": {
                "score": "fused score of the registered model (higher is better)",
                "comparisons": "every within-prompt pair of images of two generators",
                "ties": "equal fused scores: half a win each (t2ieval.metrics)",
                "missing": "a generator without an image of a prompt has no comparison "
                "there; counted per generator as missing_prompts",
                "strength": "Bradley-Terry log-odds, centred, Gaussian prior of precision "
                f"{cfg.prior}",
                "interval": "percentile bootstrap over prompts",
                "n_bootstrap": cfg.n_bootstrap,
                "level": cfg.level,
                "seed": cfg.seed,
                "prior": cfg.prior,
                "scoring": "spark" if cfg.spark_master else "local",
            },
            "leaderboard": _records(board),
            "pairwise": _records(pairwise),
            "categories": _records(cat_table),
            "distribution": None
            if dist is None
            else {
                "feature_space": dist.space.to_dict(),
                "clipscore_note": CLIPSCORE_NOTE,
                "metrics": _records(dist.table),
                "skipped": dist.skipped,
            },
        }
    )
    metrics = flat_metrics(board, cat_table, counts)
    space_note = (
        ""
        if dist is None
        else f"FID/KID/IS feature space: {dist.space.description}: {dist.space.note}.\n"
        f"{CLIPSCORE_NOTE}."
    )
    # image paths as the manifest names them (relative to its folder or the folder layout's
    # root), so the files do not depend on where the suite lies
    base = (
        Path(inputs.source)
        if cfg.folder is not None
        else (cfg.image_root or Path(inputs.source).parent)
    )
    scores_out = scores.assign(image=[manifest_path(p, base) for p in scores["image"]])
    files = write_report(
        cfg.out,
        board,
        pairwise,
        cat_table,
        scores_out,
        pd.DataFrame(columns=list(DISTRIBUTION_COLUMNS)) if dist is None else dist.table,
        problems,
        summary,
        metrics,
        chart_title=f"t2ieval benchmark: {len(generators)} generators, "
        f"{len(comparisons.prompts)} prompts, model {model.uri}",
        chart_footnote=space_note,
    )
    run_id = None
    if cfg.log_mlflow:
        params = {
            "manifest": cfg.manifest,
            "folder": cfg.folder,
            "prompts": cfg.prompts,
            "reference": cfg.reference,
            "model": cfg.model,
            "features": cfg.features,
            "feature_space": None if dist is None else dist.space.key,
            "n_bootstrap": cfg.n_bootstrap,
            "level": cfg.level,
            "seed": cfg.seed,
            "prior": cfg.prior,
            "on_error": cfg.on_error,
            "generators": ",".join(generators),
            "kid_subsets": cfg.kid_subsets,
            "kid_subset_size": cfg.kid_subset_size,
            "scoring": "spark" if cfg.spark_master else "local",
        }
        tags = dict(run_tags(cfg.root))
        if dist is not None:
            tags.update(
                {
                    "feature_space": dist.space.description,
                    "feature_space_note": dist.space.note[:5000],
                    "feature_space_comparable_to_published": str(dist.space.comparable),
                    "clipscore_space": CLIPSCORE_NOTE,
                }
            )
        local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
        run_id = log_benchmark_run(
            uri,
            model,
            params,
            metrics,
            tags,
            files,
            cfg.experiment,
            artifact_root=Path(cfg.root) / "mlruns" if local else None,
        )
    write_json(
        Path(cfg.out) / RUN_FILE,
        {
            "mlflow_run_id": run_id,
            "experiment": cfg.experiment if run_id else None,
            "model": model.to_dict(),
        },
    )
    return BenchmarkResult(
        model, board, pairwise, cat_table, scores, dist, summary, metrics, files, run_id
    )
