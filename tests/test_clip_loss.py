"""The CLIP branch's InfoNCE equals the method's formula, computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from t2ieval.clip.loss import PairwiseInfoNCE


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _hand_loss(q, pos, neg, tau):
    """L = -1/N sum_i log(exp(cos(q_i,k_i+)/tau) / sum_j exp(cos(q_i,k_j)/tau)), where k_j runs
    over every image of the batch (both images of every pair)."""
    keys = list(pos) + list(neg)
    total = 0.0
    for i, qi in enumerate(q):
        num = math.exp(_cos(qi, pos[i]) / tau)
        den = sum(math.exp(_cos(qi, k) / tau) for k in keys)
        total += -math.log(num / den)
    return total / len(q)


Q = [[1.0, 0.2, -0.3], [0.1, -1.0, 0.5], [0.4, 0.4, 0.9]]
POS = [[0.9, 0.1, -0.2], [0.0, -0.8, 0.7], [0.3, 0.5, 1.0]]
NEG = [[-0.5, 0.3, 0.2], [0.6, 0.6, -0.1], [1.0, -0.2, 0.1]]


@pytest.mark.parametrize("tau", [0.07, 0.5, 2.0])
def test_loss_matches_hand_computation_with_fixed_temperature(tau):
    loss = PairwiseInfoNCE(temperature=tau)(torch.tensor(Q), torch.tensor(POS), torch.tensor(NEG))
    assert float(loss) == pytest.approx(_hand_loss(Q, POS, NEG, tau), rel=1e-5)


def test_loss_uses_learned_logit_scale_when_temperature_is_null():
    scale = torch.tensor(3.0)  # = exp(logit_scale) = 1/tau
    loss = PairwiseInfoNCE(temperature=None)(
        torch.tensor(Q), torch.tensor(POS), torch.tensor(NEG), scale
    )
    assert float(loss) == pytest.approx(_hand_loss(Q, POS, NEG, 1 / 3.0), rel=1e-5)


def test_other_pairs_images_are_negatives():
    # with a single pair only its own non-preferred image is a negative; adding a second pair
    # must change the first anchor's loss (its images join the denominator)
    one = PairwiseInfoNCE(temperature=1.0)(
        torch.tensor(Q[:1]), torch.tensor(POS[:1]), torch.tensor(NEG[:1])
    )
    assert float(one) == pytest.approx(_hand_loss(Q[:1], POS[:1], NEG[:1], 1.0), rel=1e-5)
    logits, labels = PairwiseInfoNCE(temperature=1.0).logits(
        torch.tensor(Q), torch.tensor(POS), torch.tensor(NEG), 1.0
    )
    assert logits.shape == (3, 6)
    assert labels.tolist() == [0, 1, 2]


def test_loss_gradient_flows_to_all_inputs():
    q, p, n = (torch.tensor(x, requires_grad=True) for x in (Q, POS, NEG))
    PairwiseInfoNCE(temperature=0.5)(q, p, n).backward()
    for t in (q, p, n):
        assert t.grad is not None and float(t.grad.abs().sum()) > 0


def test_bad_temperature_is_refused():
    with pytest.raises(ValueError, match="temperature"):
        PairwiseInfoNCE(temperature=0.0)
