"""What the D-score asks about a prompt: its :class:`Description` and the description matrix.

The report describes a prompt by *n* objects, an ``n x m`` block of attributes (existence,
colour, number; we add style) and an ``n x n`` block of relations between the objects.
:mod:`t2ieval.vqa.parse` builds a :class:`Description` from a prompt; :mod:`t2ieval.vqa.questions`
turns it into questions and fills the same matrix shape with them and their answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

ATTRIBUTE_COLUMNS: tuple[str, ...] = ("existence", "colour", "number", "style")
"""The ``m`` attribute columns of the description matrix, before the ``n`` relation columns."""


@dataclass(frozen=True)
class ObjectDesc:
    """One object of a prompt (a row of the description matrix)."""

    name: str  # lemmatised head with compounds: "wine bottle"
    plural: str  # "wine bottles"
    colours: tuple[str, ...] = ()  # "red", "light blue"
    number: int | None = None  # explicit count, None when the prompt gives none
    style: str | None = None  # "sketch", "painting", ... (the picture's style)
    is_plural: bool = False  # written in the plural ("apples")
    whole_prompt: bool = False  # pseudo-object standing for a prompt with no object


@dataclass(frozen=True)
class Relation:
    """``objects[subject]`` stands in ``relation`` to ``objects[object]``."""

    subject: int
    object: int
    relation: str  # canonical: "left of", "on", "against", "holding", "with", ...


@dataclass(frozen=True)
class Description:
    """Everything the D-score asks about one prompt."""

    prompt: str
    objects: tuple[ObjectDesc, ...]
    relations: tuple[Relation, ...] = ()
    style: str | None = None

    def relation_triples(self) -> list[tuple[str, str, str]]:
        """Relations as ``(subject name, relation, object name)``."""
        return [
            (self.objects[r.subject].name, r.relation, self.objects[r.object].name)
            for r in self.relations
        ]

    def matrix(self) -> pd.DataFrame:
        """The ``n x (m + n)`` description matrix (see :func:`description_matrix`)."""
        return description_matrix(self)


def row_labels(desc: Description) -> list[str]:
    """Unique row labels: object names, with ``#2``, ``#3`` appended to repeated names."""
    seen: dict[str, int] = {}
    labels = []
    for obj in desc.objects:
        seen[obj.name] = seen.get(obj.name, 0) + 1
        labels.append(obj.name if seen[obj.name] == 1 else f"{obj.name}#{seen[obj.name]}")
    return labels


def description_matrix(desc: Description) -> pd.DataFrame:
    """The report's description matrix as a table of strings.

    One row per object (``n``); columns are the ``m`` attributes :data:`ATTRIBUTE_COLUMNS`
    (``existence`` is ``"yes"``, ``colour`` the colours joined by ``,``, ``number`` the count,
    ``style`` the style, ``""`` where the prompt says nothing) followed by ``n`` relation columns
    (cell ``[i, j]`` holds the relation of object ``i`` to object ``j``, ``""`` for none).
    """
    labels = row_labels(desc)
    rows = []
    for i, obj in enumerate(desc.objects):
        row = {
            "existence": "yes",
            "colour": ",".join(obj.colours),
            "number": "" if obj.number is None else str(obj.number),
            "style": obj.style or "",
        }
        for j, label in enumerate(labels):
            rels = [r.relation for r in desc.relations if r.subject == i and r.object == j]
            row[label] = ",".join(rels)
        rows.append(row)
    return pd.DataFrame(
        rows, index=pd.Index(labels, name="object"), columns=list(ATTRIBUTE_COLUMNS) + labels
    )


__all__ = [
    "ATTRIBUTE_COLUMNS",
    "Description",
    "ObjectDesc",
    "Relation",
    "description_matrix",
    "row_labels",
]
