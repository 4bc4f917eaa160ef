"""The manifest importer on broken inputs we create."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from t2ieval.data.manifest import ManifestError, import_manifest
from t2ieval.images import ImageError, decode_base64_image, encode_image_base64, load_image


def _rgb(path, colour=(200, 30, 30), size=(40, 30)):
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture()
def folder(tmp_path):
    img = tmp_path / "imgs"
    img.mkdir()
    _rgb(img / "a.png")
    _rgb(img / "b.jpg", (10, 200, 10))
    Image.new("RGBA", (20, 20), (0, 0, 255, 0)).save(img / "rgba.png")
    Image.new("P", (20, 20), 3).save(img / "palette.png")
    Image.fromarray(np.full((16, 16), 40000, dtype=np.uint16)).save(img / "deep.png")
    Image.new("L", (20, 20), 128).save(img / "gray.png")
    full = (img / "b.jpg").read_bytes()
    (img / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (img / "text.png").write_text("not an image")
    Image.new("RGB", (300, 300), (1, 2, 3)).save(img / "huge.png")
    return tmp_path


def _write(folder, rows, name="manifest.csv"):
    path = folder / name
    if name.endswith(".csv"):
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {"prompt": "a red square", "image_1": "imgs/a.png", "image_2": "imgs/b.jpg", "preferred": 1}


def test_valid_rows_import_and_every_mode_becomes_rgb(folder):
    rows = [
        GOOD,
        {
            "prompt": "odd modes",
            "image_1": "imgs/rgba.png",
            "image_2": "imgs/palette.png",
            "preferred": 2,
            "category": "style",
            "pair_id": "x1",
        },
        {
            "prompt": "deep and gray",
            "image_1": "imgs/deep.png",
            "image_2": str(folder / "imgs/gray.png"),
            "preferred": "2",
        },
    ]
    out = folder / "out"
    res = import_manifest(
        _write(folder, rows, "m.jsonl"), out, max_pixels=10_000, image_root="data/prepared"
    )
    assert res.problems == []
    assert list(res.pairs["pair_id"]) == ["row000001", "x1", "row000003"]
    assert list(res.pairs["preferred"]) == [1, 2, 2]
    assert list(res.pairs["category"]) == ["unknown", "style", "unknown"]
    for col in ("image_1", "image_2"):
        for rel in res.pairs[col]:
            assert rel.startswith("data/prepared/images/")
            with Image.open(out / "images" / rel.split("/")[-1]) as im:
                assert im.mode == "RGB"
    # transparent blue composited on white, 16-bit scaled to 8-bit
    rgba = load_image(folder / "imgs/rgba.png")
    assert rgba.getpixel((0, 0)) == (255, 255, 255)
    deep = load_image(folder / "imgs/deep.png")
    assert deep.getpixel((0, 0))[0] == round(40000 / 65535 * 255)
    assert pd.read_csv(out / "pairs.csv").shape == (3, 6)


def test_every_problem_is_reported_with_row_and_field(folder):
    rows = [
        GOOD,
        {"prompt": "", "image_1": "imgs/a.png", "image_2": "imgs/b.jpg", "preferred": 1},
        {"prompt": "missing", "image_1": "imgs/nope.png", "image_2": "imgs/b.jpg", "preferred": 1},
        {
            "prompt": "truncated",
            "image_1": "imgs/a.png",
            "image_2": "imgs/truncated.jpg",
            "preferred": 2,
        },
        {"prompt": "huge", "image_1": "imgs/huge.png", "image_2": "imgs/a.png", "preferred": 1},
        {"prompt": "label", "image_1": "imgs/a.png", "image_2": "imgs/b.jpg", "preferred": 3},
        {"prompt": "text", "image_1": "imgs/text.png", "image_2": "imgs/b.jpg", "preferred": 1},
    ]
    with pytest.raises(ManifestError) as err:
        import_manifest(_write(folder, rows), folder / "out", max_pixels=10_000)
    msg = str(err.value)
    assert "6 problem(s)" in msg
    assert "row 2, field 'prompt': prompt is empty" in msg
    assert "row 3, field 'image_1'" in msg and "nope.png: no such file" in msg
    assert "row 4, field 'image_2'" in msg and "truncated" in msg
    assert "row 5, field 'image_1'" in msg and "over the limit of 10000" in msg
    assert "row 6, field 'preferred': must be 1, 2 or 0/tie, got '3'" in msg
    assert "row 7, field 'image_1'" in msg and "not an image" in msg
    assert {p.reason for p in err.value.problems} == {
        "empty_prompt",
        "missing_file",
        "bad_image",
        "too_large",
        "bad_preferred",
    }


def test_skip_drops_bad_rows_logs_and_counts_them(folder, caplog):
    rows = [
        GOOD,
        {"prompt": "missing", "image_1": "imgs/nope.png", "image_2": "imgs/b.jpg", "preferred": 1},
        {"prompt": "label", "image_1": "imgs/a.png", "image_2": "imgs/b.jpg", "preferred": "x"},
        dict(GOOD, prompt="another"),
    ]
    with caplog.at_level(logging.WARNING):
        res = import_manifest(_write(folder, rows), folder / "out", 10_000, on_error="skip")
    assert len(res.pairs) == 2
    assert res.skip_reasons == {"bad_preferred": 1, "missing_file": 1}
    assert "skipped 2 of 4 rows" in caplog.text and "nope.png" in caplog.text


def test_missing_column_and_duplicate_ids(folder):
    bad = folder / "bad.csv"
    pd.DataFrame([{"prompt": "x", "image_1": "imgs/a.png", "preferred": 1}]).to_csv(
        bad, index=False
    )
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['image_2'\]"):
        import_manifest(bad, folder / "out", 10_000)
    rows = [dict(GOOD, pair_id="same"), dict(GOOD, pair_id="same")]
    with pytest.raises(ManifestError, match="'same' already used by row 1"):
        import_manifest(_write(folder, rows), folder / "out", 10_000)
    # an id belongs to the first row that names it, even when that row is dropped
    rows = [
        dict(GOOD, pair_id="same", image_1="imgs/nope.png"),
        dict(GOOD, pair_id="same"),
        dict(GOOD, pair_id="other"),
    ]
    res = import_manifest(_write(folder, rows), folder / "out", 10_000, on_error="skip")
    assert list(res.pairs["pair_id"]) == ["other"]
    assert res.skip_reasons == {"duplicate_pair_id": 1, "missing_file": 1}


def test_base64_round_trip_and_refusals(folder):
    img = load_image(folder / "imgs/a.png")
    text = encode_image_base64(img)
    assert decode_base64_image(text).size == (40, 30)
    import base64

    wrapped = base64.encodebytes(base64.b64decode(text)).decode()
    assert "\n" in wrapped and decode_base64_image(wrapped).size == (40, 30)
    with pytest.raises(ImageError, match="invalid base64"):
        decode_base64_image("@@not base64@@", "row 3 image_1")
    with pytest.raises(ImageError, match="URLs are not fetched"):
        decode_base64_image("http://127.0.0.1/x.png")
    with pytest.raises(ImageError, match="expected a base64 string, got int"):
        decode_base64_image(5)
    with pytest.raises(ImageError, match="not an image"):
        decode_base64_image(base64.b64encode(b"hello world").decode())


def test_tied_rows_are_checked_then_left_out_and_counted(tmp_path):
    from PIL import Image

    from t2ieval.data.manifest import import_manifest

    for name, colour in (("a.png", "red"), ("b.jpg", "blue")):
        Image.new("RGB", (40, 30), colour).save(tmp_path / name)
    (tmp_path / "m.csv").write_text(
        "prompt,image_1,image_2,preferred\n"
        "a red square,a.png,b.jpg,1\n"
        "a red square,a.png,b.jpg,tie\n"
        "a blue square,b.jpg,a.png,0\n"
        "a blue square,b.jpg,missing.png,tie\n"
    )
    result = import_manifest(tmp_path / "m.csv", tmp_path / "out", 10**7, on_error="skip")
    assert result.ties == 2 and len(result.pairs) == 1
    assert [p.row for p in result.problems] == [4]  # a tie row is checked like any other


def test_blank_cells_one_rule_for_manifests_and_the_served_model(folder):
    """``is_missing`` (None, NaN) and ``is_blank`` (also whitespace) are the one definition;
    the served model treats only missing cells as absent, so an empty or whitespace string is
    reported as what it is (no base64), and only ``image_2`` may also be ``""``."""
    from t2ieval.data.manifest import is_blank, is_missing
    from t2ieval.serving.pyfunc import InputError, parse_rows

    nan = float("nan")
    assert [is_missing(v) for v in (None, nan, "", "  ", "x", 0)] == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert [is_blank(v) for v in (None, nan, "", " \t", "x", 0)] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]

    good = encode_image_base64(folder / "imgs/a.png")
    prompts, ones, twos = parse_rows(
        pd.DataFrame({"prompt": ["a", "b", "c"], "image_1": [good] * 3, "image_2": [None, nan, ""]})
    )
    assert twos == [None, None, None] and all(img is not None for img in ones)

    bad = pd.DataFrame(
        {
            "prompt": [None, nan, "  ", "ok", "ok", "ok"],
            "image_1": [good, good, good, None, "", "  "],
            "image_2": [None, None, None, None, "  ", None],
        }
    )
    with pytest.raises(InputError) as info:
        parse_rows(bad)
    assert info.value.problems == [
        "row 0: prompt must be a string, got nothing",
        "row 1: prompt must be a string, got nothing",
        "row 2: prompt is empty",
        "row 3: image_1 is missing",
        "row 4: image_1: empty string instead of a base64 image",
        "row 4: image_2: empty string instead of a base64 image",
        "row 5: image_1: empty string instead of a base64 image",
    ]


@pytest.mark.parametrize("name", ["m.csv", "m.jsonl"])
def test_write_manifest_is_read_back_to_the_same_rows_and_files(folder, tmp_path, name):
    """The format is written beside where it is read: paths inside the manifest's folder are
    written relative to it, others absolute, and check_rows resolves them back."""
    from t2ieval.data.manifest import check_rows, read_manifest, write_manifest

    outside = _rgb(tmp_path.parent / f"{tmp_path.name}_outside.png")
    rows = [
        {
            "pair_id": "p1",
            "prompt": "a red square",
            "image_1": folder / "imgs/a.png",
            "image_2": outside,
            "preferred": 2,
            "category": "colour",
        },
        {
            "pair_id": "p2",
            "prompt": 'ünïcode, "quoted"',
            "image_1": folder / "imgs/b.jpg",
            "image_2": folder / "imgs/a.png",
            "preferred": 1,
            "category": "object",
        },
    ]
    out = write_manifest(rows, folder / name)
    frame = read_manifest(out)
    assert list(frame.columns) == [
        "pair_id",
        "prompt",
        "image_1",
        "image_2",
        "preferred",
        "category",
    ]
    assert list(frame["image_1"]) == ["imgs/a.png", "imgs/b.jpg"]
    assert frame["image_2"][0] == outside.resolve().as_posix()
    checked = check_rows(out, frame)
    assert [r.problems for r in checked] == [(), ()]
    assert [(r.pair_id, r.prompt, r.preferred) for r in checked] == [
        ("p1", "a red square", 2),
        ("p2", 'ünïcode, "quoted"', 1),
    ]
    assert [r.image_1 for r in checked] == [str(folder / "imgs/a.png"), str(folder / "imgs/b.jpg")]
    assert checked[0].image_2 == str(outside.resolve())
    assert not list(folder.glob(".*.tmp"))
    with pytest.raises(ValueError, match=r"must end in \.csv or \.jsonl"):
        write_manifest(rows, folder / "m.txt")
