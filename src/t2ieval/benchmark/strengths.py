"""Bradley-Terry strengths from pairwise comparisons, with a bootstrap over prompts.

The model: generator ``i`` beats generator ``j`` with probability
``sigmoid(theta_i - theta_j)``. ``theta`` is fitted by maximising the log-likelihood of the
observed wins plus a weak Gaussian prior, ``-prior / 2 * sum(theta**2)`` (a normal prior of
variance ``1 / prior`` on each strength): without it a generator that wins every comparison has
an infinite strength, and a bootstrap resample that happens to separate two generators would
too. With the prior the fit is unique, finite and centred (``sum(theta) = 0`` at the optimum),
and with many comparisons it is the maximum-likelihood fit.

**Ties** count as half a win for each side (the project's tie rule, :mod:`t2ieval.metrics`): the
caller puts 0.5 in both ``wins[i, j]`` and ``wins[j, i]`` for each tie.

**Intervals**: comparisons of one prompt are not independent (the same prompt is hard for
everyone), so the bootstrap resamples whole prompts with replacement, as
:func:`t2ieval.uncertainty.bootstrap_accuracy_interval` does for accuracies, refits and takes
percentiles. Given the seed, the interval is a function of the inputs alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

#: precision of the Gaussian prior on each strength (variance 100: weak next to any real data)
DEFAULT_PRIOR = 0.01
DEFAULT_BOOTSTRAP = 1000


@dataclass(frozen=True)
class Strengths:
    """Fitted strengths of ``names`` with their bootstrap interval.

    ``theta`` is on the log-odds scale and centred: ``sigmoid(theta[i] - theta[j])`` is the
    modelled probability that ``i`` beats ``j``. ``ci_low``/``ci_high`` are the
    ``level`` percentile interval over ``n_bootstrap`` resamples of the prompts.
    """

    names: tuple[str, ...]
    theta: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_bootstrap: int
    level: float
    seed: int
    prior: float

    def win_probability(self, i: int, j: int) -> float:
        """Modelled probability that ``names[i]`` beats ``names[j]``."""
        return float(expit(self.theta[i] - self.theta[j]))


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def _objective(wins: np.ndarray, theta: np.ndarray, prior: float) -> np.ndarray:
    diff = theta[:, :, None] - theta[:, None, :]
    return (wins * _log_sigmoid(diff)).sum(axis=(1, 2)) - 0.5 * prior * (theta**2).sum(axis=1)


def check_wins(wins: np.ndarray) -> np.ndarray:
    """``wins`` as a float array ``[..., K, K]`` with a zero diagonal, or ``ValueError``."""
    w = np.asarray(wins, dtype=np.float64)
    if w.ndim < 2 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"wins must be [..., K, K], got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("wins must be finite and non-negative")
    w = w.copy()
    idx = np.arange(w.shape[-1])
    w[..., idx, idx] = 0.0
    return w


def fit_bradley_terry(
    wins: np.ndarray, prior: float = DEFAULT_PRIOR, tol: float = 1e-9, max_iter: int = 200
) -> np.ndarray:
    """Bradley-Terry strengths from a win matrix, or from a stack of them at once.

    Args:
        wins: ``[K, K]`` (or ``[..., K, K]``, fitted independently): ``wins[i, j]`` is how many
            times ``i`` beat ``j``, ties counting 0.5 on both sides. The diagonal is ignored.
        prior: precision of the Gaussian prior on each strength (>= 0). With ``0`` the fit is
            the plain maximum-likelihood one, which exists only when no group of generators
            wins every comparison with the rest; it then may not converge.
        tol: stop when no strength moves by more than this in a Newton step.
        max_iter: at most this many damped Newton steps.

    Returns:
        ``theta`` of shape ``[..., K]``, each row centred on zero.

    Raises:
        ValueError: for a malformed ``wins`` or a negative ``prior``.
    """
    if prior < 0:
        raise ValueError(f"prior must be >= 0, got {prior}")
    w = check_wins(wins)
    shape = w.shape[:-2]
    k = w.shape[-1]
    batch = w.reshape(-1, k, k)
    n = batch + batch.transpose(0, 2, 1)
    theta = np.zeros((batch.shape[0], k))
    # the Hessian of the negative objective is a weighted graph Laplacian plus prior * I; adding
    # the all-ones matrix / k fixes the one free direction (a common shift) without changing a
    # step whose components sum to zero, so the system is solvable even with prior = 0
    # (and a 1e-12 ridge keeps it solvable where every comparison is already decided)
    gauge = np.ones((k, k)) / k + max(prior, 1e-12) * np.eye(k)
    current = _objective(batch, theta, prior)
    for _ in range(max_iter):
        p = expit(theta[:, :, None] - theta[:, None, :])
        grad = (batch - n * p).sum(axis=2) - prior * theta
        weight = n * p * (1.0 - p)
        hess = -weight
        hess[:, np.arange(k), np.arange(k)] = weight.sum(axis=2)
        step = np.linalg.solve(hess + gauge, grad[..., None])[..., 0]
        step -= step.mean(axis=1, keepdims=True)
        scale = np.ones(batch.shape[0])
        for _ in range(40):  # halve the step where it would lower the objective
            trial = theta + scale[:, None] * step
            value = _objective(batch, trial, prior)
            worse = value < current - 1e-12 * np.maximum(1.0, np.abs(current))
            if not worse.any():
                break
            scale[worse] *= 0.5
        theta, current = trial, value
        if np.abs(scale[:, None] * step).max(initial=0.0) < tol:
            break
    theta -= theta.mean(axis=1, keepdims=True)
    return theta.reshape(*shape, k)


def bootstrap_strengths(
    per_prompt_wins: np.ndarray,
    names: tuple[str, ...] | list[str],
    n: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
    prior: float = DEFAULT_PRIOR,
) -> Strengths:
    """Strengths from every prompt's comparisons, with a percentile bootstrap over prompts.

    Args:
        per_prompt_wins: ``[P, K, K]``: prompt ``p``'s wins (ties as half wins on both sides).
        names: the ``K`` generators, in the order of the matrices' rows.
        n: bootstrap resamples; each draws ``P`` prompts with replacement and refits.
        seed: seed of ``numpy.random.default_rng``; the same inputs and seed give the same
            interval.
        level: coverage of the two-sided interval.
        prior: see :func:`fit_bradley_terry`.

    Raises:
        ValueError: for no prompts, a name count that does not match ``K``, ``n < 1`` or a
            ``level`` outside ``(0, 1)``.
    """
    w = check_wins(per_prompt_wins)
    if w.ndim != 3:
        raise ValueError(f"per_prompt_wins must be [P, K, K], got shape {w.shape}")
    n_prompts, k, _ = w.shape
    if n_prompts == 0:
        raise ValueError("no prompts: nothing to fit")
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} generators")
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    theta = fit_bradley_terry(w.sum(axis=0), prior)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_prompts, size=(int(n), n_prompts))
    counts = np.zeros((int(n), n_prompts))
    np.add.at(counts, (np.arange(int(n))[:, None], draws), 1.0)
    resampled = (counts @ w.reshape(n_prompts, k * k)).reshape(int(n), k, k)
    samples = np.concatenate(
        [fit_bradley_terry(resampled[i : i + 256], prior) for i in range(0, int(n), 256)]
    )
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail], axis=0)
    return Strengths(
        names=tuple(names),
        theta=theta,
        ci_low=low,
        ci_high=high,
        n_bootstrap=int(n),
        level=level,
        seed=seed,
        prior=prior,
    )
