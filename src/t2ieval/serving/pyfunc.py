"""The composite model as an MLflow pyfunc: what ``mlflow models serve`` answers with.

Input: a DataFrame with ``prompt``, ``image_1`` and optionally ``image_2``, the images as base64
strings (``b64encode`` output or the newline-wrapped ``encodebytes`` form). Output: one row per
input row, with the input's index: ``score_1``, ``score_2``, ``preferred`` (1 or 2; 0 when the
row had one image), each branch's score of each image and ``branches``, the branches the fused
score uses (``clip,ce,d``, or ``clip,ce`` for a model trained with the D-branch off, whose
``d_score_*`` are then ``None``). The ``*_2`` scores of a one-image row
are ``None`` (JSON ``null``). Bad input raises an :class:`mlflow.exceptions.MlflowException`
(HTTP 400) naming the row and the problem; URLs are never fetched.
"""

from __future__ import annotations

import logging

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from t2ieval.data.manifest import is_missing
from t2ieval.images import DEFAULT_MAX_PIXELS, ImageError, decode_base64_image
from t2ieval.scoring import PAIR_COLUMNS

log = logging.getLogger(__name__)

INPUT_COLUMNS = ("prompt", "image_1", "image_2")
OUTPUT_COLUMNS = PAIR_COLUMNS  # the scorer owns the list
MAX_ROWS = 1024


class InputError(ValueError):
    """The request is malformed; ``problems`` names every bad row."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:20])
        more = f"; ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} bad input row(s): {shown}{more}")


def parse_rows(frame: pd.DataFrame, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Decode a request frame to ``(prompts, images_1, images_2)`` or raise :class:`InputError`.

    Rows are named by their position in the request (``row 0`` is the first).
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            [f"expected a table with columns {list(INPUT_COLUMNS)}, got {type(frame).__name__}"]
        )
    missing = [c for c in ("prompt", "image_1") if c not in frame.columns]
    if missing:
        raise InputError([f"missing column(s) {missing}; expected prompt, image_1[, image_2]"])
    unknown = [c for c in frame.columns if c not in INPUT_COLUMNS]
    if unknown:
        raise InputError([f"unknown column(s) {unknown}; expected prompt, image_1[, image_2]"])
    if len(frame) > MAX_ROWS:
        raise InputError([f"{len(frame)} rows in one request; send at most {MAX_ROWS}"])
    problems: list[str] = []
    prompts, images_1, images_2 = [], [], []
    has_2 = "image_2" in frame.columns
    for pos, rec in enumerate(frame.to_dict("records")):
        prompt = rec.get("prompt")
        if not isinstance(prompt, str):
            problems.append(
                f"row {pos}: prompt must be a string, got "
                f"{'nothing' if is_missing(prompt) else type(prompt).__name__}"
            )
        elif not prompt.strip():
            problems.append(f"row {pos}: prompt is empty")
        decoded = []
        for col in ("image_1", "image_2"):
            value = rec.get(col) if (col == "image_1" or has_2) else None
            if col == "image_2" and (is_missing(value) or value == ""):
                decoded.append(None)
                continue
            if col == "image_1" and is_missing(value):
                problems.append(f"row {pos}: image_1 is missing")
                decoded.append(None)
                continue
            try:
                decoded.append(decode_base64_image(value, f"row {pos}: {col}", max_pixels))
            except ImageError as exc:
                problems.append(str(exc))
                decoded.append(None)
        prompts.append(prompt)
        images_1.append(decoded[0])
        images_2.append(decoded[1])
    if problems:
        raise InputError(problems)
    return prompts, images_1, images_2


class T2IEvalModel(mlflow.pyfunc.PythonModel):
    """Scores prompt/image pairs with the CLIP, CE and VQA branches and the fusion weights."""

    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.max_pixels = max_pixels
        self.scorer = None

    def load_context(self, context) -> None:
        """Load every model once per process (called by MLflow when the model is loaded)."""
        from t2ieval.scoring import CompositeScorer

        self.scorer = CompositeScorer.load(dict(context.artifacts))

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Score each row; bad rows raise an HTTP-400 error naming the row and the problem."""
        if self.scorer is None:  # pragma: no cover - MLflow always calls load_context first
            self.load_context(context)
        try:
            prompts, images_1, images_2 = parse_rows(model_input, self.max_pixels)
        except InputError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        out = score_or_name_rows(self.scorer, prompts, images_1, images_2)
        out.index = model_input.index
        return json_safe(out)


def score_or_name_rows(scorer, prompts: list[str], images_1: list, images_2: list) -> pd.DataFrame:
    """``scorer.score_pairs`` of every row in one batch; if the batch fails on an input the
    branches cannot use (e.g. an image smaller than the entropy window), rescore image by image
    and raise an HTTP-400 error naming the failing rows and columns."""
    try:
        return scorer.score_pairs(prompts, images_1, images_2)
    except (ValueError, TypeError) as batch_exc:
        problems = []
        for pos in range(len(prompts)):
            for col, img in (("image_1", images_1[pos]), ("image_2", images_2[pos])):
                if img is None:
                    continue
                try:
                    scorer.score_images([prompts[pos]], [img])
                except (ValueError, TypeError) as exc:
                    problems.append(f"row {pos}: {col}: cannot be scored ({exc})")
        if not problems:  # the batch failed but no single row does: not the input's fault
            raise batch_exc
        raise MlflowException(
            str(InputError(problems)), error_code=INVALID_PARAMETER_VALUE
        ) from batch_exc


def json_safe(out: pd.DataFrame) -> pd.DataFrame:
    """Missing scores (the ``*_2`` columns of one-image rows) as ``None`` rather than NaN, so the
    server's JSON holds ``null`` (``NaN`` is not JSON). Frames without gaps keep float columns."""
    out = out.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f" and out[col].isna().any():
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out
