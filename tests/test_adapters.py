"""Dataset adapters: Pick-a-Pic, ImageRewardDB and HPD v2 files in their public schemas -> manifest.

Every fixture is written in the owner's exact on-disk format (``owner_formats``: column names,
file names and archives as the owners' loading code reads them; no downloads); images are tiny,
each with its own colour so that a test can tell which one a path points to.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from owner_formats import (
    encode,
    image_uuid,
    imagereward_rows,
    noise,
    pickapic_frame,
    solid,
    truncated,
    write_hpd_test,
    write_image,
    write_imagereward,
    write_imagereward_test_json,
    write_pickapic_shard,
)
from PIL import Image
from typer.testing import CliRunner

from t2ieval.adapters import AdapterError, RowError, import_dataset, run_import
from t2ieval.adapters.hpd import HPDAdapter
from t2ieval.adapters.imagereward import ImageRewardAdapter
from t2ieval.adapters.pairs import Group, Report, group_candidates, verdict
from t2ieval.adapters.tables import RecordsTable
from t2ieval.cli import app
from t2ieval.data.manifest import import_manifest


def _jpeg(k: int) -> bytes:
    return encode(solid(k), "JPEG")


def _image_file(path: Path, k: int) -> Path:
    return write_image(path, solid(k))


def _read_manifest(path: Path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_csv(path, dtype={"preferred": int}, keep_default_na=False)


def _resolve(manifest: Path, value: str) -> Path:
    return manifest.parent / value  # an absolute value stays absolute


# ------------------------------------------------------------------------- Pick-a-Pic

PICKAPIC_ROWS = [
    # caption, label_0, label_1, has_label, are_different
    ("a red cube on a table", 1.0, 0.0, True, True),  # 0: image 0 wins
    ("a blue ball", 0.0, 1.0, True, True),  # 1: image 1 wins
    ("a tie between two", 0.5, 0.5, True, True),  # 2: tie
    ("never judged", 0.0, 0.0, False, True),  # 3: no label
    ("same picture twice", 1.0, 0.0, True, False),  # 4: identical images
] + [("a cat in a hat", float(k % 2), float(1 - k % 2), True, True) for k in range(8)]  # 5..12


def _pickapic_frame(rows, start: int = 0) -> pd.DataFrame:
    return pickapic_frame(rows, start)


@pytest.fixture()
def pickapic_dir(tmp_path: Path) -> Path:
    """Two train shards (3-row row groups) and one test shard, laid out as on the hub."""
    data = tmp_path / "pickapic_v2" / "data"
    first, second = PICKAPIC_ROWS[:7], PICKAPIC_ROWS[7:]
    for k, (rows, start) in enumerate([(first, 0), (second, 7)]):
        write_pickapic_shard(
            data / f"train-0000{k}-of-00002.parquet", _pickapic_frame(rows, start), row_group_size=3
        )
    write_pickapic_shard(
        data / "test-00000-of-00001.parquet", _pickapic_frame(PICKAPIC_ROWS[:2], 100)
    )
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
    assert list(frame.columns) == [
        "pair_id",
        "prompt",
        "image_1",
        "image_2",
        "preferred",
        "category",
    ]
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
    pickapic_dir: Path, tmp_path: Path
) -> None:
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
    a = import_dataset(
        "pickapic",
        pickapic_dir,
        tmp_path / "a.jsonl",
        split="train",
        max_pairs_per_prompt=3,
        seed=11,
    )
    b = import_dataset(
        "pickapic",
        pickapic_dir,
        tmp_path / "b.jsonl",
        split="train",
        max_pairs_per_prompt=3,
        seed=11,
    )
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
    summary = import_dataset(
        "pickapic", tmp_path / "bad.parquet", tmp_path / "m.csv", on_error="skip"
    )
    assert summary["rows_skipped"] == 1 and summary["pairs_written"] == 1
    dup = _pickapic_frame(PICKAPIC_ROWS[:2])
    dup["ranking_id"] = 42  # a source repeating an id: both pairs kept, with distinct ids
    dup.to_parquet(tmp_path / "dup.parquet")
    summary = import_dataset("pickapic", tmp_path / "dup.parquet", tmp_path / "d.csv")
    assert summary["duplicate_pair_ids"] == 1
    assert list(_read_manifest(tmp_path / "d.csv")["pair_id"]) == [
        "pickapic-42-0-1",
        "pickapic-42-0-1-dup2",
    ]
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


def _ir_rows() -> list[dict]:
    return imagereward_rows(IR_GROUPS)


@pytest.fixture()
def imagereward_root(tmp_path: Path) -> Path:
    """As on the hub: metadata-train.parquet at the root, images/train/train_1.zip holding the
    folder's images and its train_1.json."""
    return write_imagereward(tmp_path / "ImageRewardDB", _ir_rows())


@pytest.fixture()
def imagereward_extracted(tmp_path: Path) -> Path:
    """The same with train_1.zip extracted into images/train/train_1/, as the card's tree shows."""
    return write_imagereward(tmp_path / "extracted" / "ImageRewardDB", _ir_rows(), zipped=False)


def _rank_of_uuid() -> dict[str, int]:
    return {Path(row["image_path"]).stem: row["rank"] for row in _ir_rows()}


def _uuid_of(path: Path) -> str:
    """The image's UUID, from an extracted file or from a file written out of the archive
    (``train_1_<uuid>.webp``)."""
    return path.stem.split("_")[-1]


def _pairs(path: Path) -> pd.DataFrame:
    """A manifest without its image paths, each image named by its UUID."""
    frame = _read_manifest(path)
    for col in ("image_1", "image_2"):
        frame[col] = [_uuid_of(_resolve(path, v)) for v in frame[col]]
    return frame


def test_imagereward_reads_images_inside_the_hub_zips(
    imagereward_root: Path, tmp_path: Path
) -> None:
    """The hub ships images/<split>/<split>_<k>.zip: images are read from the archive (matched by
    file name, as the owners' loader does in the extracted folder) and written, fully decoded,
    beside the manifest; nothing is extracted beside the dataset."""
    out = tmp_path / "ir.csv"
    summary = import_dataset("imagereward", imagereward_root, out, split="train")
    assert summary["groups"] == 2 and summary["images"] == 7
    assert summary["candidate_pairs"] == 6 + 3
    assert summary["ties_dropped"] == 1
    assert summary["pairs_written"] == 8 and summary["images_written"] == 7
    assert sorted(p.name for p in (imagereward_root / "images" / "train").iterdir()) == [
        "train_1.zip"
    ]
    frame = _read_manifest(out)
    ranks = _rank_of_uuid()
    with zipfile.ZipFile(imagereward_root / "images" / "train" / "train_1.zip") as zf:
        for _, row in frame.iterrows():
            winner = _resolve(out, row[f"image_{row['preferred']}"])
            loser = _resolve(out, row[f"image_{3 - row['preferred']}"])
            assert row["image_1"].startswith("ir_images/train_1_")
            assert ranks[_uuid_of(winner)] < ranks[_uuid_of(loser)]
            assert winner.read_bytes() == zf.read(f"{_uuid_of(winner)}.webp")  # bytes kept
    assert set(frame["category"]) == {"Outdoor Scenes", "People"}
    assert set(frame["preferred"]) == {1, 2}
    assert "imagereward-001324-0093-0-1" in set(frame["pair_id"])


def test_imagereward_extracted_zip_json_and_parquet_give_the_same_pairs(
    imagereward_root: Path, imagereward_extracted: Path, tmp_path: Path
) -> None:
    """Every layout of the same data gives the same pairs: the metadata parquet with zipped or
    extracted images, the per-folder JSON inside the zip, and the extracted JSON."""
    import_dataset("imagereward", imagereward_root, tmp_path / "zip.csv", split="train")
    extracted = import_dataset("imagereward", imagereward_extracted, tmp_path / "ext.csv")
    assert extracted["images_written"] == 0  # extracted files are referenced where they are
    folder = imagereward_extracted / "images" / "train" / "train_1"
    first = _read_manifest(tmp_path / "ext.csv")["image_1"][0]
    assert _resolve(tmp_path / "ext.csv", first).parent.resolve() == folder.resolve()
    (imagereward_root / "metadata-train.parquet").unlink()  # only the zip: its JSON is read
    from_zip_json = import_dataset("imagereward", imagereward_root, tmp_path / "zj.csv")
    assert from_zip_json["input"].endswith("train_1.zip:train_1.json")
    import_dataset("imagereward", folder / "train_1.json", tmp_path / "json.csv")
    reference = _pairs(tmp_path / "zip.csv")
    for other in ("ext.csv", "zj.csv", "json.csv"):
        pd.testing.assert_frame_equal(reference, _pairs(tmp_path / other), obj=other)


def test_imagereward_file_name_fallback_as_the_owners_loader(tmp_path: Path) -> None:
    """An archive extracted where its JSON is, whatever the folder is called: the owners' loader
    joins the extraction folder and the file name, so does the importer."""
    root = write_imagereward(tmp_path / "ImageRewardDB", _ir_rows(), zipped=False)
    moved = root / "images" / "train" / "unpacked"
    (root / "images" / "train" / "train_1").rename(moved)
    summary = import_dataset("imagereward", moved / "train_1.json", tmp_path / "m.csv")
    assert summary["pairs_written"] == 8 and summary["missing_images"] == 0
    assert {
        _resolve(tmp_path / "m.csv", p).parent.resolve()
        for p in _read_manifest(tmp_path / "m.csv")["image_1"]
    } == {moved.resolve()}


def test_imagereward_grouped_records_with_images_root(tmp_path: Path) -> None:
    """The ImageReward repository's test.json: id, prompt, generations, ranking."""
    images = tmp_path / "imgs"
    records = [
        {
            "id": "005658-0040",
            "prompt": "deathly portal to the abyss",
            "generations": [f"part-005658/images/0040/{k}.webp" for k in range(4)],
            "ranking": [1, 2, 5, 3],
        },
        {
            "id": "005937-0170",
            "prompt": "a cute cat",
            "generations": [f"part-005937/images/0170/{k}.webp" for k in range(4)],
            "ranking": [2, 3, 4, 2],
        },
    ]
    meta = write_imagereward_test_json(tmp_path / "meta" / "test.json", records, images)
    with pytest.raises(RowError, match="image file not found: 'part-005658"):
        import_dataset("imagereward", meta, tmp_path / "g.csv")
    summary = import_dataset("imagereward", meta, tmp_path / "g.csv", images_root=images)
    assert summary["pairs_written"] == 6 + 5 and summary["ties_dropped"] == 1
    frame = _read_manifest(tmp_path / "g.csv")
    row = frame.set_index("pair_id").loc["imagereward-005658-0040-1-2"]
    assert Path(row[f"image_{row['preferred']}"]).name == "1.webp"  # rank 2 beats rank 5


def test_imagereward_missing_image_fail_or_skip(
    imagereward_extracted: Path, imagereward_root: Path, tmp_path: Path
) -> None:
    name = f"{image_uuid(5)}.webp"
    (imagereward_extracted / "images" / "train" / "train_1" / name).unlink()
    with pytest.raises(
        RowError,
        match=rf"metadata-train\.parquet row 5, field 'image_path'.*"
        rf"{name}.*nor in a zip archive: .*train_1\.zip "
        r"\(no such archive\)",
    ):
        import_dataset(
            "imagereward", imagereward_extracted / "metadata-train.parquet", tmp_path / "m.csv"
        )
    summary = import_dataset(
        "imagereward",
        imagereward_extracted / "metadata-train.parquet",
        tmp_path / "m.csv",
        on_error="skip",
    )
    assert summary["missing_images"] == 1 and summary["pairs_missing_image"] == 2
    assert summary["pairs_written"] == 6
    # the same image missing from the hub's archive: the error names the archive and the member
    rows = _ir_rows()
    rows[5]["image_path"] = "images/train/train_1/not-in-the-archive.webp"
    pd.DataFrame(rows).to_parquet(imagereward_root / "metadata-train.parquet")
    with pytest.raises(
        RowError,
        match=r"row 5, field 'image_path'.*train_1\.zip \(no member "
        r"named 'not-in-the-archive\.webp'\)",
    ):
        import_dataset("imagereward", imagereward_root, tmp_path / "z.csv")
    summary = import_dataset("imagereward", imagereward_root, tmp_path / "z.csv", on_error="skip")
    assert summary["missing_images"] == 1 and summary["pairs_written"] == 6


# ------------------------------------------------------------------------- HPD v2


def _hpd_test_file(root: Path) -> Path:
    """test.json with the averaged rank and each annotator's ranking; images in test/."""
    records = [
        {
            "prompt": "a watercolor fox",
            "image_path": ["00000.jpg", "00001.jpg", "00002.jpg"],
            "rank": [3, 2, 1],  # contradicts the annotators' majority: --hpd-label says which wins
            "raw_annotations": [
                {"rank": [1, 2, 3], "user_hash": "u1"},
                {"rank": [2, 1, 3], "user_hash": "u2"},
                {"rank": [1, 3, 2], "user_hash": "u3"},
            ],
        },
        {
            "prompt": "a castle at dusk",
            "image_path": ["00003.jpg", "00004.jpg"],
            "rank": [1, 2],
            "raw_annotations": [
                {"rank": [1, 2], "user_hash": "u1"},
                {"rank": [2, 1], "user_hash": "u2"},
            ],
        },  # no majority: a tie
        {
            "prompt": "a lighthouse",
            "image_path": ["00005.jpg", "00006.jpg"],
            "rank": [2, 1],
            "raw_annotations": [],
        },  # no raw annotations: the rank decides
    ]
    return write_hpd_test(root, records)


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
    expected_winner = {
        "hpd-test-000000-0-1": "00001.jpg",
        "hpd-test-000000-0-2": "00002.jpg",
        "hpd-test-000000-1-2": "00002.jpg",
        "hpd-test-000001-0-1": "00003.jpg",
        "hpd-test-000002-0-1": "00006.jpg",
    }
    assert set(frame.index) == set(expected_winner)
    for pair_id, name in expected_winner.items():
        row = frame.loc[pair_id]
        assert Path(row[f"image_{row['preferred']}"]).name == name
    # equal ranks are a tie: dropped, or written as a tie row
    records = [
        {
            "prompt": "a red kite",
            "image_path": ["00000.jpg", "00001.jpg", "00002.jpg"],
            "rank": [1, 2, 2],
            "raw_annotations": [],
        }
    ]
    (tmp_path / "HPDv2" / "tied.json").write_text(json.dumps(records))
    tied = import_dataset(
        "hpd",
        tmp_path / "HPDv2" / "tied.json",
        tmp_path / "t.csv",
        images_root=tmp_path / "HPDv2" / "test",
    )
    assert tied["ties_dropped"] == 1 and tied["pairs_written"] == 2
    kept = import_dataset(
        "hpd",
        tmp_path / "HPDv2" / "tied.json",
        tmp_path / "k.csv",
        images_root=tmp_path / "HPDv2" / "test",
        keep_ties=True,
    )
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
    expected_winner = {
        "hpd-test-000000-0-1": "00000.jpg",
        "hpd-test-000000-0-2": "00000.jpg",
        "hpd-test-000000-1-2": "00001.jpg",
        "hpd-test-000002-0-1": "00006.jpg",
    }
    assert set(frame.index) == set(expected_winner)
    for pair_id, name in expected_winner.items():
        row = frame.loc[pair_id]
        assert Path(row[f"image_{row['preferred']}"]).name == name
        assert _resolve(out, row["image_1"]).is_file() and _resolve(out, row["image_2"]).is_file()
        assert row["category"] == "hpd"


def test_hpd_train_human_preference(tmp_path: Path) -> None:
    root = tmp_path / "HPDv2"
    records = [
        {"human_preference": [1, 0], "prompt": "a red bicycle", "file_path": ["a.jpg", "b.jpg"]},
        {"human_preference": [0, 1], "prompt": "a green kite", "file_path": ["c.jpg", "d.jpg"]},
    ]
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
        import_dataset(
            "hpd",
            root / "bad.json",
            tmp_path / "m.csv",
            images_root=root / "test",
            hpd_label="vote",
        )
    summary = import_dataset(
        "hpd",
        root / "bad.json",
        tmp_path / "m.csv",
        images_root=root / "test",
        on_error="skip",
        hpd_label="vote",
    )
    assert summary["rows_skipped"] == 1 and summary["pairs_written"] == 1
    # the averaged rank does not read the raw annotations; a bad rank fails the same way
    assert (
        import_dataset("hpd", root / "bad.json", tmp_path / "r.csv", images_root=root / "test")[
            "pairs_written"
        ]
        == 5
    )
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
    path.write_bytes(truncated(encode(noise(1), fmt)))
    with Image.open(path) as img:  # the header alone looks fine
        assert img.size == (64, 64)
    return path


def test_truncated_image_files_fail_at_import_not_later(tmp_path: Path) -> None:
    """Files a source names are referenced where they are, but decoded at import time, as the
    docs promise: a truncated JPEG fails the import naming the row and field (or is skipped and
    counted), instead of surfacing in ``prepare``."""
    src = _hpd_test_file(tmp_path / "HPDv2")
    bad = _truncated(tmp_path / "HPDv2" / "test" / "00001.jpg", "JPEG")
    with pytest.raises(
        RowError,
        match=r"test\.json entry 0, field 'image_path': .*00001\.jpg: "
        r"unreadable or truncated image",
    ):
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
    rows = [
        {
            "image": {"bytes": None, "path": str(path)},
            "prompt_id": "p1",
            "prompt": "a dog",
            "classification": "Animals",
            "rank": rank,
        }
        for path, rank in ((good, 1), (bad, 2))
    ]
    adapter = ImageRewardAdapter(RecordsTable([("hf-imagereward", rows)]))
    with pytest.raises(
        RowError,
        match=r"hf-imagereward entry 1, field 'image': .*bad\.png: "
        r"unreadable or truncated image",
    ):
        run_import(adapter, tmp_path / "m.csv")


def test_truncated_pickapic_bytes_fail_at_import(tmp_path: Path) -> None:
    """Pick-a-Pic holds its images as bytes: a truncated JPEG fails while being written."""
    frame = _pickapic_frame(PICKAPIC_ROWS[:2])
    frame.loc[1, "jpg_1"] = truncated(encode(noise(1), "JPEG"))
    path = write_pickapic_shard(tmp_path / "train-00000-of-00001.parquet", frame)
    with pytest.raises(
        RowError,
        match=r"train-00000-of-00001\.parquet row 1, field 'jpg_1': "
        r"image data: unreadable or truncated image",
    ):
        import_dataset("pickapic", path, tmp_path / "m.csv")
    assert not (tmp_path / "m.csv").exists()
    summary = import_dataset("pickapic", path, tmp_path / "m.csv", on_error="skip")
    assert summary["bad_images"] == 1 and summary["pairs_written"] == 1


@pytest.mark.parametrize("zipped", [True, False], ids=["hub-zip", "extracted"])
def test_truncated_imagereward_webp_fails_at_import(tmp_path: Path, zipped: bool) -> None:
    """ImageRewardDB's archives hold damaged WebP files (the hub's discussion #3): one fails the
    import naming the metadata row, the field and the file (the archive member when zipped)."""
    root = write_imagereward(
        tmp_path / "ImageRewardDB",
        _ir_rows(),
        zipped=zipped,
        image_bytes=lambda k: truncated(encode(noise(k), "WEBP")) if k == 3 else None,
    )
    name = rf"{image_uuid(3)}\.webp"
    where = rf"train_1\.zip:{name}" if zipped else rf"train_1/{name}"
    with pytest.raises(
        RowError,
        match=rf"metadata-train\.parquet row 3, field 'image_path': "
        rf".*{where}: unreadable or truncated image",
    ):
        import_dataset("imagereward", root, tmp_path / "m.csv")
    assert not (tmp_path / "m.csv").exists()
    summary = import_dataset("imagereward", root, tmp_path / "m.csv", on_error="skip")
    assert summary["bad_images"] == 1 and summary["pairs_missing_image"] == 3
    assert summary["pairs_written"] == 8 - 3
    result = import_manifest(tmp_path / "m.csv", tmp_path / "prepared", 10_000_000)
    assert len(result.pairs) == 5 and not result.problems


def test_a_damaged_archive_member_fails_at_import(imagereward_root: Path, tmp_path: Path) -> None:
    """A member whose stored bytes no longer match their CRC is reported like a bad image."""
    archive = imagereward_root / "images" / "train" / "train_1.zip"
    member = f"{image_uuid(2)}.webp"
    with zipfile.ZipFile(archive) as zf:
        contents = {name: zf.read(name) for name in zf.namelist()}
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    raw = bytearray(archive.read_bytes())
    at = raw.index(contents[member]) + len(contents[member]) // 2
    raw[at] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises(
        RowError,
        match=rf"row 2, field 'image_path': .*train_1\.zip:"
        rf"{image_uuid(2)}\.webp: cannot be read from the archive",
    ):
        import_dataset("imagereward", imagereward_root, tmp_path / "m.csv")
    summary = import_dataset("imagereward", imagereward_root, tmp_path / "m.csv", on_error="skip")
    assert summary["bad_images"] == 1 and summary["pairs_written"] == 8 - 2  # 1 of its 3 is a tie


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
    result = import_manifest(out, tmp_path / "prepared", max_pixels=10_000_000, on_error="fail")
    assert len(result.pairs) == summary["pairs_written"] and not result.problems
    ours = _read_manifest(out)
    assert list(result.pairs["pair_id"]) == list(ours["pair_id"])
    assert list(result.pairs["preferred"]) == list(ours["preferred"])


def test_cli_import_end_to_end(tmp_path: Path) -> None:
    src = _hpd_test_file(tmp_path / "HPDv2")
    out = tmp_path / "cli" / "hpd.csv"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "import",
            "hpd",
            "--from",
            str(src),
            "--out",
            str(out),
            "--seed",
            "5",
            "--max-pairs-per-prompt",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["source"] == "hpd" and summary["pairs_written"] == 4
    assert summary["pairs_capped"] == 1 and summary["ties_dropped"] == 0
    assert len(_read_manifest(out)) == 4
    voted = runner.invoke(
        app,
        [
            "import",
            "hpd",
            "--from",
            str(src),
            "--out",
            str(out),
            "--hpd-label",
            "vote",
            "--keep-ties",
        ],
    )
    assert voted.exit_code == 0, voted.output
    summary = json.loads(voted.stdout[voted.stdout.index("{") :])
    assert summary["hpd_label"] == "vote" and summary["ties_written"] == 1
    bad = runner.invoke(
        app, ["import", "hpd", "--from", str(tmp_path / "nope.json"), "--out", str(out)]
    )
    assert bad.exit_code == 2
    assert "nope.json: no such file or folder" in bad.output


def test_images_inside_rows_as_a_hf_dataset_yields_them(tmp_path: Path) -> None:
    """HF copies carry images in the rows: ``{"bytes", "path"}`` (ImageRewardDB) or a list (HPD)."""
    ir_rows = [
        {
            "image": {"bytes": _jpeg(k), "path": None},
            "prompt_id": "p1",
            "prompt": "a dog",
            "classification": "Animals",
            "image_amount_in_total": 3,
            "rank": rank,
            "overall_rating": 5,
        }
        for k, rank in enumerate([2, 1, 3])
    ]
    adapter = ImageRewardAdapter(RecordsTable([("hf-imagereward", ir_rows)]))
    out = tmp_path / "ir.csv"
    summary = run_import(adapter, out)
    assert summary["pairs_written"] == 3 and summary["images_written"] == 3
    for _, row in _read_manifest(out).iterrows():
        i, j = (int(x) for x in row["pair_id"].split("-")[-2:])
        winner = _resolve(out, row[f"image_{row['preferred']}"])
        assert row["image_1"].startswith("ir_images/")
        assert winner.read_bytes() == _jpeg(1 if 1 in (i, j) else 0)  # rank 1 beats all
    hpd_rows = [
        {
            "prompt": "a boat",
            "image": [_jpeg(5), _jpeg(6)],
            "rank": [2, 1],
            "raw_annotations": [{"rank": [2, 1], "user_hash": "u"}],
        }
    ]
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
        import_dataset(
            "pickapic",
            "hf:yuvalkirstain/pickapic_v2",
            tmp_path / "m.csv",
            split="validation_unique",
        )
