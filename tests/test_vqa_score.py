"""D-scores, and the train_vqa / score_vqa stages' logic on a few generated images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from t2ieval.images import load_image
from t2ieval.pipeline.vqa import VqaStageError, read_qa, score_stage, train_stage
from t2ieval.vqa.model import VqaModelError, build_embedded_model
from t2ieval.vqa.parse import parse_prompt
from t2ieval.vqa.questions import make_questions
from t2ieval.vqa.score import VqaScorer, image_hash
from t2ieval.vqa.settings import TrainSettings

SMALL = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
PROMPT = "two red circles to the left of a blue square"


@pytest.fixture(scope="module")
def small_vqa():
    torch.manual_seed(0)
    texts = [q.text for q in make_questions(parse_prompt(PROMPT))] + [PROMPT]
    return build_embedded_model("t2i-tiny-vilt", texts, config_overrides=SMALL)


def _images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(3)]


def test_each_distinct_image_and_question_is_answered_once(small_vqa):
    scorer = VqaScorer(small_vqa, batch_size=4)
    img = _images()[0]
    d, answers = scorer.score(PROMPT, [img, img.copy(), _images()[1]])
    n_questions = len(make_questions(parse_prompt(PROMPT)))
    assert scorer.n_computed == 2 * n_questions  # the copy has the same pixels: asked once
    assert scorer.n_forward == -(-2 * n_questions // 4)  # ceil: batches of 4
    assert d[0] == d[1]
    assert len(answers) == 3 * n_questions


def test_d_score_is_the_mean_answer_of_parsed_questions(small_vqa):
    scorer = VqaScorer(small_vqa, batch_size=5)
    d, answers = scorer.score(PROMPT, _images())
    assert d.shape == (3,)
    questions = [q.text for q in make_questions(parse_prompt(PROMPT))]
    for i in range(3):
        rows = answers[answers["image"] == i]
        assert list(rows["question"]) == questions
        assert d[i] == pytest.approx(rows["p_yes"].mean())
    assert set(answers["kind"]) == {"existence", "colour", "count", "relation"}
    assert answers["p_yes"].between(0, 1).all()
    # batching does not change answers
    one = VqaScorer(small_vqa, batch_size=1).score(PROMPT, _images())[0]
    np.testing.assert_allclose(one, d, atol=1e-5)


def test_image_hash_is_of_the_pixels_not_the_file(tmp_path):
    img = _images()[0]
    path = tmp_path / "a.png"
    img.save(path)
    assert image_hash(load_image(path)) == image_hash(img)
    changed = img.copy()
    changed.putpixel((0, 0), (1, 2, 3))
    assert image_hash(changed) != image_hash(img)


def _generated(tmp_path, n_pairs=10):
    from t2ieval.data.split import assign_splits, image_table
    from t2ieval.data.synthetic import generate

    generate(
        tmp_path / "data" / "prepared",
        n_pairs,
        size=96,
        seed=3,
        image_root=tmp_path / "data" / "prepared",
    )
    pairs = pd.read_csv(tmp_path / "data" / "prepared" / "pairs.csv")
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    split = assign_splits(pairs, 0.6, 0.2, 0.2, 0)
    return split, image_table(split), read_qa(tmp_path / "data" / "prepared" / "qa.csv")


def _train(tmp_path, images, qa, **kw):
    args = dict(
        enabled=True,
        model="t2i-tiny-vilt",
        kind="auto",
        device=torch.device("cpu"),
        settings=TrainSettings(epochs=1, pretrain_epochs=0, shift=0, batch_size=32),
        seed=0,
        train_embedded=True,
        max_questions=6,
        out_dir=tmp_path / "models" / "vqa",
        load=load_image,
    )
    return train_stage(images, qa, **{**args, **kw})


def _score(tmp_path, split, images, qa):
    return score_stage(
        split,
        images,
        qa,
        model_dir=tmp_path / "models" / "vqa",
        device=torch.device("cpu"),
        infer_batch_size=32,
        load=load_image,
    )


def test_train_then_score_writes_scores_answers_and_metrics(tmp_path):
    split, images, qa = _generated(tmp_path)
    trained = _train(tmp_path, images, qa)
    assert trained.curve and trained.curve[0]["epoch"] == 1
    assert trained.metrics["d_branch"] == "on" and trained.metrics["trained"] is True
    assert (tmp_path / "models" / "vqa" / "model.safetensors").is_file()
    result = _score(tmp_path, split, images, qa)
    assert list(result.scores.columns) == ["pair_id", "split", "score_1", "score_2"]
    assert (
        len(result.scores) == len(split)
        and result.scores[["score_1", "score_2"]].notna().all().all()
    )
    assert list(result.answers.columns) == ["pair_id", "image", "slot", "question", "kind", "p_yes"]
    assert set(result.answers["image"]) == set(images["image"])
    assert result.answers.groupby("image").size().max() <= 6
    for key in ("val_accuracy_d", "test_accuracy_d", "vqa_answer_accuracy"):
        assert key in result.metrics
    assert 0.0 <= result.metrics["vqa_answer_accuracy"] <= 1.0
    assert result.n_computed > 0
    served = VqaScorer.load(tmp_path / "models" / "vqa", device="cpu")
    assert served.max_questions == 6
    explicit = VqaScorer.load(tmp_path / "models" / "vqa", device="cpu", max_questions=12)
    assert explicit.max_questions == 12  # an explicit cap wins over the saved one, even 12
    row = images.iloc[0]
    d, _ = served.score(row["prompt"], [load_image(row["image"])])
    got = result.scores.set_index("pair_id").loc[row["pair_id"], f"score_{row['slot']}"]
    assert d[0] == pytest.approx(got, abs=1e-6)


def test_training_twice_gives_the_same_model_bytes(tmp_path):
    split, images, qa = _generated(tmp_path, n_pairs=6)
    _train(tmp_path / "a", images, qa)
    _train(tmp_path / "b", images, qa)
    for f in sorted((tmp_path / "a" / "models" / "vqa").iterdir()):
        assert f.read_bytes() == (tmp_path / "b" / "models" / "vqa" / f.name).read_bytes(), f.name


def test_branch_off_writes_no_model_and_empty_scores(tmp_path):
    split, images, qa = _generated(tmp_path, n_pairs=4)
    trained = _train(tmp_path, images, qa, enabled=False)
    assert trained.vqa is None and trained.metrics == {"d_branch": "off"}
    assert [f.name for f in (tmp_path / "models" / "vqa").iterdir()] == ["t2ieval_vqa.json"]
    result = _score(tmp_path, split, images, qa)
    assert result.metrics == {"d_branch": "off"} and result.answers.empty
    assert result.scores[["score_1", "score_2"]].isna().all().all()
    with pytest.raises(VqaModelError, match="D-branch was off"):
        VqaScorer.load(tmp_path / "models" / "vqa", device="cpu")


def test_embedded_model_without_questions_says_what_to_set(tmp_path):
    split, images, _ = _generated(tmp_path, n_pairs=4)
    (tmp_path / "empty.csv").write_text("")
    assert read_qa(tmp_path / "empty.csv") is None
    assert read_qa(tmp_path / "absent.csv") is None
    with pytest.raises(VqaStageError, match="vqa.model"):
        _train(tmp_path, images, None)
    with pytest.raises(VqaStageError, match="train_embedded is false"):
        _train(tmp_path, images, None, train_embedded=False)


def test_bad_answer_in_qa_names_the_row(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text(
        "image,pair_id,question,answer,kind\na.png,p1,Is it?,yes,existence\n"
        "a.png,p1,Is it red?,maybe,colour\n"
    )
    with pytest.raises(VqaStageError, match="row 3"):
        read_qa(path)
