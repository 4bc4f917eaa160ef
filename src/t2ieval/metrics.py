"""Pairwise accuracy and its relatives: the one definition, and the one tie rule, every stage uses.

**Tie rule:** a pair whose two scores are exactly equal earns 0.5 (half right), as a coin flip
would on average; a pair whose preferred image scores higher earns 1, otherwise 0.

**Human ties:** a pair the raters found equal (``preferred`` 0) has no right answer. Where a
caller keeps such pairs (``human_ties=True``: ``t2ieval eval --ties half``), each earns 0.5
whatever the scores say; otherwise ``preferred`` must be 1 or 2 and the caller leaves them out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def verdicts(score_1: np.ndarray, score_2: np.ndarray) -> np.ndarray:
    """1 where image 1 scores higher, 2 where image 2 does, 0 for an exact tie."""
    s1 = np.asarray(score_1, dtype=float)
    s2 = np.asarray(score_2, dtype=float)
    return np.where(s1 > s2, 1, np.where(s2 > s1, 2, 0))


def pair_credit(score_1, score_2, preferred, *, human_ties: bool = False) -> np.ndarray:
    """Per pair: 1 if the preferred image (1 or 2) scores higher, 0 if lower, 0.5 for a tie.

    With ``human_ties``, ``preferred`` may also be 0 (the raters found the pair equal): such a
    pair earns 0.5 whatever the scores. Raises if the lengths differ or ``preferred`` holds
    anything else.
    """
    s1 = np.asarray(score_1, dtype=np.float64)
    s2 = np.asarray(score_2, dtype=np.float64)
    pref = np.asarray(preferred).astype(int) if len(np.asarray(preferred)) else np.asarray([])
    if not (s1.shape == s2.shape == pref.shape):
        raise ValueError(
            f"score_1, score_2 and preferred differ in length: {s1.shape}, {s2.shape}, {pref.shape}"
        )
    allowed = (0, 1, 2) if human_ties else (1, 2)
    if pref.size and not np.isin(pref, allowed).all():
        raise ValueError(
            "preferred must be 1 or 2 for every pair"
            + (" (or 0 for a human tie)" if human_ties else "")
        )
    v = verdicts(s1, s2)
    return np.where((v == 0) | (pref == 0), 0.5, (v == pref).astype(float))


def pairwise_accuracy(score_1, score_2, preferred) -> float:
    """Mean :func:`pair_credit`: the share of pairs ranked right, ties counting 0.5.

    Returns NaN for no pairs.
    """
    credit = pair_credit(score_1, score_2, preferred)
    return float(credit.mean()) if credit.size else float("nan")


def accuracy_by(
    frame: pd.DataFrame, by: str, s1: str = "score_1", s2: str = "score_2", truth: str = "preferred"
) -> dict[str, float]:
    """Pairwise accuracy per value of column ``by`` (e.g. per category)."""
    return {
        str(k): pairwise_accuracy(g[s1], g[s2], g[truth]) for k, g in frame.groupby(by, sort=True)
    }


def accuracy_report(
    table: pd.DataFrame,
    name: str = "",
    s1: str = "score_1",
    s2: str = "score_2",
    splits: tuple[str, ...] = ("train", "val", "test"),
    category_splits: tuple[str, ...] = ("val",),
    intervals: bool = False,
    seed: int = 0,
    human_ties: bool = False,
) -> dict[str, float | int | None]:
    """The one per-split, per-category accuracy report every stage writes.

    ``table`` has one row per pair with ``split``, ``preferred``, the two score columns and,
    optionally, ``category`` and ``prompt``. Keys are ``<split>_accuracy[_<name>]`` for each of
    ``splits`` and ``<split>_accuracy[_<name>].<category>`` for each of ``category_splits``
    (plus ``<split>_pairs[_<name>].<category>``). With ``intervals``, each accuracy also gets
    ``_ci_low``/``_ci_high``: a 95 % bootstrap interval over prompt groups (needs ``prompt``).
    A split without pairs reports None. ``human_ties`` is :func:`pair_credit`'s (pairs with
    ``preferred`` 0 kept, each earning 0.5).
    """
    from t2ieval.uncertainty import bootstrap_accuracy_interval

    suffix = f"_{name}" if name else ""
    report: dict[str, float | int | None] = {}

    def put(key: str, part: pd.DataFrame) -> None:
        if part.empty:
            report[key] = None
            if intervals:
                report[f"{key}_ci_low"] = report[f"{key}_ci_high"] = None
            return
        credit = pair_credit(part[s1], part[s2], part["preferred"], human_ties=human_ties)
        report[key] = float(credit.mean())
        if intervals:
            from t2ieval.data.split import prompt_key

            low, high = bootstrap_accuracy_interval(
                credit, part["prompt"].map(prompt_key), seed=seed
            )
            report[f"{key}_ci_low"], report[f"{key}_ci_high"] = low, high

    for split in splits:
        put(f"{split}_accuracy{suffix}", table[table["split"] == split])
    if "category" in table.columns:
        for split in category_splits:
            part = table[table["split"] == split]
            for cat, group in part.groupby("category", sort=True):
                put(f"{split}_accuracy{suffix}.{cat}", group)
                report[f"{split}_pairs{suffix}.{cat}"] = int(len(group))
    return report
