"""The served model reproduces the pipeline: ``CompositeScorer`` on the test split gives the
fused and branch scores that the stages wrote to ``data/fused/pairs.csv``.

Both paths go through the same batched scorers (``ClipScorer.score``, ``VqaScorer.score_images``,
the CE model and the fusion), so the only differences are float rounding from other batch
compositions: branch scores agree to 1e-6, fused scores to 1e-6 times the fusion's gain
``sum_b |w_b| / std_b`` (``helpers.fused_tolerance``: the fused score is linear in the branch
scores).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from t2ieval.images import load_image
from t2ieval.scoring import CompositeScorer

from helpers import TOL, column_tolerance, fused_tolerance

pytestmark = pytest.mark.slow


def test_served_scores_equal_the_pipelines_fused_scores(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    fused = pd.read_csv("data/fused/pairs.csv")
    test = fused[fused["split"] == "test"].reset_index(drop=True)
    scorer = CompositeScorer.load(".", device="cpu")
    served = scorer.score_pairs(
        list(test["prompt"]),
        [load_image(p) for p in test["image_1"]],
        [load_image(p) for p in test["image_2"]],
    )
    fused_tol = fused_tolerance(scorer.fusion)
    for col in ("clip_score", "ce_score", "d_score"):
        for slot in (1, 2):
            np.testing.assert_allclose(
                served[f"{col}_{slot}"],
                test[f"{col}_{slot}"],
                atol=TOL,
                rtol=0,
                err_msg=f"{col}_{slot}",
            )
    for slot in (1, 2):
        np.testing.assert_allclose(
            served[f"score_{slot}"],
            test[f"score_{slot}"],
            atol=fused_tol,
            rtol=0,
            err_msg=f"score_{slot}",
        )
    apart = (test["score_1"] - test["score_2"]).abs() > 2 * fused_tol
    verdict = np.where(served["score_2"] > served["score_1"], 2, 1)
    assert (verdict[apart] == test.loc[apart, "verdict"]).all()


def test_swapping_the_images_swaps_the_verdict_and_gives_one_minus_p(tiny_project, monkeypatch):
    """No position bias by construction: p_1_over_2 of (b, a) is 1 - p of (a, b)."""
    monkeypatch.chdir(tiny_project)
    fused = pd.read_csv("data/fused/pairs.csv")
    test = fused[fused["split"] == "test"].head(12).reset_index(drop=True)
    scorer = CompositeScorer.load(".", device="cpu")
    a = [load_image(p) for p in test["image_1"]]
    b = [load_image(p) for p in test["image_2"]]
    forward = scorer.score_pairs(list(test["prompt"]), a, b)
    backward = scorer.score_pairs(list(test["prompt"]), b, a)
    assert scorer.fusion.scale > 0
    np.testing.assert_allclose(
        backward["p_1_over_2"],
        1.0 - forward["p_1_over_2"],
        atol=column_tolerance("p_1_over_2", scorer.fusion),
    )
    apart = (forward["score_1"] - forward["score_2"]).abs() > 2 * fused_tolerance(scorer.fusion)
    assert (backward.loc[apart, "preferred"] == 3 - forward.loc[apart, "preferred"]).all()
    assert ((forward["p_1_over_2"] > 0.5) == (forward["preferred"] == 1))[apart].all()
