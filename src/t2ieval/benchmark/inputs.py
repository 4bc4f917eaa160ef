"""The images a benchmark compares: a manifest of generated images, or a folder layout.

**Manifest** (``.csv``, ``.jsonl``): one row per image with ``generator``, ``prompt`` and
``image`` (a path relative to the manifest's folder, or to ``image_root``, or absolute), and
optionally ``prompt_id`` (default: the prompt, case and spacing ignored), ``category`` and
``seed`` (which sample of the generator this is). **Folder layout**: ``<root>/<generator>/
<prompt_id>_<anything>.<png|jpg|...>`` with a prompts file (``prompt_id``, ``prompt``, optional
``category``) naming the suite.

Every row is checked as :mod:`t2ieval.data.manifest` checks a pair manifest, with the same
reader, problem records and error (:class:`~t2ieval.data.manifest.ManifestError`): a generator
name, a prompt, an image that exists and fully decodes within the pixel limit, one prompt text
and one category per ``prompt_id``, and no second image with the same generator, prompt and
seed. With ``on_error="fail"`` every problem is listed and nothing runs; with ``"skip"`` bad rows
are dropped, logged and counted (their prompts stay in the suite, so the generator is counted
as missing them).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from t2ieval.data.manifest import (
    ManifestError,
    RowProblem,
    image_problem,
    is_blank,
    read_manifest,
    reason_counts,
)
from t2ieval.data.split import prompt_key
from t2ieval.images import DEFAULT_MAX_PIXELS, ImageError, load_image

log = logging.getLogger(__name__)

REQUIRED = ("generator", "prompt", "image")
OPTIONAL = ("prompt_id", "category", "seed")
PROMPTS_REQUIRED = ("prompt_id", "prompt")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
ON_ERROR = ("fail", "skip")
#: the checked table: one row per usable image (``image`` absolute, ``digest`` of its pixels)
COLUMNS = ("row", "generator", "prompt_id", "prompt", "category", "seed", "image", "digest")


@dataclass
class GeneratedImages:
    """The checked images of a benchmark and what was wrong with the rest.

    ``images`` has :data:`COLUMNS`; ``prompts`` (``prompt_id``, ``prompt``, ``category``) is the
    whole suite, including prompts whose every image was skipped.
    """

    source: Path
    images: pd.DataFrame
    prompts: pd.DataFrame
    rows: int
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def generators(self) -> tuple[str, ...]:
        """The generators with at least one usable image, sorted."""
        return tuple(sorted(self.images["generator"].unique()))

    @property
    def skipped_rows(self) -> int:
        return len({p.row for p in self.problems})

    @property
    def skip_reasons(self) -> dict[str, int]:
        """How many rows were skipped for each reason (a row may have several)."""
        return reason_counts(self.problems)


def _text(value: object) -> str:
    return "" if is_blank(value) else str(value).strip()


def _digest(path: str, max_pixels: int) -> str:
    """Fully decode the image (raising :class:`ImageError`) and fingerprint its pixels."""
    img = load_image(path, max_pixels=max_pixels)
    return hashlib.sha1(img.tobytes() + repr(img.size).encode()).hexdigest()[:20]


def check_images(
    source: str | Path,
    frame: pd.DataFrame,
    base: str | Path,
    on_error: str = "fail",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    suite: pd.DataFrame | None = None,
    locations: list[str] | None = None,
) -> GeneratedImages:
    """Check every row of ``frame`` (columns :data:`REQUIRED`, optionally :data:`OPTIONAL`).

    Args:
        source: the manifest or folder, named in every problem.
        frame: the rows as read (strings or blanks).
        base: the folder relative image paths start from.
        on_error: ``fail`` raises :class:`ManifestError` listing every problem; ``skip`` drops
            bad rows, logs each problem and counts them.
        max_pixels: images over this many pixels are refused.
        suite: the known prompts (``prompt_id``, ``prompt``, ``category``), as a prompts file
            gives them: a row's ``prompt_id`` must be one of them and its prompt comes from it.
        locations: per row, how to name it in a problem instead of ``row N`` (a file path).
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    source = Path(source)
    base = os.path.abspath(base)
    known = None if suite is None else {r["prompt_id"]: r for r in suite.to_dict("records")}
    first: dict[str, tuple[int, str, str]] = {}  # prompt_id -> (row, prompt, category)
    seen_seed: dict[tuple[str, str, str], int] = {}
    digests: dict[str, str | ImageError] = {}
    suite_rows: dict[str, dict] = {} if known is None else {k: dict(v) for k, v in known.items()}
    problems: list[RowProblem] = []
    kept = []
    for idx, rec in enumerate(frame.to_dict("records"), start=1):
        where = f"{locations[idx - 1]}: " if locations else ""
        row_problems: list[RowProblem] = []

        def problem(
            fld: str, reason: str, message: str, _row=idx, _where=where, _into=row_problems
        ) -> None:
            _into.append(RowProblem(_row, fld, reason, _where + message))

        generator = _text(rec.get("generator"))
        if not generator:
            problem("generator", "empty_generator", "generator is empty")
        prompt_id = _text(rec.get("prompt_id"))
        prompt = _text(rec.get("prompt"))
        category = _text(rec.get("category"))
        if known is not None:
            if prompt_id not in known:
                problem(
                    "prompt_id",
                    "unknown_prompt_id",
                    f"prompt_id {prompt_id!r} is not in the prompts file",
                )
            else:
                prompt, category = known[prompt_id]["prompt"], known[prompt_id]["category"]
        elif not prompt:
            problem("prompt", "empty_prompt", "prompt is empty")
        if prompt and not prompt_id:
            prompt_id = prompt_key(prompt)
        if prompt and known is None:
            if prompt_id in first:
                row0, prompt0, category0 = first[prompt_id]
                if prompt_key(prompt0) != prompt_key(prompt):
                    problem(
                        "prompt",
                        "prompt_mismatch",
                        f"prompt_id {prompt_id!r} is {prompt0!r} in row {row0}, here {prompt!r}",
                    )
                elif category != category0:
                    problem(
                        "category",
                        "category_mismatch",
                        f"prompt_id {prompt_id!r} has "
                        f"category {category0!r} in row {row0}, here {category!r}",
                    )
            else:
                first[prompt_id] = (idx, prompt, category)
                suite_rows[prompt_id] = {
                    "prompt_id": prompt_id,
                    "prompt": prompt,
                    "category": category,
                }
        seed = _text(rec.get("seed"))
        if generator and prompt_id and seed:
            key = (generator, prompt_id, seed)
            if key in seen_seed:
                problem(
                    "seed",
                    "duplicate_image",
                    f"generator {generator!r} already has an "
                    f"image of prompt_id {prompt_id!r} with seed {seed!r} (row "
                    f"{seen_seed[key]})",
                )
            seen_seed.setdefault(key, idx)
        raw = rec.get("image")
        path = None
        if is_blank(raw) or not isinstance(raw, str):
            problem("image", "missing_path", "image path is empty")
        else:
            path = os.path.normpath(os.path.join(base, raw.strip()))
            if path not in digests:
                try:
                    digests[path] = _digest(path, max_pixels)
                except ImageError as exc:
                    digests[path] = exc
            found = digests[path]
            if isinstance(found, ImageError):
                bad = image_problem(idx, "image", found)
                row_problems.append(RowProblem(bad.row, bad.field, bad.reason, where + bad.message))
        if row_problems:
            problems.extend(row_problems)
            continue
        kept.append(
            {
                "row": idx,
                "generator": generator,
                "prompt_id": prompt_id,
                "prompt": prompt,
                "category": category,
                "seed": seed,
                "image": path,
                "digest": digests[path],
            }
        )
    if problems and on_error == "fail":
        raise ManifestError(source, problems, advice="fix them or pass --on-error skip")
    for p in problems:
        log.warning("%s: skipping %s", source, p)
    images = pd.DataFrame(kept, columns=list(COLUMNS))
    prompts = pd.DataFrame(list(suite_rows.values()), columns=["prompt_id", "prompt", "category"])
    if problems:
        log.warning(
            "%s: skipped %d of %d rows: %s",
            source,
            len({p.row for p in problems}),
            len(frame),
            dict(Counter(p.reason for p in problems)),
        )
    if images.empty:
        raise ManifestError(
            source,
            problems or [RowProblem(0, "*", "empty", "no rows")],
            advice="no usable image left",
        )
    return GeneratedImages(
        source=source, images=images, prompts=prompts, rows=len(frame), problems=problems
    )


def read_generated_manifest(
    path: str | Path,
    image_root: str | Path | None = None,
    on_error: str = "fail",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> GeneratedImages:
    """Read and check a manifest of generated images (see the module docstring)."""
    path = Path(path)
    frame = read_manifest(path, required=REQUIRED)
    base = path.parent if image_root is None else Path(image_root)
    return check_images(path, frame, base, on_error=on_error, max_pixels=max_pixels)


def read_prompts(path: str | Path) -> pd.DataFrame:
    """The prompt suite of a folder layout: ``prompt_id``, ``prompt``, ``category`` (may be empty).

    Raises :class:`ManifestError` listing every blank or repeated ``prompt_id`` and blank prompt.
    """
    path = Path(path)
    frame = read_manifest(path, required=PROMPTS_REQUIRED)
    problems, rows, seen = [], [], {}
    for idx, rec in enumerate(frame.to_dict("records"), start=1):
        pid, prompt = _text(rec.get("prompt_id")), _text(rec.get("prompt"))
        if not pid:
            problems.append(RowProblem(idx, "prompt_id", "empty_prompt_id", "prompt_id is empty"))
        elif pid in seen:
            problems.append(
                RowProblem(
                    idx,
                    "prompt_id",
                    "duplicate_prompt_id",
                    f"{pid!r} already used by row {seen[pid]}",
                )
            )
        seen.setdefault(pid, idx)
        if not prompt:
            problems.append(RowProblem(idx, "prompt", "empty_prompt", "prompt is empty"))
        rows.append({"prompt_id": pid, "prompt": prompt, "category": _text(rec.get("category"))})
    if problems or not rows:
        raise ManifestError(path, problems or [RowProblem(0, "*", "empty", "no prompts")])
    return pd.DataFrame(rows)


def _match_prompt_id(stem: str, ids: list[str]) -> tuple[str, str] | None:
    """``(prompt_id, rest)`` for a file stem ``<prompt_id>_<rest>`` (the longest id that fits)."""
    for pid in ids:  # longest first
        if stem.startswith(pid + "_"):
            return pid, stem[len(pid) + 1 :]
    return None


def read_generated_folder(
    root: str | Path,
    prompts_file: str | Path,
    on_error: str = "fail",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> GeneratedImages:
    """Read and check ``<root>/<generator>/<prompt_id>_<seed>.<ext>`` against a prompts file.

    Each sub-folder of ``root`` is a generator; each image file in it is one row, named by its
    path in any problem; ``<seed>`` (what follows the prompt id) becomes the ``seed``. A file
    whose name starts with no ``prompt_id`` of the prompts file is a problem. Files that are not
    images by their suffix are ignored (and counted in the log).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of generator sub-folders")
    suite = read_prompts(prompts_file)
    ids = sorted(suite["prompt_id"], key=len, reverse=True)
    rows, locations, ignored = [], [], 0
    generators = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not generators:
        raise FileNotFoundError(
            f"{root}: no generator sub-folders (expected <root>/<generator>/<prompt_id>_<seed>.png)"
        )
    for gen_dir in generators:
        for file in sorted(gen_dir.iterdir()):
            if not file.is_file() or file.suffix.lower() not in IMAGE_SUFFIXES:
                ignored += 1
                continue
            found = _match_prompt_id(file.stem, ids)
            pid, seed = found if found else (file.stem, "")
            rows.append(
                {
                    "generator": gen_dir.name,
                    "prompt_id": pid,
                    "seed": seed,
                    "image": str(file.resolve()),
                }
            )
            locations.append(str(file))
    if ignored:
        log.info("%s: ignored %d entries that are not image files", root, ignored)
    frame = pd.DataFrame(rows, columns=["generator", "prompt_id", "seed", "image"])
    return check_images(
        root,
        frame,
        root,
        on_error=on_error,
        max_pixels=max_pixels,
        suite=suite,
        locations=locations,
    )


@dataclass
class ReferenceImages:
    """The reference ("real") set of FID and KID: usable image files, and the ones skipped."""

    folder: Path
    paths: list[str]
    problems: list[RowProblem] = field(default_factory=list)


def read_reference(
    folder: str | Path, on_error: str = "fail", max_pixels: int = DEFAULT_MAX_PIXELS
) -> ReferenceImages:
    """Every image file under ``folder`` (recursively, sorted), each fully decoded.

    A file that does not decode is a problem naming it: with ``on_error="fail"`` all of them
    are raised together (:class:`ManifestError`), with ``"skip"`` they are left out and counted.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: the reference set must be a folder of images")
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    paths, problems = [], []
    for idx, file in enumerate(files, start=1):
        try:
            _digest(str(file), max_pixels)
        except ImageError as exc:
            problems.append(image_problem(idx, "image", exc))
            continue
        paths.append(str(file.resolve()))
    if problems and on_error == "fail":
        raise ManifestError(folder, problems, advice="fix them or pass --on-error skip")
    for p in problems:
        log.warning("%s: skipping %s", folder, p)
    if not paths:
        raise ManifestError(
            folder, problems or [RowProblem(0, "*", "empty", "no image files in the folder")]
        )
    return ReferenceImages(folder=folder, paths=paths, problems=problems)
