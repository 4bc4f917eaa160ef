"""From groups of ranked images to the pairs of a manifest: votes, ties, caps and slots.

Every adapter turns its source into :class:`Group` objects: one prompt, the images generated for
it, and one or more rankings of those images (one per annotator; lower is better). Then:

* every unordered pair of images of a group is a candidate; the annotators vote (each one who
  ranks one image strictly better than the other gives it one vote) and the majority decides;
  a pair with no majority is a tie: dropped and counted (``ties_dropped``), or, with
  ``keep_ties``, kept as a pair with ``preferred`` ``tie`` (``ties_written``), for an evaluation
  whose protocol scores human ties (``t2ieval eval --ties half``);
* ``max_pairs_per_prompt`` keeps at most N pairs per prompt, chosen with a seeded RNG;
* which image goes into slot 1 is decided per pair by a seeded RNG, so ``preferred`` is 1 or 2
  (0 for a kept tie).

:class:`Report` holds the counters of an import and the ``--on-error`` policy.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from t2ieval.adapters.errors import AdapterError, RowError

log = logging.getLogger(__name__)

ON_ERROR = ("fail", "skip")
# Counters reported by every import, in this order (all present, zero when nothing happened).
SUMMARY_COUNTERS = (
    "rows",
    "groups",
    "images",
    "candidate_pairs",
    "ties_dropped",
    "ties_written",
    "unlabelled_dropped",
    "identical_dropped",
    "rows_skipped",
    "missing_images",
    "bad_images",
    "pairs_missing_image",
    "pairs_capped",
    "duplicate_pair_ids",
    "pairs_written",
    "preferred_1",
    "preferred_2",
    "images_written",
)


@dataclass(frozen=True)
class ImageRef:
    """Where one image comes from: an existing file (``path``), a member of a zip archive
    (``archive``, ``member``) or a cell of the table to write.

    A deferred image lives in row ``row``, column ``column`` (item ``item`` of a list-valued
    column) and is written as ``<stem>.<ext>`` into the images folder when a kept pair needs it;
    so is an archive member. A file or a member keeps the row (``where``) and the field
    (``column``) that named it, for errors.
    """

    path: Path | None = None
    row: int | None = None
    column: str | None = None
    item: int | None = None
    stem: str = ""
    where: str = ""
    archive: Path | None = None
    member: str | None = None

    @property
    def deferred(self) -> bool:
        """An image held in a table cell, fetched in the second pass."""
        return self.path is None and self.archive is None


@dataclass
class Group:
    """A prompt with several images and their rankings (one list per annotator, lower = better).

    ``images[k]`` is ``None`` when that image is missing and was skipped (``--on-error skip``);
    a ranking value of ``None``/NaN means that annotator did not rank that image.
    """

    group_id: str
    prompt: str
    category: str
    images: list[ImageRef | None]
    rankings: list[list[float | None]]
    where: str


@dataclass(frozen=True)
class Candidate:
    """A pair to write: ``better`` was preferred over ``worse`` by the majority, or, for a kept
    tie (``tie``), the two images in their group order."""

    pair_id: str
    prompt: str
    category: str
    better: ImageRef
    worse: ImageRef
    where: str
    tie: bool = False


class Report:
    """Counters of an import and the ``--on-error`` policy for bad rows and missing images."""

    MAX_WARNINGS = 20

    def __init__(self, on_error: str = "fail") -> None:
        if on_error not in ON_ERROR:
            raise AdapterError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.counts: Counter[str] = Counter()
        self._warned = 0

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def problem(self, exc: RowError, counter: str) -> None:
        """Raise ``exc`` (``fail``) or log it and count it under ``counter`` (``skip``)."""
        if self.on_error == "fail":
            raise exc
        self.counts[counter] += 1
        self._warned += 1
        if self._warned <= self.MAX_WARNINGS:
            log.warning("skipped: %s", exc)
        elif self._warned == self.MAX_WARNINGS + 1:
            log.warning("more problems skipped; see the summary counters")
        else:
            log.debug("skipped: %s", exc)

    def summary(self) -> dict[str, int]:
        return {key: int(self.counts.get(key, 0)) for key in SUMMARY_COUNTERS}


def verdict(rankings: Sequence[Sequence[float | None]], i: int, j: int) -> int:
    """+1 if the majority of annotators ranks image ``i`` better than ``j``, -1 if worse, 0 if tied.

    An annotator who gives both the same rank, or leaves one unranked, does not vote.
    """
    votes = 0
    for ranking in rankings:
        a, b = ranking[i], ranking[j]
        if a is None or b is None or math.isnan(a) or math.isnan(b):
            continue
        if a < b:
            votes += 1
        elif b < a:
            votes -= 1
    return (votes > 0) - (votes < 0)


def group_candidates(
    group: Group, source: str, report: Report, keep_ties: bool = False
) -> Iterator[Candidate]:
    """All non-tied pairs of ``group`` (and the tied ones with ``keep_ties``); dropped ties and
    pairs with a missing image are counted."""
    n = len(group.images)
    for ranking in group.rankings:
        if len(ranking) != n:
            raise AdapterError(
                f"{group.where}: a ranking has {len(ranking)} entries for {n} images"
            )
    for i in range(n):
        for j in range(i + 1, n):
            report.count("candidate_pairs")
            v = verdict(group.rankings, i, j)
            if v == 0 and not keep_ties:
                report.count("ties_dropped")
                continue
            if group.images[i] is None or group.images[j] is None:
                report.count("pairs_missing_image")
                continue
            better, worse = (j, i) if v < 0 else (i, j)
            yield Candidate(
                pair_id=f"{source}-{group.group_id}-{i}-{j}",
                prompt=group.prompt,
                category=group.category,
                better=group.images[better],  # type: ignore[arg-type]
                worse=group.images[worse],
                where=group.where,  # type: ignore[arg-type]
                tie=v == 0,
            )


def cap_per_prompt(
    candidates: list[Candidate], max_pairs: int | None, seed: int, report: Report
) -> list[Candidate]:
    """Keep at most ``max_pairs`` pairs per prompt (a seeded choice), in their original order."""
    if max_pairs is None:
        return candidates
    if max_pairs < 1:
        raise AdapterError(f"max_pairs_per_prompt must be at least 1, got {max_pairs}")
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for k, cand in enumerate(candidates):
        by_prompt[cand.prompt].append(k)
    keep: set[int] = set()
    for prompt, members in by_prompt.items():
        if len(members) <= max_pairs:
            keep.update(members)
        else:
            rng = random.Random(f"{seed}:cap:{prompt}")
            keep.update(rng.sample(members, max_pairs))
    report.count("pairs_capped", len(candidates) - len(keep))
    return [c for k, c in enumerate(candidates) if k in keep]


def orient(cand: Candidate, seed: int) -> tuple[ImageRef, ImageRef, int]:
    """``(image_1, image_2, preferred)``: a seeded coin per pair id puts the better one in slot 1
    or 2; a kept tie has ``preferred`` 0 (its slots are drawn by the same coin)."""
    if random.Random(f"{seed}:slot:{cand.pair_id}").random() < 0.5:
        return cand.better, cand.worse, 0 if cand.tie else 1
    return cand.worse, cand.better, 0 if cand.tie else 2
