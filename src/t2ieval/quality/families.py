"""The image-quality feature families and one feature vector per image.

Three families, always laid out in this order (whatever order they are asked for in):

``entropy``
    The ordinal-pattern entropy and complexity features of :mod:`t2ieval.entropy.features`
    (``H_<suffix>, C_<suffix>`` per :class:`~t2ieval.entropy.features.FeatureSpec`), computed by
    that module unchanged, so they stay ``ordpy``-exact and equal to
    ``entropy.features.image_features``.
``nss``
    The 36 BRISQUE natural-scene statistics of :mod:`t2ieval.quality.nss`.
``handcrafted``
    The handcrafted quality features of :mod:`t2ieval.quality.handcrafted`.

An image is decoded once (:func:`t2ieval.images.load_image`, RGB), its 8-bit luminance
(:func:`t2ieval.images.to_luminance`) computed once, and every family reads those two arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from t2ieval.entropy.features import feature_columns, feature_specs, luminance_features
from t2ieval.entropy.spec import DEFAULT_ENTROPY_SPECS, FeatureSpec
from t2ieval.images import to_luminance
from t2ieval.quality import handcrafted, nss
from t2ieval.quality.config import FAMILIES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedImage:
    """One decoded image as every family reads it: 8-bit RGB ``(H, W, 3)``, luminance ``(H, W)``."""

    rgb: np.ndarray
    lum: np.ndarray

    @classmethod
    def from_pil(cls, img: Image.Image) -> PreparedImage:
        if not isinstance(img, Image.Image):
            raise TypeError(f"expected a PIL image, got {type(img).__name__}")
        rgb_img = img if img.mode == "RGB" else img.convert("RGB")
        # luminance of the image as given, exactly as entropy.features.image_features takes it
        return cls(np.asarray(rgb_img, dtype=np.uint8), to_luminance(img))


def check_families(families: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise a family selection to the fixed order of :data:`FAMILIES`.

    Accepts a name, a comma-separated string (``"nss,handcrafted"``), ``"all"``, or an iterable
    of names. Raises ``ValueError`` for an unknown name (naming it and the known ones), a repeated
    name, or an empty selection.
    """
    if isinstance(families, str):
        names = [part.strip() for part in families.split(",") if part.strip()]
    else:
        names = [str(f).strip() for f in families]
    if names == ["all"]:
        return FAMILIES
    if not names:
        raise ValueError(f"no feature family selected; known families: {', '.join(FAMILIES)}")
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown feature famil{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(repr(u) for u in unknown)}; known families: "
            f"{', '.join(FAMILIES)} (or 'all')"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"feature family {', '.join(repr(r) for r in repeated)} listed twice")
    return tuple(f for f in FAMILIES if f in names)


def _entropy_specs(entropy_specs: Iterable[object] | None) -> tuple[FeatureSpec, ...]:
    return DEFAULT_ENTROPY_SPECS if entropy_specs is None else feature_specs(entropy_specs)


def family_names(family: str, entropy_specs: Iterable[object] | None = None) -> list[str]:
    """Column names of one family."""
    (family,) = check_families([family])
    if family == "entropy":
        return feature_columns(_entropy_specs(entropy_specs))
    if family == "nss":
        return nss.feature_names()
    return handcrafted.feature_names()


def feature_names(
    families: str | Iterable[str], entropy_specs: Iterable[object] | None = None
) -> list[str]:
    """Column names of the feature vector of ``families``, in the fixed family order.

    ``entropy_specs`` (the ``entropy.features`` list; default :data:`DEFAULT_ENTROPY_SPECS`) only
    matters when ``entropy`` is selected.
    """
    specs = _entropy_specs(entropy_specs)
    return [name for fam in check_families(families) for name in family_names(fam, specs)]


def prepared_feature_vector(
    image: PreparedImage, families: tuple[str, ...], specs: tuple[FeatureSpec, ...]
) -> np.ndarray:
    """Feature vector of an already decoded image (families and specs already normalised)."""
    parts: list[np.ndarray] = []
    for fam in families:
        if fam == "entropy":
            parts.append(luminance_features(image.lum, specs))
        elif fam == "nss":
            parts.append(nss.brisque_features(image.lum))
        else:
            parts.append(handcrafted.handcrafted_features(image.rgb, image.lum))
    return np.concatenate(parts) if parts else np.empty(0)


def image_feature_vector(
    img: Image.Image, families: str | Iterable[str], entropy_specs: Iterable[object] | None = None
) -> np.ndarray:
    """Feature vector (columns :func:`feature_names`) of one PIL image.

    Raises ``ValueError`` for an unknown family or an image too small for a family (the message
    names the family).
    """
    fams = check_families(families)
    specs = _entropy_specs(entropy_specs)
    prepared = PreparedImage.from_pil(img)
    try:
        return prepared_feature_vector(prepared, fams, specs)
    except ValueError as exc:
        raise ValueError(f"{img.width}x{img.height} image: {exc}") from exc


def _features_of_files(
    files: Sequence[str],
    families: tuple[str, ...],
    specs: tuple[FeatureSpec, ...],
    n_columns: int,
    load: Callable[[str], Image.Image],
) -> np.ndarray:
    """Feature rows of image files (one worker's batch); errors name the file."""
    out = np.empty((len(files), n_columns), dtype=np.float64)
    for i, path in enumerate(files):
        img = load(path)
        try:
            out[i] = prepared_feature_vector(PreparedImage.from_pil(img), families, specs)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return out


def feature_table(
    paths: Sequence[str | Path],
    families: str | Iterable[str] = "all",
    entropy_specs: Iterable[object] | None = None,
    n_jobs: int = 1,
    load: Callable[[str], Image.Image] | None = None,
    batch_size: int = 32,
    root: str | Path | None = None,
    prefer: str = "threads",
) -> pd.DataFrame:
    """Feature table of image files: column ``image`` (the path as given) + :func:`feature_names`.

    Each image is decoded once by ``load`` (default :func:`t2ieval.images.load_image`, which
    validates and converts to RGB) and every family reads it. Batches of ``batch_size`` images
    run over ``n_jobs`` joblib workers (threads by default: the numpy and scipy work releases the
    GIL; ``-1`` uses every core); the result keeps the order of ``paths`` and does not depend on
    ``n_jobs``. Paths are resolved against ``root`` when given.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from t2ieval.images import load_image

    fams = check_families(families)
    specs = _entropy_specs(entropy_specs)
    columns = feature_names(fams, specs)
    loader = load_image if load is None else load
    shown = [str(p) for p in paths]
    files = [str(Path(root) / p) if root is not None else p for p in shown]
    batches = [files[i : i + batch_size] for i in range(0, len(files), batch_size)]
    log.info(
        "quality features (%s) of %d images, %d columns", ",".join(fams), len(files), len(columns)
    )
    progress = tqdm(total=len(files), desc="quality features", unit="img", mininterval=2.0)
    parts: list[np.ndarray] = []
    try:
        if n_jobs == 1 or len(batches) <= 1:
            for batch in batches:
                parts.append(_features_of_files(batch, fams, specs, len(columns), loader))
                progress.update(len(batch))
        else:
            runner = Parallel(n_jobs=n_jobs, return_as="generator", prefer=prefer)
            for batch, part in zip(
                batches,
                runner(
                    delayed(_features_of_files)(b, fams, specs, len(columns), loader)
                    for b in batches
                ),
            ):
                parts.append(part)
                progress.update(len(batch))
    finally:
        progress.close()
    values = np.vstack(parts) if parts else np.empty((0, len(columns)))
    frame = pd.DataFrame(values, columns=columns)
    frame.insert(0, "image", shown)
    return frame
