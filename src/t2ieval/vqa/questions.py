"""Templated yes/no questions from a parsed prompt, and the matrices they fill.

Templates (the report's, plus ours for number and style). They are written once, in
:mod:`t2ieval.data.scenes`, and the synthetic generator's ground-truth questions use the same
functions, so the embedded VQA model is asked what it was trained on:

=========  =====================================================  ===============================
kind       template                                               matrix cell
=========  =====================================================  ===============================
existence  ``Can you find any {object}?``                         (object, ``existence``)
colour     ``Is the {object} {colour}?`` (one per colour)         (object, ``colour``)
count      ``Is there one {object}?`` / ``Are there {n} {objects}?``  (object, ``number``)
relation   ``Is the {a} {relation} the {b}?``;                    (a, b)
           ``with``: ``Does the {a} have any {b}?``
style      ``Is the {object} drawn as a sketch?`` (main object)   (object, ``style``)
prompt     ``Does the image show {prompt}?`` (no object parsed)   (prompt, ``existence``)
=========  =====================================================  ===============================

Every question expects the answer "yes" for a faithful image, so the D-score is the mean
probability of "yes". Under a cap (``max_questions``) questions are kept in the order of the table
(all existence questions first, then colours, counts, relations, style), so the most basic facts
survive on long prompts; identical question texts are asked once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from t2ieval.data.scenes import (
    colour_question,
    count_question,
    existence_question,
    possession_question,
    prompt_question,
    relation_question,
    style_question,
)
from t2ieval.vqa.description import ATTRIBUTE_COLUMNS, Description, row_labels

KINDS: tuple[str, ...] = ("prompt", "existence", "colour", "count", "relation", "style")
"""The question kinds, in the order questions are asked and kept under the cap."""


@dataclass(frozen=True)
class Question:
    """One yes/no question and the description-matrix cell it fills."""

    text: str
    kind: str  # one of KINDS
    row: int  # object index
    column: str  # an ATTRIBUTE_COLUMNS name, or the row label of the related object


def _relation_question(desc: Description, i: int, j: int, relation: str) -> str:
    a, b = desc.objects[i], desc.objects[j]
    if relation == "with":
        plural = b.is_plural or (b.number is not None and b.number > 1)
        return possession_question(a.name, b.plural if plural else b.name)
    return relation_question(a.name, relation, b.name)


def make_questions(desc: Description, max_questions: int | None = None) -> list[Question]:
    """The questions to ask about one prompt, at most ``max_questions`` (None: all)."""
    if max_questions is not None and max_questions < 1:
        raise ValueError(f"max_questions must be >= 1, got {max_questions}")
    labels = row_labels(desc)
    by_kind: dict[str, list[Question]] = {k: [] for k in KINDS}
    for i, obj in enumerate(desc.objects):
        if obj.whole_prompt:
            by_kind["prompt"].append(Question(prompt_question(obj.name), "prompt", i, "existence"))
            continue
        by_kind["existence"].append(
            Question(existence_question(obj.name), "existence", i, "existence")
        )
        for colour in obj.colours:
            by_kind["colour"].append(
                Question(colour_question(obj.name, colour), "colour", i, "colour")
            )
        if obj.number is not None:
            by_kind["count"].append(
                Question(count_question(obj.name, obj.plural, obj.number), "count", i, "number")
            )
    for rel in desc.relations:
        by_kind["relation"].append(
            Question(
                _relation_question(desc, rel.subject, rel.object, rel.relation),
                "relation",
                rel.subject,
                labels[rel.object],
            )
        )
    main = next((i for i, o in enumerate(desc.objects) if not o.whole_prompt), None)
    if desc.style is not None and main is not None:
        by_kind["style"].append(
            Question(style_question(desc.objects[main].name, desc.style), "style", main, "style")
        )
    out: list[Question] = []
    seen: set[str] = set()
    for kind in KINDS:
        for q in by_kind[kind]:
            if q.text not in seen:
                seen.add(q.text)
                out.append(q)
    return out[:max_questions] if max_questions is not None else out


def _empty_matrix(desc: Description, dtype) -> pd.DataFrame:
    labels = row_labels(desc)
    return pd.DataFrame(
        index=pd.Index(labels, name="object"), columns=list(ATTRIBUTE_COLUMNS) + labels, dtype=dtype
    )


def question_matrix(desc: Description, questions: Sequence[Question]) -> pd.DataFrame:
    """What was asked: the ``n x (m + n)`` matrix with each cell's question texts (``""``: none)."""
    frame = _empty_matrix(desc, object).fillna("")
    for q in questions:
        label = frame.index[q.row]
        cell = frame.at[label, q.column]
        frame.at[label, q.column] = f"{cell} | {q.text}" if cell else q.text
    return frame


def score_matrix(
    desc: Description, questions: Sequence[Question], p_yes: Sequence[float]
) -> pd.DataFrame:
    """The report's score matrix: each cell is the mean P(yes) of its questions (NaN: not asked).

    Its mean over the asked cells weighs cells, not questions; the D-score is the mean over
    questions (:func:`d_score`), which is the same whenever each cell holds one question.
    """
    if len(questions) != len(p_yes):
        raise ValueError(f"{len(questions)} questions but {len(p_yes)} answers")
    sums = _empty_matrix(desc, float).fillna(0.0)
    counts = sums.copy()
    for q, p in zip(questions, p_yes):
        label = sums.index[q.row]
        sums.at[label, q.column] += float(p)
        counts.at[label, q.column] += 1.0
    return sums / counts.replace(0.0, np.nan)


def d_score(p_yes: Sequence[float]) -> float:
    """D-score: the mean probability of "yes" over an image's questions (NaN when none)."""
    arr = np.asarray(p_yes, dtype=np.float64)
    return float(arr.mean()) if arr.size else float("nan")
