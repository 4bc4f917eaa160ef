"""Dataset adapters: Pick-a-Pic, ImageRewardDB and HPD v2 files in their public schemas -> manifest.

Every fixture is written here in the exact column names of the public datasets (no downloads);
images are tiny, each with its own colour so that a test can tell which one a path points to.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from t2ieval.adapters import AdapterError, RowError, import_dataset, run_import
from t2ieval.adapters.pairs import Group, Report, group_candidates, verdict
from t2ieval.data.manifest import import_manifest
from t2ieval.adapters.hpd import HPDAdapter
from t2ieval.adapters.imagereward import ImageRewardAdapter
from t2ieval.adapters.tables import RecordsTable
from t2ieval.cli import app


def _colour(k: int) -> tuple[int, int, int]:
    return (37 * k % 256, 91 * k % 256, 53 * k % 256)


def _jpeg(k: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), _colour(k)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _image_file(path: Path, k: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".webp": "WEBP", ".jpg": "JPEG"}.get(path.suffix, "PNG")
    Image.new("RGB", (16, 16), _colour(k)).save(path, format=fmt, lossless=True) \
        if fmt == "WEBP" else Image.new("RGB", (16, 16), _colour(k)).save(path, format=fmt)
    return path


def _read_manifest(path: Path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_csv(path, dtype={"preferred": int}, keep_default_na=False)


def _resolve(manifest: Path, value: str) -> Path:
    return manifest.parent / value  # an absolute value stays absolute


# ------------------------------------------------------------------------- Pick-a-Pic

PICKAPIC_ROWS = [
    # caption, label_0, label_1, has_label, are_different
    ("a red cube on a table", 1.0, 0.0, True, True),      # 0: image 0 wins
    ("a blue ball", 0.0, 1.0, True, True),                # 1: image 1 wins
    ("a tie between two", 0.5, 0.5, True, True),          # 2: tie
    ("never judged", 0.0, 0.0, False, True),              # 3: no label
    ("same picture twice", 1.0, 0.0, True, False),        # 4: identical images
] + [("a cat in a hat", float(k % 2), float(1 - k % 2), True, True) for k in range(8)]  # 5..12


def _pickapic_frame(rows, start: int = 0) -> pd.DataFrame:
    """Rows in the pickapic_v2 schema (every column of its dataset card)."""
    records = []
    for n, (caption, l0, l1, has_label, different) in enumerate(rows, start=start):
        uid0, uid1 = f"uid-{n}-a", f"uid-{n}-b"
        best = uid0 if l0 > l1 else uid1 if l1 > l0 else "none"
        records.append({
            "are_different": different, "best_image_uid": best, "caption": caption,
            "created_at": datetime(2023, 5, 1, 12, 0, n % 60), "has_label": has_label,
            "image_0_uid": uid0, "image_0_url": f"https://example.invalid/{uid0}.png",
            "image_1_uid": uid1, "image_1_url": f"https://example.invalid/{uid1}.png",
            "jpg_0": _jpeg(2 * n), "jpg_1": _jpeg(2 * n + 1), "label_0": l0, "label_1": l1,
            "model_0": "sdxl", "model_1": "sd-2.1", "ranking_id": 1000 + n, "user_id": 7,
            "num_example_per_prompt": 1, "__index_level_0__": n,
        })
    return pd.DataFrame(records)


@pytest.fixture()
def pickapic_dir(tmp_path: Path) -> Path:
    """Two train shards (3-row row groups) and one test shard, laid out as on the hub."""
    data = tmp_path / "pickapic_v2" / "data"
    data.mkdir(parents=True)
    first, second = PICKAPIC_ROWS[:7], PICKAPIC_ROWS[7:]
    for k, (rows, start) in enumerate([(first, 0), (second, 7)]):
        table = pa.Table.from_pandas(_pickapic_frame(rows, start), preserve_index=False)
        pq.write_table(table, data / f"train-0000{k}-of-00002.parquet", row_group_size=3)
    test = pa.Table.from_pandas(_pickapic_frame(PICKAPIC_ROWS[:2], 100), preserve_index=False)
    pq.write_table(test, data / "test-00000-of-00001.parquet")
    return tmp_path / "pickapic_v2"


def test_pickapic_pairs_ties_and_unlabelled(pickapic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "pickapic.csv"
    summary = import_dataset("pickapic", pickapic_dir, out, split="train", seed=3)
    assert summary["rows"] == 13
    assert summary["ties_dropped"] == 1
    assert summary["unlabelled_dropped"] == 1
    assert summary["identical_dropped"] == 1
    assert summary["pairs_written"] == 10 and summary["images_written"] == 20
    frame = _read_manifest(out)
    assert len(frame) == 10
    assert list(frame.columns) == ["pair_id", "prompt", "image_1", "image_2", "preferred", "category"]
    assert set(frame["preferred"]) == {1, 2}  # the slot of the winner is randomised
    assert (frame["category"] == "pickapic").all()
    assert frame["pair_id"].is_unique and frame["pair_id"].iloc[0] == "pickapic-1000-0-1"
    assert "a tie between two" not in set(frame["prompt"])
    for _, row in frame.iterrows():
        assert not Path(row["image_1"]).is_absolute()
        assert row["image_1"].startswith("pickapic_images/")
        n = int(row["pair_id"].split("-")[1]) - 1000
        caption, l0, l1, _, _ = PICKAPIC_ROWS[n]
        winner = _resolve(out, row[f"image_{row['preferred']}"])
        loser = _resolve(out, row[f"image_{3 - row['preferred']}"])
        assert winner.is_file() and loser.is_file()
        assert row["prompt"] == caption
        # the preferred file holds the bytes of the image with the higher label
        assert winner.read_bytes() == _jpeg(2 * n if l0 > l1 else 2 * n + 1)
        assert winner.stem == (f"uid-{n}-a" if l0 > l1 else f"uid-{n}-b")


def test_kept_ties_are_written_as_tie_rows_the_manifest_importer_counts(
        pickapic_dir: Path, tmp_path: Path) -> None:
    """``keep_ties``: the 0.5/0.5 row becomes a pair with ``preferred`` ``tie`` (PickScore's own
    evaluation scores such rows); ``prepare`` checks it, then leaves it out and counts it."""
    out = tmp_path / "ties.csv"
    summary = import_dataset("pickapic", pickapic_dir, out, split="train", seed=3, keep_ties=True)
    assert summary["ties_written"] == 1 and summary["ties_dropped"] == 0
    assert summary["pairs_written"] == 11
    assert summary["preferred_1"] + summary["preferred_2"] == 10
    frame = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("prompt")
    tie = frame.loc["a tie between two"]
    assert tie["preferred"] == "tie" and tie["pair_id"] == "pickapic-1002-0-1"
    assert {Path(tie["image_1"]).stem, Path(tie["image_2"]).stem} == {"uid-2-a", "uid-2-b"}
    result = import_manifest(out, tmp_path / "prepared", 10_000_000)
    assert result.ties == 1 and len(result.pairs) == 10


def test_pickapic_split_is_required_for_a_mixed_folder(pickapic_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match=r"several splits \['test', 'train'\].*--split"):
        import_dataset("pickapic", pickapic_dir, tmp_path / "m.csv")
    summary = import_dataset("pickapic", pickapic_dir, tmp_path / "t.csv", split="test")
    assert summary["rows"] == 2 and summary["pairs_written"] == 2
    with pytest.raises(AdapterError, match="no parquet shards of split 'validation'"):
        import_dataset("pickapic", pickapic_dir, tmp_path / "v.csv", split="validation")


def test_cap_per_prompt_is_seeded_and_deterministic(pickapic_dir: Path, tmp_path: Path) -> None:
    a = import_dataset("pickapic", pickapic_dir, tmp_path / "a.jsonl", split="train",
                       max_pairs_per_prompt=3, seed=11)
    b = import_dataset("pickapic", pickapic_dir, tmp_path / "b.jsonl", split="train",
                       max_pairs_per_prompt=3, seed=11)
    fa, fb = _read_manifest(tmp_path / "a.jsonl"), _read_manifest(tmp_path / "b.jsonl")
    assert a["pairs_capped"] == 5 and a["pairs_written"] == 5  # 8 cat pairs -> 3, plus 2 others
    assert fa["prompt"].value_counts()["a cat in a hat"] == 3
    assert fa.drop(columns=["image_1", "image_2"]).equals(fb.drop(columns=["image_1", "image_2"]))
    assert b["pairs_written"] == a["pairs_written"]
    # only the kept rows' images were written
    assert len(list((tmp_path / "a_images").iterdir())) == 10


def test_pickapic_bad_image_bytes_fail_or_skip(tmp_path: Path) -> None:
    frame = _pickapic_frame(PICKAPIC_ROWS[:2])
    frame.loc[1, "jpg_1"] = b"\xff\xd8\xff not really a jpeg"
    path = tmp_path / "shard.parquet"
    frame.to_parquet(path)
    with pytest.raises(RowError, match=r"shard\.parquet row 1, field 'jpg_1'"):
        import_dataset("pickapic", path, tmp_path / "m.csv")
    summary = import_dataset("pickapic", path, tmp_path / "m.csv", on_error="skip")
    assert summary["bad_images"] == 1 and summary["pairs_written"] == 1
    assert summary["pairs_missing_image"] == 1


def test_pickapic_schema_errors(tmp_path: Path) -> None:
    frame = _pickapic_frame(PICKAPIC_ROWS[:2]).drop(columns=["jpg_0", "jpg_1"])
    frame.to_parquet(tmp_path / "no_images.parquet")
    with pytest.raises(AdapterError, match="no_images variants hold only URLs"):
        import_dataset("pickapic", tmp_path / "no_images.parquet", tmp_path / "m.csv")
    bad = _pickapic_frame(PICKAPIC_ROWS[:3])
    bad.loc[0, "caption"] = "  "
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(RowError, match=r"bad\.parquet row 0, field 'caption'"):
        import_dataset("pickapic", tmp_path / "bad.parquet", tmp_path / "m.csv")
    summary = import_dataset("pickapic", tmp_path / "bad.parquet", tmp_path / "m.csv",
                             on_error="skip")
    assert summary["rows_skipped"] == 1 and summary["pairs_written"] == 1
    dup = _pickapic_frame(PICKAPIC_ROWS[:2])
    dup["ranking_id"] = 42  # a source repeating an id: both pairs kept, with distinct ids
    dup.to_parquet(tmp_path / "dup.parquet")
    summary = import_dataset("pickapic", tmp_path / "dup.parquet", tmp_path / "d.csv")
    assert summary["duplicate_pair_ids"] == 1
    assert list(_read_manifest(tmp_path / "d.csv")["pair_id"]) == ["pickapic-42-0-1",
                                                                  "pickapic-42-0-1-dup2"]
    with pytest.raises(AdapterError, match=r"must end in \.csv or \.jsonl"):
        import_dataset("pickapic", tmp_path / "bad.parquet", tmp_path / "m.txt")
    with pytest.raises(AdapterError, match="unknown source 'laion'"):
        import_dataset("laion", tmp_path / "bad.parquet", tmp_path / "m.csv")


# ------------------------------------------------------------------------- ImageRewardDB

# prompt_id -> (prompt, classification, ranks): "1" ties two images, "2" has none
IR_GROUPS = {
    "001324-0093": ("a magical forest, fantasy art", "Outdoor Scenes", [1, 2, 2, 3]),
    "000864-0061": ("painting of a holy woman", "People", [2, 1, 3]),
}


def _imagereward_rows(root: Path) -> list[dict]:
    rows, k = [], 0
    for pid, (prompt, classification, ranks) in IR_GROUPS.items():
        for rank in ranks:
            rel = f"images/train/train_1/{pid}-{k:02d}.webp"
            _image_file(root / rel, k)
            rows.append({"image_path": rel, "prompt_id": pid, "prompt": prompt,
                         "classification": classification, "image_amount_in_total": len(ranks),
                         "rank": rank, "overall_rating": 8 - rank,
                         "image_text_alignment_rating": 5, "fidelity_rating": 5})
            k += 1
    return rows


@pytest.fixture()
def imagereward_root(tmp_path: Path) -> Path:
    """metadata-train.parquet at the root and the per-folder JSON beside its images."""
    root = tmp_path / "ImageRewardDB"
    rows = _imagereward_rows(root)
    pd.DataFrame(rows).to_parquet(root / "metadata-train.parquet")
    (root / "images" / "train" / "train_1" / "train_1.json").write_text(json.dumps(rows))
    return root


def _rank_of(root: Path) -> dict[str, int]:
    ranks = {}
    for row in _imagereward_rows(root):
        ranks[(root / row["image_path"]).resolve().as_posix()] = row["rank"]
    return ranks


def test_imagereward_groups_become_non_tied_pairs(imagereward_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ir.csv"
    summary = import_dataset("imagereward", imagereward_root, out, split="train")
    assert summary["groups"] == 2 and summary["images"] == 7
    assert summary["candidate_pairs"] == 6 + 3
    assert summary["ties_dropped"] == 1
    assert summary["pairs_written"] == 8 and summary["images_written"] == 0
    frame = _read_manifest(out)
    ranks = _rank_of(imagereward_root)
    for _, row in frame.iterrows():
        winner = _resolve(out, row[f"image_{row['preferred']}"])
        loser = _resolve(out, row[f"image_{3 - row['preferred']}"])
        assert winner.is_file() and loser.is_file()
        assert ranks[winner.resolve().as_posix()] < ranks[loser.resolve().as_posix()]
    assert set(frame["category"]) == {"Outdoor Scenes", "People"}
    assert set(frame["preferred"]) == {1, 2}
    assert "imagereward-001324-0093-0-1" in set(frame["pair_id"])


def test_imagereward_json_layout_gives_the_same_pairs(imagereward_root: Path, tmp_path: Path) -> None:
    import_dataset("imagereward", imagereward_root / "metadata-train.parquet", tmp_path / "p.csv")
    json_file = imagereward_root / "images" / "train" / "train_1" / "train_1.json"
    import_dataset("imagereward", json_file, tmp_path / "j.csv")
    a, b = _read_manifest(tmp_path / "p.csv"), _read_manifest(tmp_path / "j.csv")
    pd.testing.assert_frame_equal(a, b)


def test_imagereward_grouped_records_with_images_root(tmp_path: Path) -> None:
    """The ImageReward repository's test.json: id, prompt, generations, ranking."""
    images = tmp_path / "imgs"
    records = [{"id": "005658-0040", "prompt": "deathly portal to the abyss",
                "generations": [f"part-005658/images/0040/{k}.webp" for k in range(4)],
                "ranking": [1, 2, 5, 3]},
               {"id": "005937-0170", "prompt": "a cute cat",
                "generations": [f"part-005937/images/0170/{k}.webp" for k in range(4)],
                "ranking": [2, 3, 4, 2]}]
    for rec in records:
        for k, rel in enumerate(rec["generations"]):
            _image_file(images / rel, k)
    meta = tmp_path / "meta" / "test.json"
    meta.parent.mkdir()
    meta.write_text(json.dumps(records))
    with pytest.raises(RowError, match="image file not found: 'part-005658"):
        import_dataset("imagereward", meta, tmp_path / "g.csv")
    summary = import_dataset("imagereward", meta, tmp_path / "g.csv", images_root=images)
    assert summary["pairs_written"] == 6 + 5 and summary["ties_dropped"] == 1
    frame = _read_manifest(tmp_path / "g.csv")
    row = frame.set_index("pair_id").loc["imagereward-005658-0040-1-2"]
    assert Path(row[f"image_{row['preferred']}"]).name == "1.webp"  # rank 2 beats rank 5


def test_imagereward_missing_image_fail_or_skip(imagereward_root: Path, tmp_path: Path) -> None:
    gone = imagereward_root / "images" / "train" / "train_1" / "000864-0061-05.webp"
    gone.unlink()
    with pytest.raises(RowError, match=r"metadata-train\.parquet row 5, field 'image_path'.*"
                                       r"000864-0061-05\.webp"):
        import_dataset("imagereward", imagereward_root / "metadata-train.parquet",
                       tmp_path / "m.csv")
    summary = import_dataset("imagereward", imagereward_root / "metadata-train.parquet",
                             tmp_path / "m.csv", on_error="skip")
    assert summary["missing_images"] == 1 and summary["pairs_missing_image"] == 2
    assert summary["pairs_written"] == 6


# ------------------------------------------------------------------------- HPD v2

def _hpd_test_file(root: Path) -> Path:
    """test.json with the averaged rank and each annotator's ranking; images in test/."""
    records = [
        {"prompt": "a watercolor fox", "image_path": ["00000.jpg", "00001.jpg", "00002.jpg"],
         "rank": [3, 2, 1],  # contradicts the annotators: the raw annotations decide
         "raw_annotations": [{"rank": [1, 2, 3], "user_hash": "u1"},
                             {"rank": [2, 1, 3], "user_hash": "u2"},
                             {"rank": [1, 3, 2], "user_hash": "u3"}]},
        {"prompt": "a castle at dusk", "image_path": ["00003.jpg", "00004.jpg"], "rank": [1, 2],
         "raw_annotations": [{"rank": [1, 2], "user_hash": "u1"},
                             {"rank": [2, 1], "user_hash": "u2"}]},  # no majority: a tie
        {"prompt": "a lighthouse", "image_path": ["00005.jpg", "00006.jpg"], "rank": [2, 1],
         "raw_annotations": []},  # no raw annotations: the rank decides
    ]
    for k in range(7):
        _image_file(root / "test" / f"{k:05d}.jpg", k)
    path = root / "test.json"
    path.write_text(json.dumps(records))
    return path


def test_hpd_rank_decides_every_pair_as_the_owners_evaluation_does(tmp_path: Path) -> None:
    """Default: the averaged ``rank`` (HPSv2's ``evaluate_rank`` compares a model with it), so
    every pair of every record is kept unless its ranks are equal."""
    src = _hpd_test_file(tmp_path / "HPDv2")
    out = tmp_path / "hpd.jsonl"
    summary = import_dataset("hpd", src, out)
    assert summary["hpd_label"] == "rank"
    assert summary["candidate_pairs"] == 5 and summary["ties_dropped"] == 0
    assert summary["pairs_written"] == 5
    frame = _read_manifest(out).set_index("pair_id")
    expected_winner = {"hpd-test-000000-0-1": "00001.jpg", "hpd-test-000000-0-2": "00002.jpg",
                       "hpd-test-000000-1-2": "00002.jpg", "hpd-test-000001-0-1": "00003.jpg",
                       "hpd-test-000002-0-1": "00006.jpg"}
    assert set(frame.index) == set(expected_winner)
    for pair_id, name in expected_winner.items():
        row = frame.loc[pair_id]
        assert Path(row[f"image_{row['preferred']}"]).name == name
    # equal ranks are a tie: dropped, or written as a tie row
    records = [{"prompt": "a red kite", "image_path": ["00000.jpg", "00001.jpg", "00002.jpg"],
                "rank": [1, 2, 2], "raw_annotations": []}]
    (tmp_path / "HPDv2" / "tied.json").write_text(json.dumps(records))
    tied = import_dataset("hpd", tmp_path / "HPDv2" / "tied.json", tmp_path / "t.csv",
                          images_root=tmp_path / "HPDv2" / "test")
    assert tied["ties_dropped"] == 1 and tied["pairs_written"] == 2
    kept = import_dataset("hpd", tmp_path / "HPDv2" / "tied.json", tmp_path / "k.csv",
                          images_root=tmp_path / "HPDv2" / "test", keep_ties=True)
    assert kept["ties_written"] == 1 and kept["pairs_written"] == 3
    rows = pd.read_csv(tmp_path / "k.csv", dtype=str).set_index("pair_id")
    assert rows.loc["hpd-tied-000000-1-2", "preferred"] == "tie"


def test_hpd_vote_majority_of_annotators_decides(tmp_path: Path) -> None:
    src = _hpd_test_file(tmp_path / "HPDv2")
    out = tmp_path / "hpd.jsonl"
    summary = import_dataset("hpd", src, out, hpd_label="vote")
    assert summary["hpd_label"] == "vote"
    assert summary["groups"] == 3 and summary["candidate_pairs"] == 5
    assert summary["ties_dropped"] == 1 and summary["pairs_written"] == 4
    frame = _read_manifest(out).set_index("pair_id")
    expected_winner = {"hpd-test-000000-0-1": "00000.jpg", "hpd-test-000000-0-2": "00000.jpg",
                       "hpd-test-000000-1-2": "00001.jpg", "hpd-test-000002-0-1": "00006.jpg"}
    assert set(frame.index) == set(expected_winner)
    for pair_id, name in expected_winner.items():
        row = frame.loc[pair_id]
        assert Path(row[f"image_{row['preferred']}"]).name == name
        assert _resolve(out, row["image_1"]).is_file() and _resolve(out, row["image_2"]).is_file()
        assert row["category"] == "hpd"


def test_hpd_train_human_preference(tmp_path: Path) -> None:
    root = tmp_path / "HPDv2"
    records = [{"human_preference": [1, 0], "prompt": "a red bicycle",
                "file_path": ["a.jpg", "b.jpg"]},
               {"human_preference": [0, 1], "prompt": "a green kite",
                "file_path": ["c.jpg", "d.jpg"]}]
    for k, name in enumerate("abcd"):
        _image_file(root / "train" / f"{name}.jpg", k)
    root.mkdir(exist_ok=True)
    (root / "train.json").write_text(json.dumps(records))
    _hpd_test_file(root)
    with pytest.raises(AdapterError, match=r"several splits \[.test., .train.\].*--split"):
        import_dataset("hpd", root, tmp_path / "x.csv")
    summary = import_dataset("hpd", root, tmp_path / "train.csv", split="train")
    assert summary["pairs_written"] == 2 and summary["ties_dropped"] == 0
    frame = _read_manifest(tmp_path / "train.csv").set_index("prompt")
    for prompt, name in [("a red bicycle", "a.jpg"), ("a green kite", "d.jpg")]:
        row = frame.loc[prompt]
        assert Path(row[f"image_{row['preferred']}"]).name == name


def test_hpd_malformed_rows(tmp_path: Path) -> None:
    root = tmp_path / "HPDv2"
    _hpd_test_file(root)
    records = json.loads((root / "test.json").read_text())
    records[0]["raw_annotations"][1]["rank"] = [1, 2]  # 2 ranks for 3 images
    (root / "bad.json").write_text(json.dumps(records))
    with pytest.raises(RowError, match=r"bad\.json entry 0, field 'rank': 2 ranks for 3 images"):
        import_dataset("hpd", root / "bad.json", tmp_path / "m.csv", images_root=root / "test",
                       hpd_label="vote")
    summary = import_dataset("hpd", root / "bad.json", tmp_path / "m.csv",
                             images_root=root / "test", on_error="skip", hpd_label="vote")
    assert summary["rows_skipped"] == 1 and summary["pairs_written"] == 1
    # the averaged rank does not read the raw annotations; a bad rank fails the same way
    assert import_dataset("hpd", root / "bad.json", tmp_path / "r.csv",
                          images_root=root / "test")["pairs_written"] == 5
    records[0]["rank"] = ["first", 2, 3]
    (root / "bad_rank.json").write_text(json.dumps(records))
    with pytest.raises(RowError, match=r"bad_rank\.json entry 0, field 'rank': expected a number"):
        import_dataset("hpd", root / "bad_rank.json", tmp_path / "m.csv", images_root=root / "test")
    with pytest.raises(AdapterError, match="label must be one of"):
        import_dataset("hpd", root / "test.json", tmp_path / "m.csv", hpd_label="median")
    with pytest.raises(AdapterError, match="does not apply to pickapic"):
        import_dataset("pickapic", root / "test.json", tmp_path / "m.csv", hpd_label="vote")


def _truncated(path: Path, fmt: str) -> Path:
    """A real image file cut in half: its header opens, its pixel data ends early."""
    import numpy as np

    noise = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format=fmt)
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2])
    with Image.open(path) as img:  # the header alone looks fine
        assert img.size == (64, 64)
    return path


def test_truncated_image_files_fail_at_import_not_later(tmp_path: Path) -> None:
    """Files a source names are referenced where they are, but decoded at import time, as the
    docs promise: a truncated JPEG fails the import naming the row and field (or is skipped and
    counted), instead of surfacing in ``prepare``."""
    src = _hpd_test_file(tmp_path / "HPDv2")
    bad = _truncated(tmp_path / "HPDv2" / "test" / "00001.jpg", "JPEG")
    with pytest.raises(RowError, match=r"test\.json entry 0, field 'image_path': .*00001\.jpg: "
                                       r"unreadable or truncated image"):
        import_dataset("hpd", src, tmp_path / "fail.csv")
    assert not (tmp_path / "fail.csv").exists()
    summary = import_dataset("hpd", src, tmp_path / "skip.csv", on_error="skip")
    assert summary["bad_images"] == 1 and summary["pairs_missing_image"] == 2
    assert summary["pairs_written"] == 3
    frame = _read_manifest(tmp_path / "skip.csv")
    assert bad.name not in {Path(p).name for p in (*frame["image_1"], *frame["image_2"])}
    result = import_manifest(tmp_path / "skip.csv", tmp_path / "prepared", 10_000_000)
    assert len(result.pairs) == 3 and not result.problems


def test_truncated_png_named_by_a_hf_row_fails_at_import(tmp_path: Path) -> None:
    """The same for an image a ``datasets`` row names by path (``{"bytes": None, "path"}``)."""
    good = _image_file(tmp_path / "good.png", 1)
    bad = _truncated(tmp_path / "bad.png", "PNG")
    rows = [{"image": {"bytes": None, "path": str(path)}, "prompt_id": "p1", "prompt": "a dog",
             "classification": "Animals", "rank": rank}
            for path, rank in ((good, 1), (bad, 2))]
    adapter = ImageRewardAdapter(RecordsTable([("hf-imagereward", rows)]))
    with pytest.raises(RowError, match=r"hf-imagereward entry 1, field 'image': .*bad\.png: "
                                       r"unreadable or truncated image"):
        run_import(adapter, tmp_path / "m.csv")


# ------------------------------------------------------------------------- shared logic, CLI

def test_verdict_is_a_majority_vote() -> None:
    nan = float("nan")
    assert verdict([[1, 2]], 0, 1) == 1
    assert verdict([[2, 1]], 0, 1) == -1
    assert verdict([[1, 1]], 0, 1) == 0
    assert verdict([[1, 2], [2, 1], [1, 2]], 0, 1) == 1
    assert verdict([[1, 2], [2, 1]], 0, 1) == 0
    assert verdict([[1, 2], [nan, 1], [1, 1]], 0, 1) == 1  # abstentions do not vote
    report = Report()
    group = Group("g", "p", "c", [None, None, None], [[1, 2, 2]], "here")
    assert list(group_candidates(group, "s", report)) == []
    assert report.counts["ties_dropped"] == 1 and report.counts["pairs_missing_image"] == 2


def test_manifest_is_accepted_by_the_manifest_importer(pickapic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m" / "pickapic.csv"
    summary = import_dataset("pickapic", pickapic_dir, out, split="train")
    result = import_manifest(out, tmp_path / "prepared", max_pixels=10_000_000,
                                          on_error="fail")
    assert len(result.pairs) == summary["pairs_written"] and not result.problems
    ours = _read_manifest(out)
    assert list(result.pairs["pair_id"]) == list(ours["pair_id"])
    assert list(result.pairs["preferred"]) == list(ours["preferred"])


def test_cli_import_end_to_end(tmp_path: Path) -> None:
    src = _hpd_test_file(tmp_path / "HPDv2")
    out = tmp_path / "cli" / "hpd.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["import", "hpd", "--from", str(src), "--out", str(out),
                                 "--seed", "5", "--max-pairs-per-prompt", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["source"] == "hpd" and summary["pairs_written"] == 4
    assert summary["pairs_capped"] == 1 and summary["ties_dropped"] == 0
    assert len(_read_manifest(out)) == 4
    voted = runner.invoke(app, ["import", "hpd", "--from", str(src), "--out", str(out),
                                "--hpd-label", "vote", "--keep-ties"])
    assert voted.exit_code == 0, voted.output
    summary = json.loads(voted.stdout[voted.stdout.index("{"):])
    assert summary["hpd_label"] == "vote" and summary["ties_written"] == 1
    bad = runner.invoke(app, ["import", "hpd", "--from", str(tmp_path / "nope.json"),
                              "--out", str(out)])
    assert bad.exit_code == 2
    assert "nope.json: no such file or folder" in bad.output


def test_images_inside_rows_as_a_hf_dataset_yields_them(tmp_path: Path) -> None:
    """HF copies carry images in the rows: ``{"bytes", "path"}`` (ImageRewardDB) or a list (HPD)."""
    ir_rows = [{"image": {"bytes": _jpeg(k), "path": None}, "prompt_id": "p1", "prompt": "a dog",
                "classification": "Animals", "image_amount_in_total": 3, "rank": rank,
                "overall_rating": 5} for k, rank in enumerate([2, 1, 3])]
    adapter = ImageRewardAdapter(RecordsTable([("hf-imagereward", ir_rows)]))
    out = tmp_path / "ir.csv"
    summary = run_import(adapter, out)
    assert summary["pairs_written"] == 3 and summary["images_written"] == 3
    for _, row in _read_manifest(out).iterrows():
        i, j = (int(x) for x in row["pair_id"].split("-")[-2:])
        winner = _resolve(out, row[f"image_{row['preferred']}"])
        assert row["image_1"].startswith("ir_images/")
        assert winner.read_bytes() == _jpeg(1 if 1 in (i, j) else 0)  # rank 1 beats all
    hpd_rows = [{"prompt": "a boat", "image": [_jpeg(5), _jpeg(6)], "rank": [2, 1],
                 "raw_annotations": [{"rank": [2, 1], "user_hash": "u"}]}]
    adapter = HPDAdapter(RecordsTable([("hf-hpd", hpd_rows)]), tag="test")
    out = tmp_path / "hpd.jsonl"
    summary = run_import(adapter, out)
    row = _read_manifest(out).iloc[0]
    assert summary["pairs_written"] == 1 and row["pair_id"] == "hpd-test-000000-0-1"
    assert _resolve(out, row[f"image_{row['preferred']}"]).read_bytes() == _jpeg(6)


def test_hf_dataset_needs_the_datasets_package(tmp_path: Path) -> None:
    try:
        import datasets  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - this project does not install datasets
        pytest.skip("datasets is installed; this test checks the message when it is not")
    with pytest.raises(AdapterError, match="pip install datasets"):
        import_dataset("pickapic", "hf:yuvalkirstain/pickapic_v2", tmp_path / "m.csv",
                       split="validation_unique")
