"""What an entropy-complexity feature is: its window, delays and scale (no numerics here).

Kept apart from :mod:`t2ieval.entropy.features` (the ordinal-pattern maths) so that the params
schema can name feature specs without importing the maths.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

MAX_PATTERN_SIZE = 20
"""Largest window (``dx * dy``) supported: ``20!`` still fits an ``int64`` code."""

#: the report's dx=dy=2 window at scale 1, plus a 3x2 window and the half-size image
DEFAULT_ENTROPY_SPECS: tuple[FeatureSpec, ...]


@dataclass(frozen=True)
class FeatureSpec:
    """One (H, C) feature: window ``dx`` x ``dy``, delays ``taux``/``tauy``, downsampling ``scale``.

    ``params.yaml``'s ``quality.entropy_features`` entries are these (any object with the five
    integer attributes, or a mapping with these keys, converts through :meth:`from_any`).
    """

    dx: int = 2
    dy: int = 2
    taux: int = 1
    tauy: int = 1
    scale: int = 1

    def __post_init__(self) -> None:
        for name in ("dx", "dy", "taux", "tauy", "scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"entropy feature {name} must be an integer >= 1, got {value!r}")
        check_window(self.dx, self.dy, self.taux, self.tauy)

    @classmethod
    def from_any(cls, spec: object) -> FeatureSpec:
        """Build from a mapping (``{"dx": 2, ...}``) or an object with the same attributes."""
        if isinstance(spec, FeatureSpec):
            return spec
        keys = ("dx", "dy", "taux", "tauy", "scale")
        if isinstance(spec, dict):
            unknown = sorted(set(spec) - set(keys))
            if unknown:
                raise ValueError(f"entropy feature {spec!r}: unknown key(s) {unknown}")
            return cls(**{k: int(spec[k]) for k in keys if k in spec})
        try:
            return cls(**{k: getattr(spec, k) for k in keys})
        except AttributeError as exc:
            raise ValueError(f"not an entropy feature spec: {spec!r} ({exc})") from exc

    @property
    def suffix(self) -> str:
        """Column suffix, e.g. ``dx2_dy2_tx1_ty1_s1``."""
        return f"dx{self.dx}_dy{self.dy}_tx{self.taux}_ty{self.tauy}_s{self.scale}"

    @property
    def columns(self) -> tuple[str, str]:
        """The two column names of this feature: ``H_<suffix>``, ``C_<suffix>``."""
        return f"H_{self.suffix}", f"C_{self.suffix}"

    def to_dict(self) -> dict[str, int]:
        return {
            "dx": self.dx,
            "dy": self.dy,
            "taux": self.taux,
            "tauy": self.tauy,
            "scale": self.scale,
        }


def check_window(dx: int, dy: int, taux: int, tauy: int) -> None:
    for name, value in (("dx", dx), ("dy", dy), ("taux", taux), ("tauy", tauy)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    m = dx * dy
    if m < 2:
        raise ValueError(
            f"window dx*dy = {dx}*{dy} = {m} has a single ordinal pattern; dx*dy must be at least 2"
        )
    if m > MAX_PATTERN_SIZE:
        raise ValueError(
            f"window dx*dy = {m} is too large ({m}! patterns); at most {MAX_PATTERN_SIZE} supported"
        )


DEFAULT_ENTROPY_SPECS = (
    FeatureSpec(2, 2, 1, 1, 1),
    FeatureSpec(3, 2, 1, 1, 1),
    FeatureSpec(2, 2, 1, 1, 2),
)
