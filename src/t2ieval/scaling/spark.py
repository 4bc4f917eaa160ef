"""Batch scoring of a manifest of any size with the registered model, on Apache Spark.

The driver reads only the manifest (prompts and image *paths*) into a Spark DataFrame. In the
executors, a pandas UDF reads each image file, checks that it decodes within the pixel limit and
base64-encodes its bytes, right before ``mlflow.pyfunc.spark_udf`` runs the registered
:class:`~t2ieval.serving.pyfunc.T2IEvalModel` on them; images never pass through the driver. The
result, every component score plus the manifest's columns, is written as Parquet.

Errors:

* problems in the manifest itself (missing column, empty prompt or path, a ``preferred`` that is
  not 1, 2 or 0/tie, a repeated ``pair_id``) are found on the driver before Spark starts work by
  :func:`t2ieval.data.manifest.check_rows`, and always fail, listing every bad row;
* an image that is missing or unreadable is found by the executors. With ``on_error="fail"``
  (default) the job stops with a :class:`BatchScoringError` naming the manifest row, pair id and
  path; with ``on_error="skip"`` the row is written with null scores and the reason in its
  ``error`` column, and the summary counts such rows.

The executors unpickle the image reader, and with it this module: MLflow (``t2ieval.serving``)
stays out of its imports, so that only the model's own Python worker pays for importing it.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

try:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - pyspark is an optional dependency
    raise ImportError("t2ieval.scaling.spark needs pyspark: pip install 't2ieval[spark]'") from exc

from t2ieval.data.manifest import (
    CHECKED,
    ManifestError,
    RowProblem,
    check_rows,
    is_missing,
    read_manifest,
)
from t2ieval.images import DEFAULT_MAX_PIXELS, ImageError, decode_image_bytes

log = logging.getLogger(__name__)

ON_ERROR = ("fail", "skip")
DEFAULT_BATCH_SIZE = 64
_READ_TYPE = T.StructType(
    [T.StructField(c, T.StringType()) for c in ("image_1", "image_2", "error")]
)


class BatchScoringError(RuntimeError):
    """Batch scoring stopped; the message names the manifest row, pair id and image path."""


class ImageReadError(ValueError):
    """Raised in an executor for a missing or unreadable image (``on_error="fail"``)."""


def _outputs() -> dict[str, T.DataType]:
    """The served model's output columns and their Spark types, as its signature says."""
    from t2ieval.serving.pyfunc import OUTPUT_COLUMNS

    kinds = {"preferred": T.LongType(), "branches": T.StringType()}
    return {c: kinds.get(c, T.DoubleType()) for c in OUTPUT_COLUMNS}


# --------------------------------------------------------------------------------------------
# Driver side: the manifest


def prepare_manifest(path: str | Path, image_root: str | Path | None = None) -> pd.DataFrame:
    """Read and check a manifest on the driver (:func:`t2ieval.data.manifest.check_rows`); no
    image file is opened.

    Returns one row per manifest row with ``row`` (1-based data row), ``pair_id`` (``row000001``
    style when absent), ``prompt``, ``image_1`` and ``image_2`` (absolute paths; relative ones
    joined to ``image_root``, default the manifest's folder), every other manifest column as a
    string, and ``preferred_truth`` (1, 2, 0 for a tie, or null) when the manifest has
    ``preferred``. Raises :class:`~t2ieval.data.manifest.ManifestError` listing every bad row.
    """
    path = Path(path)
    frame = read_manifest(path, required=("prompt", "image_1", "image_2"))
    reserved = {"row", "preferred_truth", "error", *_outputs()} - {"preferred"}
    clash = [c for c in frame.columns if c in reserved]
    if clash:
        raise ValueError(
            f"{path}: column(s) {clash} clash with the scores this command writes; rename them"
        )
    rows = check_rows(path, frame, image_root, require_preferred=False)
    problems = [p for r in rows for p in r.problems]
    if not rows:
        problems = [RowProblem(0, "*", "empty", "the manifest has no rows")]
    if problems:
        raise ManifestError(path, problems)
    extra = [c for c in frame.columns if c not in CHECKED]
    prepared = pd.DataFrame(
        {
            "row": [r.row for r in rows],
            "pair_id": [r.pair_id for r in rows],
            "prompt": [r.prompt for r in rows],
            "image_1": [r.image_1 for r in rows],
            "image_2": [r.image_2 for r in rows],
            **{
                c: [None if is_missing(r.extra[c]) else str(r.extra[c]) for r in rows]
                for c in extra
            },
        }
    )
    if "preferred" in frame.columns:
        prepared["preferred_truth"] = pd.array([r.preferred for r in rows], dtype="Int64")
    return prepared


# --------------------------------------------------------------------------------------------
# Executor side: reading images

_PLACEHOLDER: str | None = None


def _placeholder_image() -> str:
    """What the model sees in place of a bad image in ``skip`` mode (its scores are dropped): a
    fixed 128x128 noise PNG, large and varied enough for every branch (entropy windows, CLIP)."""
    global _PLACEHOLDER
    if _PLACEHOLDER is None:
        import numpy as np
        from PIL import Image

        noise = np.random.default_rng(0).integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noise, mode="RGB").save(buf, format="PNG")
        _PLACEHOLDER = base64.b64encode(buf.getvalue()).decode("ascii")
    return _PLACEHOLDER


def read_image_base64(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """The file's bytes as base64, after checking they decode to an image within the pixel limit.

    Raises :class:`~t2ieval.images.ImageError` naming the path and the problem.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: {'not a file' if p.exists() else 'no such file'}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    decode_image_bytes(data, str(p), max_pixels)
    return base64.b64encode(data).decode("ascii")


def encode_batch(
    rows: pd.Series,
    pair_ids: pd.Series,
    paths_1: pd.Series,
    paths_2: pd.Series,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_error: str = "fail",
) -> pd.DataFrame:
    """Read one Arrow batch of image pairs: columns ``image_1``, ``image_2`` (base64), ``error``.

    With ``on_error="fail"`` the first bad image raises :class:`ImageReadError`; with ``"skip"``
    its row gets a placeholder image and the reason in ``error`` (its scores are nulled later).
    """
    out: dict[str, list[str | None]] = {"image_1": [], "image_2": [], "error": []}
    for row, pair_id, *paths in zip(rows, pair_ids, paths_1, paths_2):
        problems = []
        for fld, path in zip(("image_1", "image_2"), paths):
            try:
                out[fld].append(read_image_base64(path, max_pixels))
            except ImageError as exc:
                problems.append(f"{fld}: {exc}")
                out[fld].append(_placeholder_image())
        error = None
        if problems:
            error = f"manifest row {int(row)} (pair_id {pair_id!r}): " + "; ".join(problems)
            if on_error == "fail":
                raise ImageReadError(error)
        out["error"].append(error)
    return pd.DataFrame(out)


_ERROR_RE = re.compile(r"ImageReadError: (manifest row \d+ [^\n]*)")


# --------------------------------------------------------------------------------------------
# The Spark session


def ensure_java() -> str:
    """The ``java`` Spark will run; sets ``JAVA_HOME`` when it is unset but a JDK is found."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return str(Path(home, "bin", "java"))
    found = shutil.which("java")
    candidates = [Path(found).resolve()] if found else []
    candidates += sorted(Path("/usr/lib/jvm").glob("*/bin/java"), reverse=True)
    for java in candidates:
        if java.exists():
            os.environ["JAVA_HOME"] = str(java.parent.parent)
            log.debug("JAVA_HOME=%s", os.environ["JAVA_HOME"])
            return str(java)
    raise RuntimeError(
        "Spark needs Java 17 or newer: none found on PATH or in /usr/lib/jvm; "
        "install a JDK and set JAVA_HOME"
    )


@contextmanager
def spark_session(
    master: str = "local[*]",
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads_per_task: int = 1,
    conf: Mapping[str, str] | None = None,
    app_name: str = "t2ieval-score-batch",
) -> Iterator[SparkSession]:
    """A new SparkSession for batch scoring, stopped on exit.

    Logging at WARN, no Spark UI, Arrow batches of ``batch_size`` rows, ``threads_per_task``
    torch/BLAS threads per Python worker. For a ``local`` master the driver binds to 127.0.0.1
    and the Python workers run this interpreter; for a cluster master set ``PYSPARK_PYTHON`` to
    the executors' interpreter (one with t2ieval installed) and leave the driver address to Spark.
    Refuses to run beside a session this process already has (Spark allows one per process, and
    this one would stop it).
    """
    if SparkSession.getActiveSession() is not None:
        raise RuntimeError(
            "a SparkSession is already running in this process; batch scoring "
            "starts and stops its own: stop that one first, or run "
            "`t2ieval score-batch` as its own process"
        )
    ensure_java()
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_size),
        "spark.python.worker.faulthandler.enabled": "true",
    }
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        settings[f"spark.executorEnv.{var}"] = str(threads_per_task)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "T2IEVAL_LOG"):
        if var in os.environ:
            settings[f"spark.executorEnv.{var}"] = os.environ[var]
    local = master.startswith("local")
    if local:
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    # PySpark reads the workers' interpreter from PYSPARK_PYTHON only (default: "python3" on
    # PATH, which may lack t2ieval): in local mode, default it to this interpreter
    # (and SPARK_LOCAL_IP to loopback, read when the JVM starts)
    defaults = {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"} if local else {}
    added = [k for k in defaults if k not in os.environ]
    os.environ.update({k: defaults[k] for k in added})
    try:
        spark = builder.getOrCreate()
    finally:
        for key in added:
            os.environ.pop(key, None)
    spark.sparkContext.setLogLevel("WARN")
    try:
        yield spark
    finally:
        spark.stop()


# --------------------------------------------------------------------------------------------
# Scoring


def build_scoring_frame(
    spark: SparkSession,
    manifest: pd.DataFrame,
    model_uri: str,
    partitions: int,
    on_error: str = "fail",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DataFrame:
    """The lazy Spark plan: manifest rows -> images read in executors -> model scores.

    Columns: the prepared manifest's, then ``preferred`` and every score of the served model
    (null where ``error`` is set), then ``error``. Each UDF runs once per row.
    """
    import mlflow.pyfunc

    types = {"row": T.LongType(), "preferred_truth": T.IntegerType()}
    schema = T.StructType(
        [T.StructField(c, types.get(c, T.StringType()), c != "row") for c in manifest.columns]
    )
    frame = spark.createDataFrame(manifest, schema=schema)
    # contiguous, ordered ranges of rows: the Parquet parts read back in manifest order
    frame = frame.repartitionByRange(partitions, "row").sortWithinPartitions("row")

    def read_images(batches: Iterator[tuple[pd.Series, ...]]) -> Iterator[pd.DataFrame]:
        for rows, pair_ids, paths_1, paths_2 in batches:
            yield encode_batch(rows, pair_ids, paths_1, paths_2, max_pixels, on_error)

    # reading files is not a pure function of its input: never re-run or collapse it
    reader = F.pandas_udf(read_images, _READ_TYPE).asNondeterministic()
    frame = frame.withColumn("_img", reader("row", "pair_id", "image_1", "image_2"))
    outputs = _outputs()
    model = mlflow.pyfunc.spark_udf(
        spark,
        model_uri,
        result_type=T.StructType([T.StructField(c, kind) for c, kind in outputs.items()]),
        env_manager="local",
    )
    request = F.struct(
        F.col("prompt"),
        F.col("_img.image_1").alias("image_1"),
        F.col("_img.image_2").alias("image_2"),
    )
    frame = frame.withColumn("_scores", model(request))
    ok = F.col("_img.error").isNull()
    scores = [F.when(ok, F.col(f"_scores.{c}")).alias(c) for c in outputs]
    return frame.select(*manifest.columns, *scores, F.col("_img.error").alias("error"))


def summarize(spark: SparkSession, out: str, has_truth: bool) -> dict[str, Any]:
    """Counts and pairwise accuracy of a written result (accuracy over scored rows whose
    ``preferred_truth`` is 1 or 2)."""
    result = spark.read.parquet(out)
    aggs = [
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(F.col("error").isNull(), 1)).alias("scored"),
        F.count(F.col("error")).alias("errors"),
    ]
    if has_truth:
        judged = F.col("error").isNull() & F.col("preferred_truth").isin(1, 2)  # not ties
        aggs += [
            F.count(F.when(judged, 1)).alias("with_truth"),
            F.count(F.when(judged & (F.col("preferred") == F.col("preferred_truth")), 1)).alias(
                "correct"
            ),
        ]
    got = result.agg(*aggs).first().asDict()
    summary: dict[str, Any] = {k: int(got[k]) for k in ("rows", "scored", "errors")}
    if has_truth:
        summary["pairs_with_truth"] = int(got["with_truth"])
        summary["accuracy"] = (got["correct"] / got["with_truth"]) if got["with_truth"] else None
    if summary["errors"]:
        summary["first_errors"] = [
            r["error"]
            for r in result.where(F.col("error").isNotNull())
            .orderBy("row")
            .select("error")
            .limit(5)
            .collect()
        ]
    return summary


def score_manifest(
    manifest: str | Path,
    model_uri: str,
    out: str | Path,
    master: str = "local[*]",
    batch_size: int = DEFAULT_BATCH_SIZE,
    partitions: int | None = None,
    on_error: str = "fail",
    overwrite: bool = False,
    threads_per_task: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tracking_uri: str | None = None,
    conf: Mapping[str, str] | None = None,
    image_root: str | Path | None = None,
) -> dict[str, Any]:
    """Score every pair of ``manifest`` with ``model_uri`` on Spark; write Parquet to ``out``.

    ``partitions`` defaults to Spark's default parallelism (capped at the number of rows): in
    local mode MLflow loads the model once per partition, so keep it near the number of cores.
    ``batch_size`` rows (at most the pyfunc's limit) go to the model per call. Registry URIs
    are resolved in ``tracking_uri``, else ``MLFLOW_TRACKING_URI`` or ``./mlflow.db``, for this
    call only (:func:`t2ieval.tracking.using_tracking_uri`). Starts its own SparkSession
    (:func:`spark_session`, with ``conf`` added) and stops it. Returns a summary: rows, scored,
    errors, accuracy (if the manifest has ``preferred``), partitions, timings and throughput.
    """
    from t2ieval.serving.pyfunc import MAX_ROWS
    from t2ieval.tracking import using_tracking_uri

    if not 1 <= batch_size <= MAX_ROWS:
        raise ValueError(
            f"batch_size must be between 1 and {MAX_ROWS} (the model's request "
            f"limit), got {batch_size}"
        )
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if partitions is not None and partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    is_uri = "://" in str(out)
    out = str(out) if is_uri else os.path.abspath(out)
    if not is_uri and os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} already exists; pass overwrite=True (--overwrite)")
    prepared = prepare_manifest(manifest, image_root)
    log.info("scoring %d pairs from %s with %s on %s", len(prepared), manifest, model_uri, master)

    t0 = time.perf_counter()
    with (
        using_tracking_uri(tracking_uri),
        spark_session(master, batch_size, threads_per_task, conf) as spark,
    ):
        t1 = time.perf_counter()
        n_parts = min(partitions or spark.sparkContext.defaultParallelism, len(prepared))
        result = build_scoring_frame(spark, prepared, model_uri, n_parts, on_error, max_pixels)
        existed = is_uri or os.path.exists(out)
        try:
            result.write.mode("overwrite" if overwrite else "errorifexists").parquet(out)
        except Exception as exc:  # Spark wraps executor errors in its own exception types
            if not existed and os.path.isdir(out) and not os.listdir(out):
                os.rmdir(out)  # the aborted job's empty folder would block a rerun
            found = _ERROR_RE.search(str(exc))  # our executor-side message, in Spark's text
            if found:
                raise BatchScoringError(
                    f"{found.group(1).strip()} (use on_error='skip' / "
                    "--on-error skip to score the other rows and record "
                    "the problem)"
                ) from exc
            raise
        t2 = time.perf_counter()
        summary = summarize(spark, out, "preferred_truth" in prepared.columns)
        master_used = spark.sparkContext.master
    scoring_s = t2 - t1
    summary.update(
        {
            "out": out,
            "model_uri": model_uri,
            "master": master_used,
            "partitions": n_parts,
            "batch_size": batch_size,
            "on_error": on_error,
            "startup_s": round(t1 - t0, 2),
            "scoring_s": round(scoring_s, 2),
            "rows_per_s": round(summary["rows"] / scoring_s, 2) if scoring_s > 0 else None,
        }
    )
    log.info(
        "scored %d rows (%d errors) in %.1f s: %.1f rows/s",
        summary["rows"],
        summary["errors"],
        scoring_s,
        summary["rows_per_s"] or 0.0,
    )
    return summary
