"""Public preference datasets written in their owners' exact on-disk formats, for tests.

Every writer follows the owner's own loading code or dataset card (cited on each function), so
that an adapter is tested on what a user downloads, without downloading anything. Images come
from a ``draw(k) -> PIL.Image`` the caller chooses: the adapter tests draw tiny images of distinct
colours (:func:`solid`), the evaluation tests images a trained model can tell apart.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

Draw = Callable[[int], Image.Image]


def colour(k: int) -> tuple[int, int, int]:
    return (37 * k % 256, 91 * k % 256, 53 * k % 256)


def solid(k: int, size: int = 16) -> Image.Image:
    """A ``size`` x ``size`` image of colour ``k``: a test can tell which image a path holds."""
    return Image.new("RGB", (size, size), colour(k))


def encode(img: Image.Image, fmt: str) -> bytes:
    """``img`` as the bytes of a file of format ``fmt`` (lossless WebP, as ImageRewardDB's)."""
    buf = io.BytesIO()
    if fmt == "WEBP":
        img.save(buf, format="WEBP", lossless=True)
    elif fmt == "JPEG":
        img.save(buf, format="JPEG", quality=95)
    else:
        img.save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: Path, img: Image.Image) -> Path:
    """``img`` saved at ``path`` in the format its suffix names."""
    fmt = {".webp": "WEBP", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), "PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(img, fmt))
    return path


def truncated(data: bytes) -> bytes:
    """The first half of an image file: its header opens, its pixel data ends early."""
    return data[: len(data) // 2]


def noise(k: int, size: int = 64) -> Image.Image:
    """Seeded RGB noise: large and varied enough for every branch's features."""
    rng = np.random.default_rng(k)
    return Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8))


# ------------------------------------------------------------------------------ Pick-a-Pic

#: a Pick-a-Pic row as the tests describe it: caption, label_0, label_1, has_label, are_different
PickRow = tuple[str, float, float, bool, bool]


def pickapic_frame(rows: Sequence[PickRow], start: int = 0, draw: Draw = solid) -> pd.DataFrame:
    """Rows with every column of the ``yuvalkirstain/pickapic_v2`` dataset card, in its order
    and dtypes (``jpg_*`` JPEG bytes, ``label_*`` float64, ``created_at`` timestamp[ns], ids
    int64). Row ``n`` holds images ``draw(2n)`` and ``draw(2n + 1)``; PickScore's
    ``eval_preference_predictor.py`` reads ``jpg_0``/``jpg_1``, ``caption`` and ``label_0``
    (0.5 a tie)."""
    records = []
    for n, (caption, l0, l1, has_label, different) in enumerate(rows, start=start):
        uid0, uid1 = f"uid-{n}-a", f"uid-{n}-b"
        best = uid0 if l0 > l1 else uid1 if l1 > l0 else "none"
        records.append(
            {
                "are_different": different,
                "best_image_uid": best,
                "caption": caption,
                "created_at": datetime(2023, 5, 1, 12, 0, n % 60),
                "has_label": has_label,
                "image_0_uid": uid0,
                "image_0_url": f"https://example.invalid/{uid0}.png",
                "image_1_uid": uid1,
                "image_1_url": f"https://example.invalid/{uid1}.png",
                "jpg_0": encode(draw(2 * n), "JPEG"),
                "jpg_1": encode(draw(2 * n + 1), "JPEG"),
                "label_0": float(l0),
                "label_1": float(l1),
                "model_0": "sdxl",
                "model_1": "sd-2.1",
                "ranking_id": 1000 + n,
                "user_id": 7,
                "num_example_per_prompt": 1,
                "__index_level_0__": n,
            }
        )
    return pd.DataFrame(records)


def write_pickapic_shard(
    path: Path, frame: pd.DataFrame, row_group_size: int | None = None
) -> Path:
    """One parquet shard as on the hub (``data/<split>-NNNNN-of-NNNNN.parquet``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size
    )
    return path


# ------------------------------------------------------------------------------ ImageRewardDB

#: prompt_id -> (prompt, classification, ranks of its images)
IRGroups = dict[str, tuple[str, str, Sequence[int]]]


def image_uuid(k: int) -> str:
    """A stable UUID file stem: ImageRewardDB names every image by a UUID."""
    return str(uuid.UUID(int=0x1B4B2D6189C24091A1C0F547AD506500 + k))


def imagereward_rows(groups: IRGroups, split: str = "train", part: int = 1) -> list[dict]:
    """Per-image rows with the columns of the ``THUDM/ImageRewardDB`` card (``image_path``
    ``images/<split>/<split>_<part>/<uuid>.webp``, ``prompt_id``, ``prompt``, ``classification``,
    ``image_amount_in_total``, ``rank`` 1 = best, the three ratings); image ``k`` of the whole
    list is ``draw(k)`` in :func:`write_imagereward`."""
    rows, k = [], 0
    for pid, (prompt, classification, ranks) in groups.items():
        for rank in ranks:
            rows.append(
                {
                    "image_path": f"images/{split}/{split}_{part}/{image_uuid(k)}.webp",
                    "prompt_id": pid,
                    "prompt": prompt,
                    "classification": classification,
                    "image_amount_in_total": len(ranks),
                    "rank": rank,
                    "overall_rating": 8 - rank,
                    "image_text_alignment_rating": 5,
                    "fidelity_rating": 5,
                }
            )
            k += 1
    return rows


def write_imagereward(
    root: Path,
    rows: list[dict],
    draw: Draw = solid,
    zipped: bool = True,
    split: str = "train",
    part: int = 1,
    image_bytes: Callable[[int], bytes] | None = None,
) -> Path:
    """An ImageRewardDB root: ``metadata-<split>.parquet`` beside ``images/<split>/``.

    ``zipped`` (as on the hub): ``images/<split>/<split>_<part>.zip`` holding the folder's
    ``<uuid>.webp`` images and its ``<split>_<part>.json`` (the same rows) at the archive's root,
    where the owners' loader ``ImageRewardDB.py`` finds them after extracting it
    (``os.path.join(data_dir, image_path.split("/")[-1])``). Otherwise the archive extracted
    into ``images/<split>/<split>_<part>/``, as the card's file tree shows. ``image_bytes(k)``
    replaces image ``k``'s file bytes (e.g. a truncated file)."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(root / f"metadata-{split}.parquet")
    folder = f"{split}_{part}"
    files = {
        Path(r["image_path"]).name: (image_bytes(k) if image_bytes else None)
        or encode(draw(k), "WEBP")
        for k, r in enumerate(rows)
    }
    files[f"{folder}.json"] = json.dumps(rows).encode()
    base = root / "images" / split
    base.mkdir(parents=True, exist_ok=True)
    if zipped:
        with zipfile.ZipFile(base / f"{folder}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    else:
        (base / folder).mkdir(exist_ok=True)
        for name, data in files.items():
            (base / folder / name).write_bytes(data)
    return root


def write_imagereward_test_json(
    path: Path, records: list[dict], images: Path, draw: Draw = solid
) -> Path:
    """The ImageReward repository's ``data/test.json`` (``id``, ``prompt``, ``generations``,
    ``ranking`` 1 = best), its images under ``images`` (``test.py``'s ``--img_prefix``,
    ``data/test_images``); image ``k`` over all records is ``draw(k)``."""
    k = 0
    for rec in records:
        for rel in rec["generations"]:
            write_image(images / rel, draw(k))
            k += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=4))
    return path


# ------------------------------------------------------------------------------ HPD v2


def write_hpd_test(root: Path, records: list[dict], draw: Draw = solid, name: str = "test") -> Path:
    """HPD v2's ``test.json`` (``prompt``, ``image_path``, ``rank``, ``raw_annotations``, as
    in HPSv2's README and ``RankingDataset``) with its images in ``test/`` (the archive
    ``test.tar.gz`` unpacked), image file ``NNNNN.jpg`` drawn as ``draw(NNNNN)``."""
    for rec in records:
        for rel in rec["image_path"]:
            write_image(root / name / rel, draw(int(Path(rel).stem)))
    path = root / f"{name}.json"
    path.write_text(json.dumps(records))
    return path
