"""Bradley-Terry strengths, the prompt bootstrap, and within-prompt comparisons (ties, missing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from t2ieval.benchmark.compare import compare_within_prompts, generator_table, pairwise_table
from t2ieval.benchmark.strengths import bootstrap_strengths, fit_bradley_terry


def expected_wins(theta: np.ndarray, per_pair: float) -> np.ndarray:
    """The win matrix ``per_pair`` comparisons of every pair give on average."""
    p = expit(theta[:, None] - theta[None, :])
    wins = per_pair * p
    np.fill_diagonal(wins, 0.0)
    return wins


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=6), st.floats(1.0, 500.0))
def test_the_fit_recovers_the_strengths_that_generated_the_expected_wins(theta, per_pair):
    theta = np.asarray(theta)
    fitted = fit_bradley_terry(expected_wins(theta, per_pair), prior=0.0)
    np.testing.assert_allclose(fitted, theta - theta.mean(), atol=1e-6)


def test_the_fit_recovers_known_strengths_from_simulated_comparisons():
    rng = np.random.default_rng(7)
    theta = np.array([-1.5, -0.2, 0.0, 0.6, 1.1])
    wins = np.zeros((5, 5))
    for i in range(5):
        for j in range(i + 1, 5):
            won = rng.binomial(4000, expit(theta[i] - theta[j]))
            wins[i, j] += won
            wins[j, i] += 4000 - won
    fitted = fit_bradley_terry(wins)
    np.testing.assert_allclose(fitted, theta - theta.mean(), atol=0.06)
    assert list(np.argsort(fitted)) == [0, 1, 2, 3, 4]


def test_the_prior_keeps_a_generator_that_always_wins_finite_and_the_fit_centred():
    wins = np.array([[0.0, 30.0, 30.0], [0.0, 0.0, 15.0], [0.0, 15.0, 0.0]])
    theta = fit_bradley_terry(wins)
    assert np.isfinite(theta).all() and theta[0] > 4 and abs(theta[1] - theta[2]) < 1e-9
    assert abs(theta.sum()) < 1e-9
    assert fit_bradley_terry(np.zeros((3, 3))).tolist() == [0.0, 0.0, 0.0]


def test_a_stack_of_win_matrices_is_fitted_one_by_one():
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 20, size=(4, 3, 3)).astype(float)
    together = fit_bradley_terry(stack)
    alone = np.stack([fit_bradley_terry(m) for m in stack])
    np.testing.assert_allclose(together, alone, atol=1e-9)


@pytest.mark.parametrize(
    "wins, message",
    [
        (np.ones((2, 3)), "K, K"),
        (-np.ones((2, 2)), "non-negative"),
        (np.full((2, 2), np.nan), "finite"),
    ],
)
def test_malformed_win_matrices_are_refused(wins, message):
    with pytest.raises(ValueError, match=message):
        fit_bradley_terry(wins)


def _scores(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["generator", "prompt_id", "score"])


def test_ties_are_half_a_win_for_each_side_and_counted():
    scores = _scores([("a", "p1", 0.5), ("b", "p1", 0.5), ("a", "p2", 0.9), ("b", "p2", 0.1)])
    c = compare_within_prompts(scores)
    assert c.generators == ("a", "b") and c.prompts == ("p1", "p2")
    assert c.wins[0].tolist() == [[0.0, 0.5], [0.5, 0.0]]
    assert c.ties[0].tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert c.wins[1].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    row = pairwise_table(c).iloc[0]
    assert (row["comparisons"], row["wins_a"], row["wins_b"], row["ties"]) == (2, 1, 0, 1)
    assert row["win_rate_a"] == pytest.approx(0.75)
    # all ties: equal strengths
    tied = compare_within_prompts(_scores([("a", "p", 1.0), ("b", "p", 1.0), ("c", "p", 1.0)]))
    np.testing.assert_allclose(fit_bradley_terry(tied.wins.sum(axis=0)), 0.0, atol=1e-12)


def test_with_ties_the_fitted_probability_is_the_share_of_wins_ties_counting_half():
    scores = _scores(
        [("a", f"p{k}", 1.0) for k in range(11)]
        + [("b", f"p{k}", 0.0) for k in range(6)]  # a wins 6
        + [("b", f"p{k}", 2.0) for k in range(6, 8)]  # b wins 2
        + [("b", f"p{k}", 1.0) for k in range(8, 11)]
    )  # three ties
    c = compare_within_prompts(scores)
    assert c.ties.sum() / 2 == 3
    theta = fit_bradley_terry(c.wins.sum(axis=0), prior=0.0)
    assert expit(theta[0] - theta[1]) == pytest.approx((6 + 3 / 2) / 11)


def test_missing_images_are_counted_and_images_never_compared_across_prompts():
    scores = _scores(
        [
            ("a", "p1", 1.0),
            ("b", "p1", 0.0),
            ("c", "p1", 0.5),
            ("a", "p2", 0.0),
            ("b", "p2", 1.0),  # c has no p2
            ("a", "p3", 0.3),
            ("a", "p3", 0.7),
            ("c", "p3", 0.5),  # two of a, no b
            ("c", "p4", float("nan")),
        ]
    )  # c's p4 unscored
    c = compare_within_prompts(scores, prompts=["p1", "p2", "p3", "p4", "p5"])
    assert c.prompts == ("p1", "p2", "p3", "p4", "p5")
    gen = generator_table(c).set_index("generator")
    assert gen["missing_prompts"].to_dict() == {"a": 2, "b": 3, "c": 3}
    assert gen["images"].to_dict() == {"a": 4, "b": 2, "c": 2}
    n = c.comparisons.sum(axis=0)
    assert n[0, 1] == 2 and n[0, 2] == 1 + 2 and n[1, 2] == 1
    # a's two p3 images each meet c's once: one win, one loss
    assert c.wins[2, 0, 2] == 1.0 and c.wins[2, 2, 0] == 1.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("abcd"),
            st.sampled_from(["p1", "p2", "p3"]),
            st.sampled_from([0.0, 0.25, 0.5, 1.0]),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_every_cross_generator_pair_within_a_prompt_is_one_comparison(rows):
    scores = _scores(rows)
    c = compare_within_prompts(scores)
    expected = 0
    for _, group in scores.groupby("prompt_id"):
        g = group["generator"].to_numpy()
        expected += int((g[:, None] != g[None, :]).sum() // 2)
    assert c.comparisons.sum() / 2 == pytest.approx(expected)
    assert (c.ties == c.ties.transpose(0, 2, 1)).all()
    np.testing.assert_allclose(c.wins - c.ties / 2 >= -1e-12, True)


def _separated_prompts(n: int, seed: int) -> np.ndarray:
    """``n`` prompts of three generators: a beats b and c, b beats c, each with prob. 0.9."""
    rng = np.random.default_rng(seed)
    wins = np.zeros((n, 3, 3))
    for p in range(n):
        for i, j in ((0, 1), (0, 2), (1, 2)):
            won = float(rng.random() < 0.9)
            wins[p, i, j], wins[p, j, i] = won, 1.0 - won
    return wins


def test_the_prompt_bootstrap_is_a_function_of_the_inputs_and_the_seed():
    wins = _separated_prompts(40, 1)
    first = bootstrap_strengths(wins, ["a", "b", "c"], n=300, seed=5)
    again = bootstrap_strengths(wins, ["a", "b", "c"], n=300, seed=5)
    other = bootstrap_strengths(wins, ["a", "b", "c"], n=300, seed=6)
    assert np.array_equal(first.ci_low, again.ci_low)
    assert np.array_equal(first.ci_high, again.ci_high)
    assert not np.array_equal(first.ci_low, other.ci_low)
    assert np.array_equal(first.theta, other.theta)  # the estimate does not depend on the seed
    assert (first.ci_low <= first.theta).all() and (first.theta <= first.ci_high).all()


def test_well_separated_generators_get_ordered_non_overlapping_intervals():
    s = bootstrap_strengths(_separated_prompts(60, 2), ["a", "b", "c"], n=500, seed=0)
    assert s.theta[0] > s.theta[1] > s.theta[2]
    assert s.ci_low[0] > s.ci_high[1] and s.ci_low[1] > s.ci_high[2]
    assert s.win_probability(0, 2) > 0.8


def test_the_bootstrap_resamples_prompts_not_comparisons():
    """A prompt with many comparisons weighs as one unit: its copies move together."""
    one_big = np.zeros((2, 2, 2))
    one_big[0, 0, 1] = 50.0  # prompt 0: a wins 50 times
    one_big[1, 1, 0] = 1.0  # prompt 1: b wins once
    s = bootstrap_strengths(one_big, ["a", "b"], n=400, seed=0)
    assert s.ci_low[0] < 0 < s.ci_high[0]  # with two prompts, either may be drawn twice


@pytest.mark.parametrize(
    "kwargs, message",
    [({"n": 0}, "n must be"), ({"level": 1.0}, "level"), ({"names": ["a"]}, "names")],
)
def test_bootstrap_arguments_are_checked(kwargs, message):
    args = {"per_prompt_wins": _separated_prompts(3, 0), "names": ["a", "b", "c"], **kwargs}
    with pytest.raises(ValueError, match=message):
        bootstrap_strengths(**args)
