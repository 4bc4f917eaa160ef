"""The ``fuse`` stage: the published and the learned fusion, fused scores for every pair."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from t2ieval.fusion import (
    BRANCHES,
    FusionWeights,
    choose_fusion,
    fixed_weights,
    fused_pair_scores,
    out_of_fold_scores,
)
from t2ieval.io import read_table
from t2ieval.metrics import pairwise_accuracy, verdicts
from t2ieval.params import Params
from t2ieval.paths import SPLIT_PAIRS, scores_path
from t2ieval.probability import fit_scale

log = logging.getLogger(__name__)


def merge_branch_scores(
    pairs: pd.DataFrame, branch_scores: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """Join each branch's ``pair_id, score_1, score_2`` onto ``pairs`` as ``<branch>_score_<slot>``.

    Raises if a branch lacks scores for some pair, naming the branch and a few pair ids.
    """
    out = pairs.copy()
    out["pair_id"] = out["pair_id"].astype(str)
    for b, frame in branch_scores.items():
        sub = frame[["pair_id", "score_1", "score_2"]].copy()
        sub["pair_id"] = sub["pair_id"].astype(str)
        sub = sub.rename(columns={"score_1": f"{b}_score_1", "score_2": f"{b}_score_2"})
        out = out.merge(sub, on="pair_id", how="left", validate="one_to_one")
        lost = out.loc[out[f"{b}_score_1"].isna() | out[f"{b}_score_2"].isna(), "pair_id"]
        if len(lost):
            raise ValueError(
                f"branch {b!r} has no score for {len(lost)} pair(s), e.g. "
                f"{lost.head(5).tolist()}; re-run its stage"
            )
    return out


@dataclass
class FusionResult:
    """Both fusions, the chosen one, the fused table and the metrics of the ``fuse`` stage."""

    fixed: FusionWeights
    learned: FusionWeights
    chosen: FusionWeights
    table: pd.DataFrame
    metrics: dict


def run_fusion(
    table: pd.DataFrame,
    mode: str,
    fixed: Mapping[str, float],
    folds: int,
    seed: int = 0,
    branches: tuple[str, ...] = BRANCHES,
) -> FusionResult:
    """Choose and fit the learned fusion on the validation split, score every pair with both
    fusions.

    ``table`` holds every split's pairs with ``split``, ``prompt``, ``preferred`` and the branch
    scores. The learned fusion is chosen by grouped CV on all validation pairs
    (:func:`t2ieval.fusion.choose_fusion`); its validation accuracy is the nested out-of-fold
    estimate (``fused_learned_oof_*``), since the in-sample one is optimistic.
    """
    if mode not in ("fixed", "learned"):
        raise ValueError(f"fuse.mode must be 'fixed' or 'learned', got {mode!r}")
    val = table[table["split"] == "val"]
    if val.empty:
        raise ValueError("no validation pairs: fusion weights are learned on the 'val' split")
    unknown = [b for b in branches if b not in BRANCHES]
    if unknown or not branches:
        raise ValueError(
            f"fusion branches must be a non-empty subset of {list(BRANCHES)}, got {list(branches)}"
        )
    fixed_fusion = fixed_weights(fixed, branches)
    learned_fusion, candidates = choose_fusion(val, folds, seed, branches)
    out = table.copy()
    for name, fusion in (("fixed", fixed_fusion), ("learned", learned_fusion)):
        out[f"fused_{name}_1"], out[f"fused_{name}_2"] = fused_pair_scores(out, fusion)
    is_val = (out["split"] == "val").to_numpy()
    out["fused_learned_oof_1"], out["fused_learned_oof_2"] = np.nan, np.nan
    oof_1, oof_2 = out_of_fold_scores(val, folds, seed, branches)
    out.loc[is_val, "fused_learned_oof_1"], out.loc[is_val, "fused_learned_oof_2"] = oof_1, oof_2
    # p_1_over_2's scale, fitted on honest validation differences: the fixed fusion's own (nothing
    # was fitted to them), the learned fusion's out-of-fold ones (its in-sample ones overfit)
    preferred = val["preferred"].to_numpy()
    fixed_fusion = replace(
        fixed_fusion,
        scale=fit_scale(
            out.loc[is_val, "fused_fixed_1"] - out.loc[is_val, "fused_fixed_2"], preferred
        ),
    )
    learned_fusion = replace(learned_fusion, scale=fit_scale(oof_1 - oof_2, preferred))
    chosen = fixed_fusion if mode == "fixed" else learned_fusion
    out["score_1"], out["score_2"] = out[f"fused_{mode}_1"], out[f"fused_{mode}_2"]
    out["verdict"] = verdicts(out["score_1"], out["score_2"])
    out["p_1_over_2"] = chosen.probability(out["score_1"], out["score_2"])

    def acc(split: str, name: str) -> float:
        part = out[out["split"] == split]
        return pairwise_accuracy(
            part[f"fused_{name}_1"], part[f"fused_{name}_2"], part["preferred"]
        )

    cv = pairwise_accuracy(oof_1, oof_2, val["preferred"])
    metrics = {
        "mode": mode,
        "branches": ",".join(branches),
        "val_accuracy_fixed_weights": acc("val", "fixed"),
        "val_accuracy_learned_weights": cv,
        "val_accuracy_learned_weights_in_sample": acc("val", "learned"),
        "test_accuracy_fixed_weights": acc("test", "fixed"),
        "test_accuracy_learned_weights": acc("test", "learned"),
        "val_accuracy": acc("val", "fixed") if mode == "fixed" else cv,
        "test_accuracy": acc("test", mode),
        **{f"weight_{b}": w for b, w in chosen.weights.items()},
        **{f"learned_weight_{b}": w for b, w in learned_fusion.weights.items()},
        "learned_choice": learned_fusion.choice,
        "calibration_scale": chosen.scale,
        **{f"learned_candidate.{name}": acc for name, acc in candidates.items()},
    }
    return FusionResult(fixed_fusion, learned_fusion, chosen, out, metrics)


def fuse_stage(params: Params) -> FusionResult:
    """Read the split and the active branches' scores, fuse them (``fuse.*``)."""
    p = params.fuse
    branches = tuple(b for b in BRANCHES if b != "d" or params.vqa.enabled)
    pairs = read_table(SPLIT_PAIRS, ["pair_id", "prompt", "preferred", "split", "category"])
    scores = {b: read_table(scores_path(b), ["pair_id", "score_1", "score_2"]) for b in branches}
    return run_fusion(
        merge_branch_scores(pairs, scores),
        p.mode,
        p.fixed_weights,
        p.cv_folds,
        params.base.seed,
        branches,
    )
