"""The benchmark's inputs (manifest, folder layout, reference set) and the demo generators."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from t2ieval.benchmark.demo import (
    DemoParams,
    GeneratorSpec,
    check_known_order,
    load_demo_params,
    render_demo,
)
from t2ieval.benchmark.inputs import (
    _match_prompt_id,
    read_generated_folder,
    read_generated_manifest,
    read_reference,
)
from t2ieval.data.manifest import ManifestError


def _image(path, colour=(200, 30, 30), size=(40, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def _manifest(tmp_path, rows, name="images.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_good_manifest_gives_one_row_per_image_with_absolute_paths(tmp_path):
    _image(tmp_path / "a" / "1.png")
    _image(tmp_path / "b" / "1.png", (0, 0, 200))
    path = _manifest(
        tmp_path,
        [
            {"generator": "a", "prompt": "a red square", "image": "a/1.png", "category": "colour"},
            {
                "generator": "b",
                "prompt": "A red  square ",
                "image": "b/1.png",
                "category": "colour",
            },
        ],
    )
    got = read_generated_manifest(path)
    assert got.generators == ("a", "b") and got.rows == 2 and not got.problems
    assert got.images["prompt_id"].tolist() == ["a red square", "a red square"]  # prompt_key
    assert got.images["image"].tolist() == [
        str(tmp_path / "a" / "1.png"),
        str(tmp_path / "b" / "1.png"),
    ]
    assert got.images["digest"].nunique() == 2
    assert got.prompts.to_dict("records") == [
        {"prompt_id": "a red square", "prompt": "a red square", "category": "colour"}
    ]


def _bad_rows(tmp_path):
    _image(tmp_path / "ok.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "ok.png").read_bytes()[:60])
    return [
        {
            "generator": "a",
            "prompt_id": "p1",
            "prompt": "a red square",
            "image": "ok.png",
            "seed": "0",
            "category": "colour",
        },
        {
            "generator": "",
            "prompt_id": "p1",
            "prompt": "a red square",
            "image": "ok.png",
            "seed": "1",
            "category": "colour",
        },  # row 2
        {
            "generator": "b",
            "prompt_id": "p2",
            "prompt": " ",
            "image": "ok.png",
            "seed": "0",
            "category": "count",
        },  # row 3
        {
            "generator": "b",
            "prompt_id": "p1",
            "prompt": "a blue circle",
            "image": "ok.png",
            "seed": "0",
            "category": "colour",
        },  # row 4
        {
            "generator": "b",
            "prompt_id": "p3",
            "prompt": "two stars",
            "image": "gone.png",
            "seed": "0",
            "category": "count",
        },  # row 5
        {
            "generator": "b",
            "prompt_id": "p3",
            "prompt": "two stars",
            "image": "truncated.png",
            "seed": "1",
            "category": "count",
        },  # row 6
        {
            "generator": "a",
            "prompt_id": "p1",
            "prompt": "a red square",
            "image": "ok.png",
            "seed": "0",
            "category": "colour",
        },  # row 7
        {
            "generator": "a",
            "prompt_id": "p3",
            "prompt": "two stars",
            "image": "ok.png",
            "seed": "0",
            "category": "style",
        },  # row 8
        {
            "generator": "b",
            "prompt_id": "p4",
            "prompt": "a cross",
            "image": "",
            "seed": "0",
            "category": "",
        },
    ]  # row 9


def test_every_bad_row_is_named_with_its_field_and_nothing_runs(tmp_path):
    path = _manifest(tmp_path, _bad_rows(tmp_path))
    with pytest.raises(ManifestError) as err:
        read_generated_manifest(path)
    found = {(p.row, p.field, p.reason) for p in err.value.problems}
    assert found == {
        (2, "generator", "empty_generator"),
        (3, "prompt", "empty_prompt"),
        (4, "prompt", "prompt_mismatch"),
        (5, "image", "missing_file"),
        (6, "image", "bad_image"),
        (7, "seed", "duplicate_image"),
        (8, "category", "category_mismatch"),
        (9, "image", "missing_path"),
    }
    text = str(err.value)
    assert str(path) in text and "row 4, field 'prompt'" in text
    assert "'a red square' in row 1" in text
    assert "--on-error skip" in text


def test_skip_drops_bad_rows_counts_them_and_keeps_their_prompts_in_the_suite(tmp_path):
    rows = _bad_rows(tmp_path)
    rows.append(
        {
            "generator": "b",
            "prompt_id": "p1",
            "prompt": "a red square",
            "image": "ok.png",
            "seed": "2",
            "category": "colour",
        }
    )
    got = read_generated_manifest(_manifest(tmp_path, rows), on_error="skip")
    assert got.images["row"].tolist() == [1, 10]
    assert got.skipped_rows == 8 and got.rows == 10
    assert got.skip_reasons["missing_file"] == 1 and got.skip_reasons["prompt_mismatch"] == 1
    # p3 (both images bad) and p4 stay in the suite: every generator is missing them
    assert set(got.prompts["prompt_id"]) == {"p1", "p3", "p4"}


def test_a_manifest_needs_its_columns_and_some_usable_row(tmp_path):
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['generator'\]"):
        read_generated_manifest(_manifest(tmp_path, [{"prompt": "x", "image": "y.png"}]))
    path = _manifest(tmp_path, [{"generator": "a", "prompt": "x", "image": "gone.png"}])
    with pytest.raises(ManifestError, match="no usable image left"):
        read_generated_manifest(path, on_error="skip")
    with pytest.raises(ValueError, match="on_error"):
        read_generated_manifest(path, on_error="ignore")


def _prompts(tmp_path, rows):
    path = tmp_path / "prompts.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_the_folder_layout_names_generators_prompts_and_seeds_from_the_paths(tmp_path):
    root = tmp_path / "gen"
    prompts = _prompts(
        tmp_path,
        [
            {"prompt_id": "p_1", "prompt": "a red square", "category": "colour"},
            {"prompt_id": "p_10", "prompt": "two stars", "category": "count"},
        ],
    )
    _image(root / "alpha" / "p_1_0.png")
    _image(root / "alpha" / "p_10_s3.jpg")
    _image(root / "beta" / "p_10_0.png")
    (root / "beta" / "notes.txt").write_text("not an image")
    got = read_generated_folder(root, prompts)
    table = got.images.sort_values(["generator", "prompt_id"])
    assert table[["generator", "prompt_id", "seed", "prompt"]].values.tolist() == [
        ["alpha", "p_1", "0", "a red square"],
        ["alpha", "p_10", "s3", "two stars"],
        ["beta", "p_10", "0", "two stars"],
    ]
    assert got.prompts["prompt_id"].tolist() == ["p_1", "p_10"]


def test_a_file_of_no_known_prompt_is_named_by_its_path(tmp_path):
    root = tmp_path / "gen"
    prompts = _prompts(tmp_path, [{"prompt_id": "p1", "prompt": "a red square"}])
    _image(root / "a" / "p1_0.png")
    _image(root / "b" / "q7_0.png")
    with pytest.raises(ManifestError) as err:
        read_generated_folder(root, prompts)
    (problem,) = err.value.problems
    assert problem.reason == "unknown_prompt_id" and str(root / "b" / "q7_0.png") in str(problem)
    got = read_generated_folder(root, prompts, on_error="skip")
    assert got.generators == ("a",) and got.skipped_rows == 1


def test_a_prompts_file_with_repeated_or_blank_ids_is_refused(tmp_path):
    prompts = _prompts(
        tmp_path,
        [
            {"prompt_id": "p1", "prompt": "x"},
            {"prompt_id": "p1", "prompt": "y"},
            {"prompt_id": "", "prompt": "z"},
        ],
    )
    (tmp_path / "gen" / "a").mkdir(parents=True)
    with pytest.raises(ManifestError, match="already used by row 1"):
        read_generated_folder(tmp_path / "gen", prompts)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text("ab_1", min_size=1, max_size=5), min_size=1, max_size=5, unique=True),
    st.text("ab_1", min_size=0, max_size=4),
)
def test_a_file_name_matches_the_longest_prompt_id_it_starts_with(ids, rest):
    ordered = sorted(ids, key=len, reverse=True)
    for pid in ids:
        found = _match_prompt_id(f"{pid}_{rest}", ordered)
        assert found is not None
        best, tail = found
        assert f"{best}_{tail}" == f"{pid}_{rest}" and len(best) >= len(pid)


def test_the_reference_set_is_every_image_under_the_folder(tmp_path):
    _image(tmp_path / "ref" / "a.png")
    _image(tmp_path / "ref" / "sub" / "b.jpg")
    (tmp_path / "ref" / "c.png").write_bytes(b"not a png")
    with pytest.raises(ManifestError, match="c.png"):
        read_reference(tmp_path / "ref")
    got = read_reference(tmp_path / "ref", on_error="skip")
    assert [p.split("/")[-1] for p in got.paths] == ["a.png", "b.jpg"] and len(got.problems) == 1
    with pytest.raises(FileNotFoundError, match="folder of images"):
        read_reference(tmp_path / "nowhere")


# ---- the demo generators ------------------------------------------------------------------------
SMALL = DemoParams(
    generators=(GeneratorSpec("good", 0.1), GeneratorSpec("bad", 0.6, 0.5)),
    n_prompts=12,
    image_size=96,
)


def test_the_demo_is_deterministic_from_its_seed_and_reads_back_both_ways(tmp_path):
    summary = render_demo(tmp_path / "one", SMALL)
    render_demo(tmp_path / "two", SMALL)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    assert len(files) == 12 * 2 + 12
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    assert summary["expected_order"] == ["good", "bad"]
    manifest = read_generated_manifest(tmp_path / "one" / "manifest.csv")
    folder = read_generated_folder(tmp_path / "one" / "images", tmp_path / "one" / "prompts.csv")
    key = ["generator", "prompt_id", "digest", "category", "prompt"]
    assert (
        manifest.images[key].sort_values(key).values.tolist()
        == folder.images[key].sort_values(key).values.tolist()
    )
    other = render_demo(tmp_path / "three", dataclasses.replace(SMALL, seed=1))
    assert (
        other["bad_share"] != summary["bad_share"]
        or (tmp_path / "three" / files[0]).read_bytes()
        != (tmp_path / "one" / files[0]).read_bytes()
    )


def test_with_a_shared_layout_faithful_images_of_a_prompt_are_the_same_picture(tmp_path):
    render_demo(tmp_path, SMALL)
    truth = pd.read_csv(tmp_path / "truth.csv", keep_default_na=False)
    images = read_generated_manifest(tmp_path / "manifest.csv").images
    table = images.merge(truth, on=["generator", "prompt_id"])
    faithful = table[~table["bad"]].groupby("prompt_id")["digest"].nunique()
    assert (faithful == 1).all()
    bad = table[table["bad"]]
    assert set(bad["generator"]) <= {"good", "bad"} and len(bad) > 0
    independent = dataclasses.replace(SMALL, shared_layout=False)
    render_demo(tmp_path / "indep", independent)
    again = read_generated_manifest(tmp_path / "indep" / "manifest.csv").images
    assert again.groupby("prompt_id")["digest"].nunique().max() == 2


def test_the_realised_bad_share_follows_the_fidelities(tmp_path):
    params = dataclasses.replace(SMALL, n_prompts=200, image_size=96)
    summary = render_demo(tmp_path, params)
    assert abs(summary["bad_share"]["good"] - 0.1) < 0.06
    assert abs(summary["bad_share"]["bad"] - 0.8) < 0.08


def test_demo_params_are_read_typed_and_checked(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        "demo:\n  n_prompts: 5\n  generators:\n"
        "    - {name: x, violation_rate: 0.1}\n"
        "    - {name: y, violation_rate: 0.3, degradation_rate: 0.2}\n"
    )
    params = load_demo_params(path)
    assert params.n_prompts == 5 and params.generators[1] == GeneratorSpec("y", 0.3, 0.2)
    assert params.expected_order() == ["x", "y"]
    path.write_text("demo:\n  n_promts: 5\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['n_promts'\]"):
        load_demo_params(path)
    path.write_text(
        "demo:\n  generators:\n    - {name: x, violation_rate: 1.5}\n"
        "    - {name: y, violation_rate: 0.1}\n"
    )
    with pytest.raises(ValueError, match="violation_rate must lie in"):
        load_demo_params(path)
    with pytest.raises(ValueError, match="at least two generators"):
        DemoParams(generators=(GeneratorSpec("x", 0.1),))


def test_the_known_order_check_reads_a_leaderboard():
    def board(rows):
        return pd.DataFrame(rows, columns=["generator", "bt_strength", "bt_ci_low", "bt_ci_high"])

    apart = board([("bad", -1.0, -1.5, -0.5), ("good", 1.0, 0.5, 1.5)])
    assert check_known_order(apart, SMALL) == {
        "expected_order": ["good", "bad"],
        "order": ["good", "bad"],
        "known_order": True,
        "intervals_apart": True,
    }
    overlapping = board([("good", 0.2, -0.5, 0.9), ("bad", -0.2, -0.9, 0.5)])
    assert check_known_order(overlapping, SMALL)["intervals_apart"] is False
    swapped = board([("good", -1.0, -1.5, -0.5), ("bad", 1.0, 0.5, 1.5)])
    got = check_known_order(swapped, SMALL)
    assert got["known_order"] is False and got["order"] == ["bad", "good"]
    with pytest.raises(ValueError, match=r"no row for generator\(s\) \['bad'\]"):
        check_known_order(apart.iloc[1:], SMALL)
