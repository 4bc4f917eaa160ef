"""Distribution metrics per generator: FID, KID, Inception Score and CLIPScore, labelled.

FID, KID and IS are computed by torchmetrics' own metric classes
(``FrechetInceptionDistance``, ``KernelInceptionDistance``, ``InceptionScore``) on features
that a :mod:`~t2ieval.benchmark.features` extractor computed once per image: the classes get an
identity "network", so their statistics are exactly torchmetrics', whatever the space. Each
metric is named after its space (``fid_inception`` is FID; ``fid_clip`` is a Fréchet distance in
the model's CLIP space) and carries the space's note in every table.

* FID and KID need a reference set ("real" images); without one they are skipped, with the
  reason. KID draws its subsets from torch's RNG, seeded here, so it is reproducible.
* IS needs an ImageNet classifier's class posterior. The CLIP extractor has none, so IS is
  skipped there, with the reason: a softmax over CLIP similarities to some label set would be a
  different quantity under the same name.
* CLIPScore is ``100 * max(cos, 0)`` per image, averaged per generator, where ``cos`` is the
  registered model's CLIP-score (its projected prompt and image embeddings). torchmetrics'
  ``CLIPScore`` only loads Hugging Face CLIP checkpoints, so it is computed here; being the
  model's own fine-tuned space, it is not comparable to published (OpenAI CLIP) CLIPScore.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from t2ieval.benchmark.features import FeatureSpace

log = logging.getLogger(__name__)

CLIPSCORE = "clipscore_t2ieval"
CLIPSCORE_NOTE = (
    "CLIPScore = 100 x max(cos, 0) with the registered model's fine-tuned CLIP-score "
    "embeddings (its clip_score), not OpenAI CLIP: not comparable to published "
    "CLIPScore"
)
COLUMNS = (
    "generator",
    "metric",
    "value",
    "std",
    "images",
    "reference_images",
    "feature_space",
    "comparable_to_published",
    "note",
)


class _Precomputed(nn.Module):
    """The identity, as torchmetrics' feature network: the features are already computed."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = int(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@dataclass
class DistributionResult:
    """Long table (one row per generator and metric, :data:`COLUMNS`) and what was skipped."""

    space: FeatureSpace
    table: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)

    def wide(self) -> pd.DataFrame:
        """One row per generator, a column per metric (``<metric>``, ``<metric>_std``)."""
        if self.table.empty:
            return pd.DataFrame({"generator": []})
        value = self.table.pivot(index="generator", columns="metric", values="value")
        std = self.table.pivot(index="generator", columns="metric", values="std")
        std.columns = [f"{c}_std" for c in std.columns]
        out = pd.concat([value, std.dropna(axis=1, how="all")], axis=1)
        return out[sorted(out.columns)].reset_index()


def fid(features: torch.Tensor, reference: torch.Tensor) -> float:
    """torchmetrics' Fréchet distance between two feature sets (``[N, d]``, ``[R, d]``)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Precomputed(features.shape[1]))
    metric.update(reference.double(), real=True)
    metric.update(features.double(), real=False)
    return float(metric.compute())


def kid(
    features: torch.Tensor,
    reference: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """torchmetrics' kernel distance (mean, std over ``subsets`` random subsets), seeded.

    ``subset_size`` is capped at the smaller set's size.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(features), len(reference))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(
            feature=_Precomputed(features.shape[1]), subsets=subsets, subset_size=size
        )
    metric.update(reference.double(), real=True)
    metric.update(features.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is left as it was
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(logits: torch.Tensor, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """torchmetrics' Inception Score of class logits (mean, std over ``splits``), seeded.

    ``splits`` is capped at the number of images; with one split the std is NaN.
    """
    from torchmetrics.image.inception import InceptionScore

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = InceptionScore(
            feature=_Precomputed(logits.shape[1]), splits=max(1, min(splits, len(logits)))
        )
    metric.update(logits.double())
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)
        warnings.filterwarnings("ignore", message=".*degrees of freedom.*")
        mean, std = metric.compute()
    return float(mean), float(std)


def clipscore(cosines: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of ``100 * max(cos, 0)`` over images."""
    values = 100.0 * np.maximum(np.asarray(cosines, dtype=np.float64), 0.0)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def distribution_metrics(
    generators: Sequence[str],
    image_generator: Sequence[str],
    features: torch.Tensor,
    logits: torch.Tensor | None,
    clip_cosine: np.ndarray,
    space: FeatureSpace,
    reference: torch.Tensor | None = None,
    seed: int = 0,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
) -> DistributionResult:
    """FID, KID, IS and CLIPScore of each generator's images.

    Args:
        generators: the generators, in report order.
        image_generator: per image (row of ``features``), its generator.
        features: ``[N, d]`` features of every image in ``space``.
        logits: ``[N, C]`` class logits, or None where the extractor has none (IS skipped).
        clip_cosine: per image, the model's CLIP-score (a cosine) for its prompt.
        space: what the features are (names the metrics, labels every row).
        reference: ``[R, d]`` features of the reference set in the same space, or None (FID
            and KID skipped).
        seed: seeds KID's subsets and IS's shuffle.
    """
    gen = np.asarray(image_generator).astype(str)
    if len(gen) != len(features) or len(gen) != len(clip_cosine):
        raise ValueError(
            f"{len(gen)} images, {len(features)} feature rows and "
            f"{len(clip_cosine)} CLIP-scores: they must match"
        )
    skipped: dict[str, str] = {}
    n_ref = 0 if reference is None else len(reference)
    if reference is None:
        skipped[f"fid_{space.key}"] = skipped[f"kid_{space.key}"] = (
            "no reference set given (--reference DIR): FID and KID compare with real images"
        )
    elif n_ref < 2:
        skipped[f"fid_{space.key}"] = skipped[f"kid_{space.key}"] = (
            f"the reference set has {n_ref} image(s); at least 2 are needed"
        )
    if logits is None:
        skipped[f"is_{space.key}"] = (
            "the Inception Score needs an ImageNet classifier's class posterior p(y|x); the "
            f"{space.key} extractor has no class logits, so IS is not computed (use --features "
            "inception with the Inception-v3 weights)"
        )
    if reference is not None and n_ref >= 2 and n_ref < space.dim:
        log.warning(
            "the reference set has %d images for %d-d features: FID's covariance is "
            "singular and the distance is biased upwards; compare generators only with "
            "each other",
            n_ref,
            space.dim,
        )
    rows = []

    def put(
        g: str,
        metric: str,
        value: float,
        std: float,
        n: int,
        note: str,
        comparable: bool,
        space_name: str,
    ) -> None:
        rows.append(
            {
                "generator": g,
                "metric": metric,
                "value": value,
                "std": std,
                "images": n,
                "reference_images": n_ref if metric.startswith(("fid", "kid")) else 0,
                "feature_space": space_name,
                "comparable_to_published": comparable,
                "note": note,
            }
        )

    for g in generators:
        mask = gen == g
        n = int(mask.sum())
        if n == 0:
            continue
        mask_t = torch.from_numpy(mask)
        f = features[mask_t]
        if f"fid_{space.key}" not in skipped:
            if n < 2:
                log.warning("generator %s has %d image: no FID/KID", g, n)
            else:
                put(
                    g,
                    f"fid_{space.key}",
                    fid(f, reference),
                    float("nan"),
                    n,
                    space.note,
                    space.comparable,
                    space.description,
                )
                mean, std = kid(f, reference, kid_subsets, kid_subset_size, seed)
                put(
                    g,
                    f"kid_{space.key}",
                    mean,
                    std,
                    n,
                    space.note,
                    space.comparable,
                    space.description,
                )
        if logits is not None:
            mean, std = inception_score(logits[mask_t], is_splits, seed)
            put(g, f"is_{space.key}", mean, std, n, space.note, space.comparable, space.description)
        mean, std = clipscore(np.asarray(clip_cosine)[mask])
        put(
            g,
            CLIPSCORE,
            mean,
            std,
            n,
            CLIPSCORE_NOTE,
            False,
            "t2ieval CLIP-score space (fine-tuned projection heads)",
        )
    return DistributionResult(
        space=space, table=pd.DataFrame(rows, columns=list(COLUMNS)), skipped=skipped
    )
