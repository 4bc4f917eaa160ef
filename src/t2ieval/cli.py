"""The ``t2ieval`` command line."""

from __future__ import annotations

import typer

from t2ieval.runtime import setup_logging

app = typer.Typer(
    help="t2ieval: pairwise, explainable evaluation of text-to-image models.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging("DEBUG" if verbose else None)


@app.command()
def version() -> None:
    """Print the installed t2ieval version."""
    from t2ieval import __version__

    typer.echo(__version__)


@app.command("import")
def import_dataset(
    source: str = typer.Argument(..., help="pickapic | imagereward | hpd"),
    location: str = typer.Option(
        ...,
        "--from",
        help="File, folder, hf:NAME[:CONFIG] (local HF cache) or a save_to_disk folder.",
    ),
    out: str = typer.Option(..., "--out", help="Manifest to write (.csv or .jsonl)."),
    max_pairs_per_prompt: int | None = typer.Option(
        None, "--max-pairs-per-prompt", min=1, help="Keep at most N pairs per prompt."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seeds the cap and the slot of the preferred image."
    ),
    split: str | None = typer.Option(None, "--split", help="Split to read (train, test, ...)."),
    on_error: str = typer.Option(
        "fail", "--on-error", help="fail | skip bad rows and missing images."
    ),
    images_root: str | None = typer.Option(
        None, "--images-root", help="Folder the metadata's image paths are relative to."
    ),
    keep_ties: bool = typer.Option(
        False,
        "--keep-ties",
        help="Write the pairs the raters found equal (preferred: tie) instead of dropping them.",
    ),
    hpd_label: str | None = typer.Option(
        None,
        "--hpd-label",
        help="HPD v2: what decides a pair "
        "of test.json: rank (default, the owners' averaged "
        "rank) | vote (majority of raw_annotations).",
    ),
) -> None:
    """Convert a public preference dataset (Pick-a-Pic, ImageRewardDB, HPD v2) into a manifest."""
    import json

    from t2ieval import adapters

    try:
        summary = adapters.import_dataset(
            source,
            location,
            out,
            max_pairs_per_prompt=max_pairs_per_prompt,
            seed=seed,
            split=split,
            on_error=on_error,
            images_root=images_root,
            keep_ties=keep_ties,
            hpd_label=hpd_label,
        )
    except adapters.AdapterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(json.dumps(summary, indent=2))


_MODEL_HELP = (
    "MLflow model URI (models:/NAME@ALIAS, runs:/..., a logged model folder) or a "
    "pipeline root (a folder with models/clip, models/quality, models/vqa, models/fusion)."
)
_TRACKING_HELP = "Tracking URI for models:/ URIs (default: MLFLOW_TRACKING_URI, else ./mlflow.db)."


def _load_evaluator(model: str, tracking_uri: str | None, device: str):
    """The Evaluator for ``--model``, or exit 2 with a message saying what is missing."""
    from mlflow.exceptions import MlflowException

    from t2ieval.evaluator import Evaluator

    try:
        return Evaluator.load(model, device=device, tracking_uri=tracking_uri)
    except (MlflowException, OSError, TypeError, ValueError) as exc:
        typer.echo(f"error: cannot load model {model!r}: {exc}", err=True)
        raise typer.Exit(code=2) from exc


def _read_images(paths: list[str]):
    """Every image decoded up front, so a bad file fails before any scoring (exit 2)."""
    from t2ieval.images import ImageError, load_image

    try:
        return [load_image(p) for p in paths]
    except ImageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc


def _check_prompt(prompt: str) -> None:
    if not prompt.strip():
        typer.echo("error: --prompt is empty", err=True)
        raise typer.Exit(code=2)


def _why(answers) -> list[str]:
    return [f"      p(yes)={a.p_yes:.3f}  [{a.kind}] {a.question}" for a in answers] or [
        "      (no question parsed from the prompt)"
    ]


@app.command()
def score(
    image_1: str = typer.Argument(..., help="First image file."),
    image_2: str = typer.Argument(..., help="Second image file."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="The prompt both images were made for."),
    model: str = typer.Option("models:/t2ieval@champion", "--model", "-m", help=_MODEL_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_TRACKING_HELP),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Which of two images is better for a prompt, with every score and the VQA answers."""
    import json

    _check_prompt(prompt)
    images = _read_images([image_1, image_2])
    ev = _load_evaluator(model, tracking_uri, device)
    v = ev.compare(prompt, images[0], images[1])
    if as_json:
        typer.echo(json.dumps({"image_1": image_1, "image_2": image_2, **v.to_dict()}, indent=2))
        return
    paths = {1: image_1, 2: image_2}
    lines = [
        f"prompt: {prompt}",
        f"preferred: image {v.preferred} ({paths[v.preferred]}), margin {v.margin:.4f}, "
        f"P(image 1 preferred) = {v.p_1_over_2:.3f}",
        f"{'':12s}{'image 1':>12s}{'image 2':>12s}",
    ]
    for name in ("score", "clip_score", "ce_score", "d_score"):
        lines.append(f"{name:12s}{getattr(v, name + '_1'):12.4f}{getattr(v, name + '_2'):12.4f}")
    lines.append("why (VQA questions, probability of yes):")
    for slot, answers in ((1, v.answers_1), (2, v.answers_2)):
        lines.append(f"  image {slot} ({paths[slot]}):")
        lines.extend(_why(answers))
    typer.echo("\n".join(lines))


@app.command()
def rank(
    images: list[str] = typer.Argument(..., help="Image files to rank (two or more)."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="The prompt the images were made for."),
    model: str = typer.Option("models:/t2ieval@champion", "--model", "-m", help=_MODEL_HELP),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_TRACKING_HELP),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    as_json: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
) -> None:
    """Rank images for one prompt, best first (rank 1), with every score."""
    import json

    from t2ieval.evaluator import ranks_of

    _check_prompt(prompt)
    pil = _read_images(images)
    ev = _load_evaluator(model, tracking_uri, device)
    details = ev.details(prompt, pil)
    ranks = ranks_of([d.score for d in details])
    rows = sorted(
        ({"rank": r, "image": path, **d.to_dict()} for r, path, d in zip(ranks, images, details)),
        key=lambda row: row["rank"],
    )
    if as_json:
        typer.echo(json.dumps({"prompt": prompt, "ranking": rows}, indent=2))
        return
    lines = [
        f"prompt: {prompt}",
        f"{'rank':>4s}  {'score':>9s}  {'clip':>8s}  {'ce':>8s}  {'d':>8s}  image",
    ]
    lines += [
        f"{r['rank']:4d}  {r['score']:9.4f}  {r['clip_score']:8.4f}  {r['ce_score']:8.4f}  "
        f"{r['d_score']:8.4f}  {r['image']}"
        for r in rows
    ]
    typer.echo("\n".join(lines))


@app.command("eval")
def eval_manifest(
    manifest: str = typer.Option(
        ...,
        "--manifest",
        help="CSV/JSONL: prompt, image_1, image_2, "
        "preferred (1, 2, or 0/tie for a human tie)[, category, "
        "pair_id]; paths relative to its folder.",
    ),
    model: str = typer.Option("models:/t2ieval@champion", "--model", "-m", help=_MODEL_HELP),
    image_root: str | None = typer.Option(
        None,
        "--image-root",
        help="Folder the manifest's "
        "relative image paths start from (default: the "
        "manifest's folder).",
    ),
    ties: str = typer.Option(
        "drop",
        "--ties",
        help="drop: human-tied pairs are left out and "
        "counted | half: they are kept and each earns 0.5. A model's own "
        "exact tie earns 0.5 either way.",
    ),
    out: str = typer.Option("result.csv", "--out", help="Per-pair results to write (CSV)."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help=_TRACKING_HELP + " The evaluation run is logged there too."
    ),
    experiment: str = typer.Option(
        "t2ieval-eval", "--experiment", help="MLflow experiment of the run."
    ),
    batch_size: int = typer.Option(
        32, "--batch-size", min=1, max=1024, help="Pairs per scoring call."
    ),
    on_error: str = typer.Option(
        "skip",
        "--on-error",
        help="skip: bad rows and unreadable "
        "images are left out, logged and counted | fail: stop, naming "
        "them.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap interval."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda (pipeline roots)"),
) -> None:
    """Pairwise accuracy of a model on a preference manifest: 95 % interval over prompts, per
    category, result.csv, one MLflow run; prints a JSON summary (see docs/eval.md)."""
    import json

    from t2ieval.data.manifest import ManifestError
    from t2ieval.manifest_eval import EvalError, evaluate_manifest

    try:
        run = evaluate_manifest(
            model,
            manifest,
            image_root=image_root,
            ties=ties,
            out=out,
            tracking_uri=tracking_uri,
            experiment=experiment,
            batch_size=batch_size,
            on_error=on_error,
            seed=seed,
            device=device,
        )
    except (EvalError, ManifestError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(json.dumps(run.summary, indent=2))


@app.command("score-batch")
def score_batch(
    manifest: str = typer.Option(
        ...,
        "--manifest",
        help="CSV/JSONL: prompt, image_1, image_2"
        "[, preferred, category, pair_id]; paths relative to its folder.",
    ),
    model: str = typer.Option(
        "models:/t2ieval@champion",
        "--model",
        help="Model URI (models:/NAME@ALIAS, runs:/..., or a path).",
    ),
    out: str = typer.Option(..., "--out", help="Parquet folder to write."),
    master: str = typer.Option(
        "local[*]", "--master", help="Spark master: local[N], spark://HOST:7077, yarn, k8s://..."
    ),
    batch_size: int = typer.Option(
        64, "--batch-size", min=1, max=1024, help="Rows per model call (Arrow batch)."
    ),
    partitions: int | None = typer.Option(
        None, "--partitions", min=1, help="Spark partitions (default: the master's parallelism)."
    ),
    on_error: str = typer.Option(
        "fail",
        "--on-error",
        help="fail: stop at a missing/unreadable "
        "image | skip: write it with null scores and an error.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    threads_per_task: int = typer.Option(
        1, "--threads-per-task", min=1, help="torch threads per Spark task."
    ),
    image_root: str | None = typer.Option(
        None,
        "--image-root",
        help="Folder the manifest's "
        "relative image paths start from (default: the "
        "manifest's folder).",
    ),
) -> None:
    """Score a manifest of any size with the registered model on Apache Spark (Parquet out)."""
    import json

    from t2ieval.data.manifest import ManifestError
    from t2ieval.scaling.spark import BatchScoringError, score_manifest

    try:
        summary = score_manifest(
            manifest,
            model,
            out,
            master=master,
            batch_size=batch_size,
            partitions=partitions,
            on_error=on_error,
            overwrite=overwrite,
            threads_per_task=threads_per_task,
            image_root=image_root,
        )
    except (
        BatchScoringError,
        ManifestError,
        FileNotFoundError,
        FileExistsError,
        ValueError,
    ) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(json.dumps(summary, indent=2))


@app.command()
def benchmark(
    out: str = typer.Option(
        ...,
        "--out",
        help="Folder for the leaderboard (CSV, JSON, text, chart, per-image scores, metrics.json).",
    ),
    manifest: str | None = typer.Option(
        None,
        "--manifest",
        help="CSV/JSONL of generated "
        "images: generator, prompt, image[, prompt_id, "
        "category, seed]; paths relative to its folder.",
    ),
    folder: str | None = typer.Option(
        None, "--folder", help="Or a folder layout <folder>/<generator>/<prompt_id>_<seed>.png ..."
    ),
    prompts: str | None = typer.Option(
        None, "--prompts", help="... with its prompts file (prompt_id, prompt[, category])."
    ),
    image_root: str | None = typer.Option(
        None,
        "--image-root",
        help="Folder the manifest's relative image paths start from (default: its folder).",
    ),
    reference: str | None = typer.Option(
        None, "--reference", help="Folder of reference (real) images: FID and KID need it."
    ),
    model: str = typer.Option("models:/t2ieval@champion", "--model", "-m", help=_MODEL_HELP),
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="Tracking URI of the "
        "model and of the run (default: "
        "MLFLOW_TRACKING_URI, else <root>/mlflow.db).",
    ),
    root: str = typer.Option(
        ".",
        "--root",
        help="Project root: its mlflow.db is the default store, its git commit tags the run.",
    ),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    features: str = typer.Option(
        "auto",
        "--features",
        help="FID/KID/IS features: auto "
        "(Inception where its weights are on disk, else the model's "
        "CLIP tower) | inception | clip.",
    ),
    inception_weights: str | None = typer.Option(
        None,
        "--inception-weights",
        help="Local Inception-v3 weights file (torch-fidelity's FID weights).",
    ),
    no_distribution: bool = typer.Option(
        False, "--no-distribution", help="Skip FID, KID, IS and CLIPScore."
    ),
    on_error: str = typer.Option(
        "fail",
        "--on-error",
        help="fail: list every bad row and stop | skip: drop bad rows, count them.",
    ),
    bootstrap: int = typer.Option(
        1000, "--bootstrap", min=1, help="Bootstrap resamples of the prompts."
    ),
    seed: int = typer.Option(0, "--seed", help="Seeds the bootstrap and KID's subsets."),
    prior: float = typer.Option(
        0.01,
        "--prior",
        min=0.0,
        help="Precision of the Gaussian prior on each Bradley-Terry strength.",
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per model call."),
    spark_master: str | None = typer.Option(
        None,
        "--spark-master",
        help="Score on Spark "
        "(local[*], spark://...) through score-batch's "
        "path instead of in this process.",
    ),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log an MLflow run."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Rank text-to-image generators on one prompt suite: Bradley-Terry strengths with
    bootstrap intervals over prompts, win rates, mean scores, FID/KID/IS/CLIPScore."""
    import json
    from pathlib import Path

    from mlflow.exceptions import MlflowException

    from t2ieval.benchmark.features import ExtractorUnavailable
    from t2ieval.benchmark.run import BenchmarkConfig, run_benchmark
    from t2ieval.data.manifest import ManifestError
    from t2ieval.images import ImageError

    opt = lambda v: None if v is None else Path(v)  # noqa: E731
    try:
        cfg = BenchmarkConfig(
            out=Path(out),
            manifest=opt(manifest),
            folder=opt(folder),
            prompts=opt(prompts),
            image_root=opt(image_root),
            reference=opt(reference),
            model=model,
            tracking_uri=tracking_uri,
            root=Path(root),
            device=device,
            features=features,
            inception_weights=opt(inception_weights),
            distribution=not no_distribution,
            on_error=on_error,
            batch_size=batch_size,
            n_bootstrap=bootstrap,
            seed=seed,
            prior=prior,
            spark_master=spark_master,
            log_mlflow=not no_mlflow,
        )
        result = run_benchmark(cfg)
    except (
        ManifestError,
        ExtractorUnavailable,
        ImageError,
        MlflowException,
        OSError,
        ValueError,
    ) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    where = {k: str(v) for k, v in result.files.items()}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    **result.summary,
                    "model_used": result.model.to_dict(),
                    "mlflow_run_id": result.run_id,
                    "files": where,
                },
                indent=2,
            )
        )
        return
    typer.echo(result.files["leaderboard_txt"].read_text(encoding="utf-8"), nl=False)
    used = result.model
    typer.echo(
        f"model used: {used.loaded_uri}" + (f" ({used.uri})" if used.uri != used.loaded_uri else "")
    )
    if result.run_id:
        typer.echo(f"MLflow run {result.run_id} (experiment t2ieval-benchmark)")
    typer.echo(f"files: {Path(out)}/ ({', '.join(p.name for p in result.files.values())})")


@app.command("benchmark-demo")
def benchmark_demo(
    out: str = typer.Option(
        "demo",
        "--out",
        help="Folder to render into (images/, reference/, manifest.csv, prompts.csv, truth.csv).",
    ),
    params: str | None = typer.Option(
        None,
        "--params",
        help="YAML file with a `demo` section "
        "(e.g. leaderboard/params.yaml); default: the built-in "
        "demo.",
    ),
    n_prompts: int | None = typer.Option(
        None, "--n-prompts", min=1, help="Override the number of prompts."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Override the demo's seed."),
    check: str | None = typer.Option(
        None,
        "--check",
        help="Render nothing: say whether this "
        "leaderboard.csv ranks the demo's generators in their "
        "known order with intervals apart (exit 1 if not).",
    ),
) -> None:
    """Render the embedded demo: the synthetic renderer as generators of known fidelity."""
    import dataclasses
    import json

    import pandas as pd

    from t2ieval.benchmark.demo import DemoParams, check_known_order, load_demo_params, render_demo

    try:
        demo = load_demo_params(params) if params else DemoParams()
        changes = {k: v for k, v in (("n_prompts", n_prompts), ("seed", seed)) if v is not None}
        demo = dataclasses.replace(demo, **changes)
        verdict = check_known_order(pd.read_csv(check), demo) if check else None
    except (OSError, ValueError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if verdict is None:
        typer.echo(json.dumps(render_demo(out, demo), indent=2))
        return
    known = " > ".join(verdict["expected_order"])
    typer.echo(
        f"known order {known}: "
        + (
            "reproduced"
            if verdict["known_order"]
            else f"NOT reproduced (got {' > '.join(verdict['order'])})"
        )
        + (
            "; neighbours' intervals do not overlap"
            if verdict["intervals_apart"]
            else "; some neighbours' intervals overlap"
        )
    )
    if not verdict["known_order"]:
        raise typer.Exit(code=1)


if __name__ == "__main__":  # pragma: no cover
    app()
