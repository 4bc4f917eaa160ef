"""p_1_over_2: an exactly symmetric sigmoid, its fitted scale, and its reliability."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from t2ieval.probability import fit_scale, reliability, symmetric_sigmoid


def test_symmetric_sigmoid_is_exact_under_negation():
    t = np.concatenate([np.linspace(-40, 40, 2001), [0.0, -0.0, 1e-300, -1e-300, 700, -700]])
    np.testing.assert_array_equal(symmetric_sigmoid(-t), 1.0 - symmetric_sigmoid(t))


@given(
    st.floats(-1e3, 1e3, allow_nan=False), st.floats(-1e3, 1e3, allow_nan=False), st.floats(0, 50)
)
def test_swapping_the_images_gives_one_minus_p(s1, s2, scale):
    p = symmetric_sigmoid(scale * (s1 - s2))
    q = symmetric_sigmoid(scale * (s2 - s1))
    assert q == 1.0 - p


def test_fit_scale_recovers_the_scale_that_made_the_labels():
    rng = np.random.default_rng(0)
    diff = rng.normal(size=20000)
    preferred = np.where(rng.random(diff.size) < symmetric_sigmoid(2.5 * diff), 1, 2)
    assert fit_scale(diff, preferred) == pytest.approx(2.5, rel=0.05)
    assert fit_scale(np.zeros(5), [1, 2, 1, 2, 1]) == 0.0
    assert fit_scale([], []) == 0.0


def test_reliability_of_calibrated_and_overconfident_probabilities():
    rng = np.random.default_rng(1)
    p = rng.random(50000)
    preferred = np.where(rng.random(p.size) < p, 1, 2)
    table, ece = reliability(p, preferred)
    assert ece < 0.01 and table["pairs"].sum() == p.size and len(table) == 10
    np.testing.assert_allclose(table["observed"], table["predicted"], atol=0.02)
    overconfident = np.where(p > 0.5, 1.0, 0.0)
    assert reliability(overconfident, preferred)[1] > 0.2
