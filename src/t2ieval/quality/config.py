"""Settings of the quality branch (``quality.*`` in ``params.yaml`` extends these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from t2ieval.entropy.spec import DEFAULT_ENTROPY_SPECS, FeatureSpec

#: known feature families, in their fixed column order
FAMILIES: tuple[str, ...] = ("entropy", "nss", "handcrafted")
#: model kinds: pairwise logistic on feature differences, image-level logistic, calibrated SVM
KINDS: tuple[str, ...] = ("pairwise", "image", "svm")
#: candidate inverse penalties, chosen by prompt-grouped inner CV on the training pairs
DEFAULT_C_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class SvmSettings:
    """The ``svm`` kind's SVC (its ``C`` comes from the grid) and its calibration folds."""

    kernel: Literal["rbf", "linear", "poly", "sigmoid"] = "rbf"
    gamma: str | float = "scale"
    cv: int = 3


@dataclass(frozen=True)
class QualityConfig:
    """Which features describe an image and which model turns them into a quality score."""

    families: tuple[str, ...] = FAMILIES
    entropy_features: tuple[FeatureSpec, ...] = DEFAULT_ENTROPY_SPECS
    model: Literal["pairwise", "image", "svm"] = "pairwise"
    c_grid: tuple[float, ...] = DEFAULT_C_GRID
    inner_folds: int = 5
    #: what the inner CV maximises to choose C: the pairwise log loss (a proper score, steadier on
    #: few prompts than the accuracy, which moves in steps of one pair) or the accuracy
    selection: Literal["log_loss", "accuracy"] = "log_loss"
    inner_repeats: int = 3  # reshuffled repetitions of the inner CV, scores averaged
    svm: SvmSettings = field(default_factory=SvmSettings)
    n_jobs: int = 2  # feature worker threads (-1: all cores); results do not depend on it

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or not self.families:
            raise ValueError(
                f"quality.families: unknown or no family {unknown}; known: {list(FAMILIES)}"
            )
        if not self.c_grid or any(c <= 0 for c in self.c_grid):
            raise ValueError(f"quality.c_grid must hold positive values, got {self.c_grid}")
        if self.inner_folds < 2:
            raise ValueError(f"quality.inner_folds must be at least 2, got {self.inner_folds}")
