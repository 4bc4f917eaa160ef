"""Training the embedded ViLT: scene facts, the auxiliary head, pretraining and augmentation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from t2ieval.data.scenes import SCENE_FACTS, Group, Scene, scene_facts
from t2ieval.pipeline.vqa import VqaStageError, _examples, read_scenes
from t2ieval.vqa.auxiliary import AuxiliaryHead, answer_sheet
from t2ieval.vqa.model import build_embedded_model
from t2ieval.vqa.settings import TrainSettings
from t2ieval.vqa.train import QaExamples, pretrain_auxiliary, random_shift, train_vqa

SMALL = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
COLOURS = {"red": (220, 30, 30), "blue": (35, 70, 220)}


def _facts_on(vector: np.ndarray) -> set[str]:
    return {SCENE_FACTS[i] for i in np.flatnonzero(vector)}


def test_scene_facts_state_what_is_drawn_and_nothing_else():
    scene = Scene(
        groups=(Group("star", "red", 2), Group("circle", "blue", 1)),
        style="sketch",
        relation="left of",
    )
    assert _facts_on(scene_facts(scene)) == {
        "shape:star",
        "shape:circle",
        "colour:red",
        "colour:blue",
        "object:star:red",
        "object:circle:blue",
        "count:star:2",
        "count:circle:1",
        "style:sketch",
        "relation:star:left of:circle",
        "relation:circle:right of:star",
    }
    plain = Scene(groups=(Group("square", "green", 3),))
    assert _facts_on(scene_facts(plain)) == {
        "shape:square",
        "colour:green",
        "object:square:green",
        "count:square:3",
    }
    assert len(SCENE_FACTS) == len(set(SCENE_FACTS)) == 260


def test_scene_facts_refuse_a_shape_outside_the_vocabulary():
    with pytest.raises(ValueError, match="shape:spiral"):
        scene_facts(Scene(groups=(Group("spiral", "red", 1),)))


def test_answer_sheet_marks_unasked_questions_unknown():
    columns, sheet = answer_sheet(
        [0, 0, 1], ["Is it red?", "Is it blue?", "Is it red?"], [1, 0, 0], n_images=3
    )
    assert columns == ["Is it blue?", "Is it red?"]
    np.testing.assert_array_equal(sheet[0], [0.0, 1.0])
    assert np.isnan(sheet[1, 0]) and sheet[1, 1] == 0.0
    assert np.isnan(sheet[2]).all()  # an image without questions: all unknown
    with pytest.raises(ValueError, match="both answers"):
        answer_sheet([0, 0], ["Is it red?", "Is it red?"], [1, 0], n_images=1)


@pytest.fixture(scope="module")
def small_vqa():
    torch.manual_seed(0)
    texts = [f"Is the square {c}?" for c in COLOURS] + ["Can you find any square?"]
    return build_embedded_model("t2i-tiny-vilt", texts, config_overrides=SMALL)


def test_auxiliary_head_ignores_unknown_facts_and_special_tokens(small_vqa):
    facts = np.array([[1.0, np.nan], [0.0, 1.0]], dtype=np.float32)
    head = AuxiliaryHead(32, facts, small_vqa.tokenizer)
    words = head.words(["Is the square red?"])
    ids = small_vqa.tokenizer("Is the square red?", add_special_tokens=False)["input_ids"]
    assert set(torch.nonzero(words[0]).flatten().tolist()) == set(ids)
    assert words[0, small_vqa.tokenizer.cls_token_id] == 0
    # tokenised once, then from the head's own table: the same rows, in the batch's order
    again = head.words(["Can you find any square?", "Is the square red?", "Is the square red?"])
    assert torch.equal(again[1], words[0]) and torch.equal(again[2], words[0])
    other = small_vqa.tokenizer("Can you find any square?", add_special_tokens=False)["input_ids"]
    assert set(torch.nonzero(again[0]).flatten().tolist()) == set(other)
    pooled = torch.randn(2, 32)
    base = head.loss(pooled, np.array([0, 1]), ["Is the square red?"] * 2)
    head.sheet[0, 1] = 1.0  # an unknown fact becomes known: the loss must change
    assert head.loss(pooled, np.array([0, 1]), ["Is the square red?"] * 2) != base
    with pytest.raises(ValueError, match="images x facts"):
        AuxiliaryHead(32, np.zeros(3), small_vqa.tokenizer)


def test_random_shift_moves_images_within_their_border():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    assert random_shift(x, 0, np.random.default_rng(0)) is x
    a = random_shift(x, 2, np.random.default_rng(5))
    b = random_shift(x, 2, np.random.default_rng(5))
    assert a.shape == x.shape and torch.equal(a, b)  # deterministic under a seeded generator
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    dy, dx = np.random.default_rng(5).integers(0, 5, size=(2, 2))
    for i in range(2):
        assert torch.equal(a[i], padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8])


def _colour_squares(n: int, seed: int = 0) -> QaExamples:
    """Images of one red or blue square on grey; the question asks about one colour."""
    rng = np.random.default_rng(seed)
    images, index, questions, labels, facts = [], [], [], [], []
    for i in range(n):
        colour = list(COLOURS)[i % 2]
        arr = np.full((64, 64, 3), 200, dtype=np.uint8)
        y, x = rng.integers(4, 40, size=2)
        arr[y : y + 20, x : x + 20] = COLOURS[colour]
        images.append(Image.fromarray(arr))
        for asked in COLOURS:
            index.append(i)
            questions.append(f"Is the square {asked}?")
            labels.append(int(asked == colour))
        facts.append([float(colour == "red"), float(colour == "blue")])
    return QaExamples(images, np.array(index), questions, np.array(labels), facts=np.array(facts))


def test_pretraining_lowers_the_auxiliary_loss(small_vqa):
    data = _colour_squares(32)
    head = AuxiliaryHead(32, data.facts, small_vqa.tokenizer)
    torch.manual_seed(0)
    losses = pretrain_auxiliary(
        small_vqa,
        data,
        head,
        TrainSettings(pretrain_epochs=6, lr=3e-3, batch_size=8),
        progress=False,
    )
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0]


def test_train_vqa_reports_the_auxiliary_loss_and_refuses_negative_settings():
    torch.manual_seed(0)
    data = _colour_squares(16, seed=1)
    vqa = build_embedded_model("t2i-tiny-vilt", sorted(set(data.questions)), config_overrides=SMALL)
    history = train_vqa(
        vqa, data, TrainSettings(epochs=1, pretrain_epochs=1, batch_size=8, shift=2), progress=False
    )
    assert history[0]["train_aux_loss"] > 0
    off = train_vqa(
        vqa,
        data,
        TrainSettings(epochs=1, pretrain_epochs=0, aux_weight=0.0, batch_size=8),
        progress=False,
    )
    assert "train_aux_loss" not in off[0]
    with pytest.raises(ValueError, match="pretrain_epochs and aux_weight"):
        train_vqa(vqa, data, TrainSettings(epochs=1, pretrain_epochs=-1))


def test_read_scenes_names_a_bad_line(tmp_path):
    good = {
        "image": "a.png",
        "scene": {
            "groups": [{"shape": "star", "colour": "red", "count": 1}],
            "style": "filled",
            "relation": None,
        },
    }
    path = tmp_path / "scenes.jsonl"
    path.write_text(json.dumps(good) + "\n" + '{"image": "b.png"}\n')
    with pytest.raises(VqaStageError, match="line 2"):
        read_scenes(path)
    path.write_text(json.dumps(good) + "\n")
    assert read_scenes(path)["a.png"].groups[0].shape == "star"
    assert read_scenes(tmp_path / "absent.jsonl") is None


def test_examples_need_a_scene_for_every_image():
    qa = pd.DataFrame(
        {
            "image": ["a.png", "b.png"],
            "pair_id": ["p1", "p1"],
            "question": ["Is the star red?"] * 2,
            "answer": ["yes", "no"],
        }
    )
    img = Image.new("RGB", (8, 8))
    scene = Scene(groups=(Group("star", "red", 1),))
    with pytest.raises(VqaStageError, match="b.png"):
        _examples(qa, {"a.png": img, "b.png": img}, {"a.png": scene})
    ex = _examples(qa, {"a.png": img, "b.png": img}, {"a.png": scene, "b.png": scene})
    assert ex.facts.shape == (2, len(SCENE_FACTS))
