"""The embedded generator: deterministic, and each pair's violation really holds."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from t2ieval.data.scenes import CATEGORIES, FLIPPED, Scene, questions, render_prompt
from t2ieval.data.synthetic import generate, make_pair


def _digest(folder) -> str:
    h = hashlib.sha256()
    for path in sorted((folder / "images").iterdir()):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    for name in ("pairs.csv", "qa.csv", "scenes.jsonl"):
        h.update((folder / name).read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = generate(tmp_path / "a", 30, 96, seed=7, image_root="data")
    b = generate(tmp_path / "b", 30, 96, seed=7, image_root="data")
    generate(tmp_path / "c", 30, 96, seed=8, image_root="data")
    assert a == b
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_pair_does_not_depend_on_set_size(tmp_path):
    small = generate(tmp_path / "s", 5, 96, seed=3, image_root="x")
    large = generate(tmp_path / "l", 12, 96, seed=3, image_root="x")
    assert small["pairs"] == 5 and large["pairs"] == 12
    s = pd.read_csv(tmp_path / "s" / "pairs.csv")
    big = pd.read_csv(tmp_path / "l" / "pairs.csv").head(5)
    pd.testing.assert_frame_equal(s, big)
    for name in s["image_1"]:
        file = name.split("/")[-1]
        assert (tmp_path / "s/images" / file).read_bytes() == (
            tmp_path / "l/images" / file
        ).read_bytes()


def _diff_groups(good: Scene, bad: Scene) -> list[tuple[str, object, object]]:
    diffs = []
    for g, b in zip(good.groups, bad.groups):
        for attr in ("shape", "colour", "count"):
            if getattr(g, attr) != getattr(b, attr):
                diffs.append((attr, getattr(g, attr), getattr(b, attr)))
    return diffs


@pytest.mark.parametrize("index", range(120))
def test_each_violation_holds_in_the_scene_graph(index):
    pair = make_pair(index, seed=0, size=96)
    spec = pair.spec
    good, bad = spec.good, spec.bad
    assert spec.category in CATEGORIES
    assert spec.prompt == render_prompt(good, spec.template)
    diffs = _diff_groups(good, bad)
    if spec.category == "object":
        assert [d[0] for d in diffs] == ["shape"]
        assert diffs[0][2] not in {g.shape for g in good.groups}
    elif spec.category == "colour":
        assert [d[0] for d in diffs] == ["colour"]
    elif spec.category == "count":
        assert [d[0] for d in diffs] == ["count"]
    elif spec.category == "relation":
        assert not diffs and bad.relation == FLIPPED[good.relation]
    elif spec.category == "style":
        assert not diffs and {good.style, bad.style} == {"filled", "sketch"}
    else:  # degradation: same scene, a degraded rendering
        assert bad == good and spec.degradation in ("noise", "blur", "clutter")
    if spec.category != "relation":
        assert bad.relation == good.relation
    # the faithful image is in the preferred slot, and it differs from the other image
    slot = pair.preferred - 1
    assert pair.scenes[slot] == good
    a = np.asarray(pair.images[0], dtype=np.int16)
    b = np.asarray(pair.images[1], dtype=np.int16)
    assert a.shape == (96, 96, 3) and np.abs(a - b).mean() > 1.0


@pytest.mark.parametrize("index", range(60))
def test_questions_are_true_for_the_faithful_image_and_catch_the_violation(index):
    pair = make_pair(index, seed=1, size=96)
    good, bad = pair.spec.good, pair.spec.bad
    rng = np.random.default_rng(0)
    faithful = questions(good, good, rng)
    for qa in faithful:
        if qa.kind == "style":
            assert qa.answer == ("yes" if good.style == "sketch" else "no")
        elif qa.question.startswith("Can you find any") and not any(
            qa.question.endswith(f" {g.shape}?") for g in good.groups
        ):
            assert qa.answer == "no"  # the decoy question about an absent shape
        elif qa.kind == "colour" and not any(
            qa.question == f"Is the {g.shape} {g.colour}?" for g in good.groups
        ):
            assert qa.answer == "no"  # the decoy question about a wrong colour
        else:
            assert qa.answer == "yes", qa
    if pair.spec.category != "degradation":
        violated = questions(good, bad, np.random.default_rng(0))
        n = len(faithful) - 2  # the two decoys are random
        assert any(f.answer != v.answer for f, v in zip(faithful[:n], violated[:n]))


def test_prompts_read_like_prompts():
    prompts = [make_pair(i, 0, 96).spec.prompt for i in range(200)]
    assert any(" to the left of " in p for p in prompts)
    assert any(p.startswith(("a sketch of", "an outline drawing of")) for p in prompts)
    assert any(p.split()[0] in ("two", "three", "four") for p in prompts)
    assert all(p == p.strip() and "  " not in p for p in prompts)


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        generate(tmp_path, 3, 64)
    with pytest.raises(ValueError, match="n_pairs"):
        generate(tmp_path, 0, 128)
