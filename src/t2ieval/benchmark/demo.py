"""The embedded demo: the synthetic renderer as several generators of known fidelity.

Each prompt comes from the embedded preference set's scene sampler
(:func:`t2ieval.data.scenes.sample_pair`): a scene, its prompt, and the way a bad image of it goes
wrong (the prompt's ``category``: object, colour, count, relation, style or degradation). For
every prompt, a demo generator decides with probability ``violation_rate`` to draw a copy of the
scene contradicted in the prompt's category (:func:`t2ieval.data.scenes.violate`; for
``degradation`` prompts, a degraded rendering), and with probability ``degradation_rate`` to
degrade the image too (noise, blur or clutter, :func:`t2ieval.data.render.degrade`). The known
order is the order of the share of bad images,
``1 - (1 - violation_rate) * (1 - degradation_rate)``: a good evaluator ranks the generators so.
A reference set of faithful renderings (other layouts) is the "real" distribution FID/KID need.

``shared_layout`` (default) gives every generator the same layout randomness for a prompt
(common random numbers): their faithful images of a prompt are then the same picture, a tie, and
the comparison measures fidelity alone rather than which layout a model happens to prefer; the
ranking needs far fewer prompts to separate the generators. ``shared_layout: false`` draws each
generator's layouts independently, as real generators would.

Everything is deterministic from ``seed``: prompt ``i`` draws from ``default_rng([seed, i])``;
generator ``g``'s sample ``s`` of it takes its decisions from
``default_rng([seed, i, 3, crc32(g), s])`` and its layout from
``default_rng([seed, i, 1, s])`` (shared) or ``default_rng([seed, i, 1, crc32(g), s])``;
reference ``r`` draws from ``default_rng([seed, i, 2, r])``. Adding a generator or prompts
changes no other image.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from t2ieval.data.render import render_scene
from t2ieval.data.scenes import DEGRADATIONS, sample_pair, violate
from t2ieval.data.synthetic import MIN_SIZE
from t2ieval.io import write_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratorSpec:
    """A demo generator: how often its images contradict the prompt, how often they are degraded."""

    name: str
    violation_rate: float
    degradation_rate: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"generator name {self.name!r} must be a non-empty folder name")
        for key in ("violation_rate", "degradation_rate"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"generator {self.name!r}: {key} must lie in [0, 1], got {value}")

    @property
    def bad_rate(self) -> float:
        """Expected share of its images that are wrong or degraded (lower is better)."""
        return 1.0 - (1.0 - self.violation_rate) * (1.0 - self.degradation_rate)


def _default_generators() -> tuple[GeneratorSpec, ...]:
    return (
        GeneratorSpec("faithful-5", 0.05),
        GeneratorSpec("sloppy-25", 0.25),
        GeneratorSpec("broken-50", 0.50, 0.50),
    )


@dataclass(frozen=True)
class DemoParams:
    """The ``demo`` section of ``leaderboard/params.yaml``."""

    generators: tuple[GeneratorSpec, ...] = field(default_factory=_default_generators)
    n_prompts: int = 400
    samples_per_prompt: int = 1
    reference_per_prompt: int = 1
    image_size: int = 128
    shared_layout: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.generators) < 2:
            raise ValueError("the demo needs at least two generators")
        names = [g.name for g in self.generators]
        if len(set(names)) != len(names):
            raise ValueError(f"generator names repeat: {names}")
        for key in ("n_prompts", "samples_per_prompt"):
            if getattr(self, key) < 1:
                raise ValueError(f"demo.{key} must be >= 1, got {getattr(self, key)}")
        if self.reference_per_prompt < 0:
            raise ValueError(
                f"demo.reference_per_prompt must be >= 0, got {self.reference_per_prompt}"
            )
        if self.image_size < MIN_SIZE:
            raise ValueError(f"demo.image_size must be >= {MIN_SIZE}, got {self.image_size}")

    def expected_order(self) -> list[str]:
        """Generator names best first: by the expected share of bad images (ties keep order)."""
        return [g.name for g in sorted(self.generators, key=lambda g: g.bad_rate)]


def load_demo_params(path: str | Path, section: str = "demo") -> DemoParams:
    """The ``section`` of a YAML params file as :class:`DemoParams` (unknown keys are errors)."""
    path = Path(path)
    raw = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(section) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: {section} must be a mapping")
    known = set(DemoParams.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown} in {section}; known: {sorted(known)}")
    try:
        gens = raw.pop("generators", None)
        if gens is not None:
            if not isinstance(gens, list):
                raise ValueError(f"{section}.generators must be a list")
            raw["generators"] = tuple(GeneratorSpec(**g) for g in gens)
        return DemoParams(**raw)
    except TypeError as exc:
        raise ValueError(f"{path}: {section}: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _stream(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def render_demo(out_dir: str | Path, params: DemoParams) -> dict:
    """Render every generator's images of the demo suite into ``out_dir``.

    Writes ``images/<generator>/<prompt_id>_<sample>.png``, ``reference/<prompt_id>_<r>.png``,
    ``prompts.csv`` (the suite, for the folder layout), ``manifest.csv`` (the same images as a
    manifest, paths relative to ``out_dir``) and ``truth.csv`` (what each image got wrong).
    Returns a summary with the expected order and each generator's realised share of bad images.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prompts, manifest, truth = [], [], []
    for i in range(params.n_prompts):
        spec = sample_pair(np.random.default_rng([params.seed, i]))
        pid = f"q{i:05d}"
        prompts.append({"prompt_id": pid, "prompt": spec.prompt, "category": spec.category})
        for gen in params.generators:
            for s in range(params.samples_per_prompt):
                choice = np.random.default_rng([params.seed, i, 3, _stream(gen.name), s])
                layout = np.random.default_rng(
                    [params.seed, i, 1, s]
                    if params.shared_layout
                    else [params.seed, i, 1, _stream(gen.name), s]
                )
                violated = bool(choice.random() < gen.violation_rate)
                degraded = bool(choice.random() < gen.degradation_rate)
                scene, kind = spec.good, None
                if violated and spec.category == "degradation":
                    kind = DEGRADATIONS[int(choice.integers(len(DEGRADATIONS)))]
                elif violated:
                    scene = violate(spec.good, spec.category, choice)
                if degraded and kind is None:
                    kind = DEGRADATIONS[int(choice.integers(len(DEGRADATIONS)))]
                img = render_scene(scene, params.image_size, layout, degradation=kind)
                rel = Path("images") / gen.name / f"{pid}_{s}.png"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                img.save(out / rel, format="PNG", optimize=False)
                manifest.append(
                    {
                        "generator": gen.name,
                        "prompt_id": pid,
                        "prompt": spec.prompt,
                        "category": spec.category,
                        "seed": s,
                        "image": rel.as_posix(),
                    }
                )
                truth.append(
                    {
                        "generator": gen.name,
                        "prompt_id": pid,
                        "seed": s,
                        "violated": violated,
                        "degradation": kind or "",
                        "bad": violated or kind is not None,
                    }
                )
        for r in range(params.reference_per_prompt):
            rng = np.random.default_rng([params.seed, i, 2, r])
            rel = Path("reference") / f"{pid}_{r}.png"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            render_scene(spec.good, params.image_size, rng).save(
                out / rel, format="PNG", optimize=False
            )
    write_table(out / "prompts.csv", pd.DataFrame(prompts))
    write_table(out / "manifest.csv", pd.DataFrame(manifest))
    truth_frame = pd.DataFrame(truth)
    write_table(out / "truth.csv", truth_frame)
    realised = truth_frame.groupby("generator")["bad"].mean()
    summary = {
        "prompts": params.n_prompts,
        "images": len(manifest),
        "reference_images": params.n_prompts * params.reference_per_prompt,
        "expected_order": params.expected_order(),
        "bad_share": {g.name: float(realised[g.name]) for g in params.generators},
        "expected_bad_share": {g.name: g.bad_rate for g in params.generators},
    }
    log.info(
        "rendered %d images of %d generators for %d prompts in %s",
        len(manifest),
        len(params.generators),
        params.n_prompts,
        out,
    )
    return summary


def check_known_order(leaderboard: pd.DataFrame, params: DemoParams) -> dict:
    """Whether a leaderboard (``generator``, ``bt_strength``, ``bt_ci_low``, ``bt_ci_high``)
    ranks the demo's generators in their known order, and whether neighbours' intervals are
    apart. Generators with equal expected shares of bad images may come in either order."""
    board = leaderboard.set_index("generator")
    missing = [g.name for g in params.generators if g.name not in board.index]
    if missing:
        raise ValueError(f"the leaderboard has no row for generator(s) {missing}")
    expected = params.expected_order()
    got = board.loc[expected].sort_values("bt_strength", ascending=False).index.tolist()
    bad = {g.name: g.bad_rate for g in params.generators}
    in_order = [bad[g] for g in got] == sorted(bad[g] for g in got)
    apart = all(
        board.at[a, "bt_ci_low"] > board.at[b, "bt_ci_high"]
        for a, b in zip(got, got[1:])
        if bad[a] < bad[b]
    )
    return {
        "expected_order": expected,
        "order": got,
        "known_order": in_order,
        "intervals_apart": bool(in_order and apart),
    }
