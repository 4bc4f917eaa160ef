"""Within-prompt, cross-generator comparisons of scored images: wins, ties, missing images.

For every prompt, every image of one generator is compared with every image of every other
generator for the same prompt: the higher fused score wins; two exactly equal scores are a tie,
half a win for each side (:func:`t2ieval.metrics.verdicts`, the project's one tie rule). A
generator with no image for a prompt has no comparison there: that prompt is counted as
*missing* for it, not silently dropped. Images are never compared across prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from t2ieval.metrics import verdicts


@dataclass(frozen=True)
class Comparisons:
    """Every within-prompt comparison, per prompt.

    ``wins[p, i, j]``: comparisons of prompt ``p`` that generator ``i`` won against ``j``, each
    tie adding 0.5 to both ``wins[p, i, j]`` and ``wins[p, j, i]``; ``ties[p, i, j]`` (symmetric)
    counts the ties; ``images[p, i]`` counts generator ``i``'s images of prompt ``p``.
    """

    generators: tuple[str, ...]
    prompts: tuple[str, ...]
    wins: np.ndarray
    ties: np.ndarray
    images: np.ndarray

    @property
    def comparisons(self) -> np.ndarray:
        """``[P, K, K]``: how many comparisons of ``i`` with ``j`` each prompt holds."""
        return self.wins + self.wins.transpose(0, 2, 1)

    def subset(self, mask: np.ndarray) -> Comparisons:
        """The comparisons of the prompts where ``mask`` is true (e.g. one category)."""
        mask = np.asarray(mask, dtype=bool)
        return Comparisons(
            self.generators,
            tuple(np.asarray(self.prompts)[mask].tolist()),
            self.wins[mask],
            self.ties[mask],
            self.images[mask],
        )


def compare_within_prompts(
    scores: pd.DataFrame,
    generators: Sequence[str] | None = None,
    prompts: Sequence[str] | None = None,
    score: str = "score",
) -> Comparisons:
    """All within-prompt, cross-generator comparisons of ``scores``.

    Args:
        scores: one row per image with ``generator``, ``prompt_id`` and the ``score`` column.
            A row whose score is NaN is not compared (count it as missing before calling).
        generators: the generators, in matrix order (default: sorted names in ``scores``);
            a generator without any image still gets its row.
        prompts: the whole prompt suite (default: the prompts in ``scores``); a prompt without
            any scored image still counts, as missing for every generator.
        score: the column that decides (higher wins).
    """
    for col in ("generator", "prompt_id", score):
        if col not in scores.columns:
            raise ValueError(f"scores need a {col!r} column; found {list(scores.columns)}")
    names = (
        tuple(generators)
        if generators is not None
        else tuple(sorted(scores["generator"].astype(str).unique()))
    )
    index = {g: i for i, g in enumerate(names)}
    unknown = sorted(set(scores["generator"].astype(str)) - set(index))
    if unknown:
        raise ValueError(f"scores name generator(s) {unknown} not in {list(names)}")
    valid = scores[scores[score].notna()]
    suite = set() if prompts is None else set(map(str, prompts))
    prompts = tuple(sorted(set(scores["prompt_id"].astype(str)) | suite))
    k, n = len(names), len(prompts)
    wins = np.zeros((n, k, k))
    ties = np.zeros((n, k, k))
    images = np.zeros((n, k), dtype=np.int64)
    groups = dict(tuple(valid.groupby(valid["prompt_id"].astype(str), sort=False)))
    for p, prompt in enumerate(prompts):
        group = groups.get(prompt)
        if group is None:
            continue
        gen = group["generator"].astype(str).map(index).to_numpy()
        value = group[score].to_numpy(dtype=np.float64)
        np.add.at(images[p], gen, 1)
        a, b = np.nonzero(gen[:, None] != gen[None, :])  # ordered pairs of images, both ways
        once = a < b
        a, b = a[once], b[once]
        verdict = verdicts(value[a], value[b])
        ga, gb = gen[a], gen[b]
        credit_a = np.where(verdict == 1, 1.0, np.where(verdict == 0, 0.5, 0.0))
        np.add.at(wins[p], (ga, gb), credit_a)
        np.add.at(wins[p], (gb, ga), 1.0 - credit_a)
        tie = (verdict == 0).astype(float)
        np.add.at(ties[p], (ga, gb), tie)
        np.add.at(ties[p], (gb, ga), tie)
    return Comparisons(names, prompts, wins, ties, images)


def pairwise_table(c: Comparisons) -> pd.DataFrame:
    """One row per pair of generators: comparisons, outright wins of each side, ties, and the
    win rate of ``generator_a`` (ties half)."""
    total_wins, total_ties = c.wins.sum(axis=0), c.ties.sum(axis=0)
    n = total_wins + total_wins.T
    rows = []
    for i, a in enumerate(c.generators):
        for j in range(i + 1, len(c.generators)):
            t = total_ties[i, j]
            rows.append(
                {
                    "generator_a": a,
                    "generator_b": c.generators[j],
                    "comparisons": int(round(n[i, j])),
                    "prompts": int(((c.images[:, i] > 0) & (c.images[:, j] > 0)).sum()),
                    "wins_a": int(round(total_wins[i, j] - t / 2)),
                    "wins_b": int(round(total_wins[j, i] - t / 2)),
                    "ties": int(round(t)),
                    "win_rate_a": total_wins[i, j] / n[i, j] if n[i, j] else float("nan"),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "generator_a",
            "generator_b",
            "comparisons",
            "prompts",
            "wins_a",
            "wins_b",
            "ties",
            "win_rate_a",
        ],
    )


def generator_table(c: Comparisons) -> pd.DataFrame:
    """One row per generator: images, prompts covered and missing, comparisons, ties and the
    win rate against all others pooled (ties half)."""
    wins = c.wins.sum(axis=0)
    n = wins + wins.T
    ties = c.ties.sum(axis=0)
    covered = (c.images > 0).sum(axis=0)
    rows = []
    for i, g in enumerate(c.generators):
        total = n[i].sum()
        rows.append(
            {
                "generator": g,
                "images": int(c.images[:, i].sum()),
                "prompts": int(covered[i]),
                "missing_prompts": int(len(c.prompts) - covered[i]),
                "comparisons": int(round(total)),
                "ties": int(round(ties[i].sum())),
                "win_rate": wins[i].sum() / total if total else float("nan"),
            }
        )
    return pd.DataFrame(rows)
