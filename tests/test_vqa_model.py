"""VQA model factory: embedded ViLT, tiny BLIP built offline, hub names offline, yes-probability."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from t2ieval.vqa.model import (
    BlipVqa,
    ViltVqa,
    VqaModelError,
    build_embedded_model,
    fast_image_embeds,
    fingerprint_model,
    load_vqa_model,
    pad_token_rows,
    salient_image_tokens,
    save_vqa,
    select_salient_patches,
)
from t2ieval.vqa.tokenizer import train_wordpiece

TEXTS = [
    "Is the circle red?",
    "Can you find any square?",
    "Is there one star?",
    "Are there two circles?",
    "Is the circle to the left of the square?",
    "yes",
    "no",
]


def _images(colours=("red", "blue", "green")) -> list[Image.Image]:
    return [Image.new("RGB", (128, 128), c) for c in colours]


@pytest.fixture(scope="module")
def tiny_vilt(tmp_path_factory):
    torch.manual_seed(0)
    vqa = build_embedded_model("t2i-tiny-vilt", TEXTS)
    folder = save_vqa(vqa, tmp_path_factory.mktemp("vilt"))
    return vqa, folder


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    """A randomly initialised BLIP VQA model with a WordPiece vocabulary trained offline."""
    from transformers import BlipConfig, BlipForQuestionAnswering, BlipImageProcessor, BlipProcessor

    tok = train_wordpiece(TEXTS, vocab_size=200, extra_special_tokens=["[DEC]"])
    text = dict(
        vocab_size=len(tok),
        hidden_size=32,
        encoder_hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=32,
        bos_token_id=tok.convert_tokens_to_ids("[DEC]"),
        pad_token_id=tok.pad_token_id,
        sep_token_id=tok.sep_token_id,
        eos_token_id=tok.sep_token_id,
    )
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    torch.manual_seed(0)
    model = BlipForQuestionAnswering(BlipConfig(text_config=text, vision_config=vision))
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok
    )
    folder = tmp_path_factory.mktemp("blip")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_embedded_vilt_round_trip(tiny_vilt):
    vqa, folder = tiny_vilt
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    loaded = load_vqa_model(folder, device="cpu")
    assert isinstance(loaded, ViltVqa) and loaded.kind == "vilt"
    assert loaded.model.config.id2label == {0: "no", 1: "yes"}
    assert loaded.fingerprint == vqa.fingerprint
    qs = ["Is the circle red?", "Can you find any square?", "Is there one star?"]
    p1, p2 = vqa.answer(_images(), qs), loaded.answer(_images(), qs)
    np.testing.assert_allclose(p1, p2, atol=1e-6)
    assert np.all((p1 > 0) & (p1 < 1))


def test_vilt_yes_probability_is_softmax_over_yes_no(tiny_vilt):
    vqa, _ = tiny_vilt
    images, qs = _images(), ["Is the circle red?"] * 3
    pixels = vqa.encode_images(images)
    with torch.no_grad():
        logits = vqa.logits(pixels, [0, 1, 2], qs)
    expected = torch.softmax(logits[:, [vqa.no_id, vqa.yes_id]], dim=-1)[:, 1].numpy()
    np.testing.assert_allclose(vqa.yes_probability(pixels, [0, 1, 2], qs), expected, atol=1e-6)


def test_fast_image_path_equals_vilts_own_embedding():
    torch.manual_seed(0)
    vqa = build_embedded_model("t2i-tiny-vilt", TEXTS, config_overrides={"salient_image_tokens": 0})
    model = vqa.model.eval()
    pixels = vqa.encode_images(_images())
    assert fast_image_embeds(model, pixels["pixel_values"], pixels["pixel_mask"]) is not None
    text = vqa.tokenizer(["Is the circle red?"] * 3, return_tensors="pt")
    with torch.no_grad():
        general = model(**text, **pixels).logits
        fast = vqa.logits(pixels, [0, 1, 2], ["Is the circle red?"] * 3)
    torch.testing.assert_close(fast, general, atol=1e-5, rtol=1e-4)
    # a padded batch (different sizes) takes the general path
    padded = vqa.encode_images([Image.new("RGB", (128, 128)), Image.new("RGB", (128, 192))])
    assert fast_image_embeds(model, padded["pixel_values"], padded["pixel_mask"]) is None
    assert vqa.yes_probability(padded, [0, 1], ["Is the circle red?"] * 2).shape == (2,)


def _scene(faint_patch: bool = False) -> Image.Image:
    """A plain grey 128 px scene with red squares on patches 9 and 29 of the 8x8 grid of 64 px
    (16 px cells here); ``faint_patch`` tints the background cell of patch 63 slightly."""
    arr = np.full((128, 128, 3), 120, dtype=np.uint8)
    arr[16:32, 16:32] = (220, 30, 30)
    arr[48:64, 80:96] = (220, 30, 30)
    if faint_patch:
        arr[112:128, 112:128] = (128, 120, 120)
    return Image.fromarray(arr)


def test_salient_patches_are_the_objects_in_grid_order_and_ties_keep_the_first(tiny_vilt):
    vqa, _ = tiny_vilt
    pixels = vqa.encode_images([_scene(), Image.new("RGB", (128, 128), "grey")])
    chosen = select_salient_patches(pixels["pixel_values"], 8, 2)
    assert chosen.tolist() == [[9, 29], [0, 1]]
    assert {9, 29} <= set(select_salient_patches(pixels["pixel_values"], 8, 5)[0].tolist())


def test_embedded_vilt_sees_only_its_salient_patches(tiny_vilt):
    """With ``salient_image_tokens`` the image tokens are the chosen patches' own embeddings
    (position included), and a change to a patch outside them cannot change an answer."""
    vqa, _ = tiny_vilt
    assert salient_image_tokens(vqa.model.config) == 16
    model = vqa.model.eval()
    pixels = vqa.encode_images([_scene()])
    full_cfg = model.config.salient_image_tokens
    try:
        model.config.salient_image_tokens = 0
        full, _ = fast_image_embeds(model, pixels["pixel_values"], None)
        model.config.salient_image_tokens = 2
        kept, mask = fast_image_embeds(model, pixels["pixel_values"], None)
        assert kept.shape[1] == 3 and mask.shape == (1, 3)
        torch.testing.assert_close(kept, full[:, [0, 10, 30]])
        q = ["Is the square red?"]
        plain, faint = vqa.answer([_scene()], q), vqa.answer([_scene(faint_patch=True)], q)
        np.testing.assert_array_equal(plain, faint)
        model.config.salient_image_tokens = 0
        assert vqa.answer([_scene()], q) != vqa.answer([_scene(faint_patch=True)], q)
    finally:
        model.config.salient_image_tokens = full_cfg


def test_salient_image_tokens_travel_with_the_saved_model_and_its_fingerprint(tiny_vilt):
    vqa, folder = tiny_vilt
    loaded = load_vqa_model(folder, device="cpu")
    assert salient_image_tokens(loaded.model.config) == 16
    assert loaded.fingerprint == vqa.fingerprint
    loaded.model.config.salient_image_tokens = 0
    assert fingerprint_model("vilt", loaded.model, loaded.processor) != vqa.fingerprint


def _tokenizer_tensors(vqa, questions, max_len) -> dict[str, torch.Tensor]:
    enc = vqa.tokenizer(
        questions, padding="longest", truncation=True, max_length=max_len, return_tensors="pt"
    )
    return dict(enc)


@pytest.mark.parametrize("side", ["right", "left"])
def test_questions_tokenised_once_give_the_tokenizers_own_padded_tensors(tiny_vilt, side):
    vqa, _ = tiny_vilt
    vqa.tokenizer.padding_side = side
    try:
        long = "Is the circle to the left of the square " * 8 + "?"  # truncated to the limit
        batches = [TEXTS[:3], [TEXTS[4], TEXTS[0], long, TEXTS[0]], [TEXTS[2]]]
        for questions in batches + batches:  # the second round comes from the cache
            got = vqa._encode_text(questions)
            want = _tokenizer_tensors(vqa, questions, vqa.model.config.max_position_embeddings)
            assert got.keys() == want.keys()
            for key in want:
                assert torch.equal(got[key], want[key]), (side, key, questions)
        assert {q for b in batches for q in b} <= set(vqa._token_rows)
    finally:
        vqa.tokenizer.padding_side = "right"
    with pytest.raises(ValueError, match="no row"):
        pad_token_rows([], vqa.tokenizer)


def test_blip_questions_tokenised_once_give_the_tokenizers_own_padded_tensors(tiny_blip):
    vqa = load_vqa_model(tiny_blip, device="cpu")
    questions = [TEXTS[4], TEXTS[0], TEXTS[4]]
    max_len = vqa.model.config.text_config.max_position_embeddings
    got, want = vqa._encode_text(questions), _tokenizer_tensors(vqa, questions, max_len)
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_tiny_blip_loads_by_auto_kind_and_scores_yes(tiny_blip):
    vqa = load_vqa_model(tiny_blip, kind="auto", device="cpu")
    assert isinstance(vqa, BlipVqa) and vqa.kind == "blip"
    images = [Image.new("RGB", (40, 30), "red"), Image.new("RGB", (30, 40), "blue")]
    qs = ["Is the circle red?", "Can you find any square?"]
    p = vqa.answer(images, qs)
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))
    singles = [vqa.answer([im], [q])[0] for im, q in zip(images, qs)]
    np.testing.assert_allclose(p, singles, atol=1e-6)  # batching and padding do not matter
    yes = vqa.tokenizer.convert_tokens_to_ids("yes")
    no = vqa.tokenizer.convert_tokens_to_ids("no")
    bias = vqa.model.text_decoder.cls.predictions.bias
    with torch.no_grad():
        bias[yes] += 20.0
    assert np.all(vqa.answer(images, qs) > 0.99)
    with torch.no_grad():
        bias[yes] -= 20.0
        bias[no] += 20.0
    assert np.all(vqa.answer(images, qs) < 0.01)


def test_forcing_the_wrong_kind_fails_clearly(tiny_blip):
    with pytest.raises(VqaModelError, match="yes"):
        load_vqa_model(tiny_blip, kind="vilt", device="cpu")


def test_unavailable_hub_name_fails_fast_with_a_hint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(VqaModelError, match="local-dir") as info:
        load_vqa_model("dandelin/vilt-b32-finetuned-vqa-not-cached", device="cpu")
    assert time.monotonic() - start < 20
    assert "vqa.model" in str(info.value)


def test_embedded_name_is_not_loadable_before_training():
    with pytest.raises(VqaModelError, match="run_vqa"):
        load_vqa_model("t2i-tiny-vilt", device="cpu")


def test_missing_local_folder_is_named(tmp_path):
    with pytest.raises(VqaModelError, match="no config.json"):
        load_vqa_model(tmp_path, device="cpu")
    with pytest.raises(VqaModelError, match="no such"):
        load_vqa_model(str(tmp_path / "nope" / "deeper"), device="cpu")
