"""D-scores, the answer cache and the run_vqa pipeline on a few generated images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from t2ieval.images import load_image
from t2ieval.vqa.pipeline import VqaStageError, read_qa, run
from t2ieval.vqa.questions import make_questions
from t2ieval.vqa.parse import parse_prompt
from t2ieval.vqa.score import AnswerCache, VqaScorer, image_hash
from t2ieval.vqa.train import TrainSettings, build_embedded_model

SMALL = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
         "intermediate_size": 64}
PROMPT = "two red circles to the left of a blue square"


@pytest.fixture(scope="module")
def small_vqa():
    torch.manual_seed(0)
    texts = [q.text for q in make_questions(parse_prompt(PROMPT))] + [PROMPT]
    return build_embedded_model("t2i-tiny-vilt", texts, config_overrides=SMALL)


def _images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(3)]


def test_second_call_runs_no_forward_pass(small_vqa, tmp_path):
    first = VqaScorer(small_vqa, cache=AnswerCache(tmp_path), batch_size=4)
    d1, answers1 = first.score(PROMPT, _images())
    n_questions = len(make_questions(parse_prompt(PROMPT)))
    assert first.n_computed == 3 * n_questions
    assert first.n_forward == -(-3 * n_questions // 4)  # ceil: batches of 4
    second = VqaScorer(small_vqa, cache=AnswerCache(tmp_path), batch_size=4)
    d2, answers2 = second.score(PROMPT, _images())
    assert second.n_forward == 0 and second.n_computed == 0
    np.testing.assert_allclose(d1, d2)
    pd.testing.assert_frame_equal(answers1, answers2)


def test_d_score_is_the_mean_answer_of_parsed_questions(small_vqa):
    scorer = VqaScorer(small_vqa, cache=None, batch_size=5)
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
    one = VqaScorer(small_vqa, cache=None, batch_size=1).score(PROMPT, _images())[0]
    np.testing.assert_allclose(one, d, atol=1e-5)


def test_cache_is_keyed_by_image_content_and_model(small_vqa, tmp_path):
    img = _images()[0]
    path = tmp_path / "a.png"
    img.save(path)
    assert image_hash(load_image(path)) == image_hash(img)
    changed = img.copy()
    changed.putpixel((0, 0), (1, 2, 3))
    assert image_hash(changed) != image_hash(img)
    cache = AnswerCache(tmp_path / "cache")
    scorer = VqaScorer(small_vqa, cache=cache, batch_size=8)
    scorer.score(PROMPT, [img])
    computed = scorer.n_computed
    scorer.score(PROMPT, [changed])
    assert scorer.n_computed == 2 * computed  # new content: asked again
    other = build_embedded_model("t2i-tiny-vilt", ["Can you find any circle?"],
                                 config_overrides=SMALL)
    assert other.fingerprint != small_vqa.fingerprint
    fresh = VqaScorer(other, cache=cache, batch_size=8)
    fresh.score(PROMPT, [img])
    assert fresh.n_computed == computed  # another model: nothing reused
    assert len(cache) == 3 * computed


def _generated(tmp_path, n_pairs=10):
    from t2ieval.data.split import assign_splits, image_table
    from t2ieval.data.synthetic import generate

    generate(tmp_path / "data" / "prepared", n_pairs, size=96, seed=3,
             image_root=tmp_path / "data" / "prepared")
    pairs = pd.read_csv(tmp_path / "data" / "prepared" / "pairs.csv")
    pairs["pair_id"] = pairs["pair_id"].astype(str)
    split = assign_splits(pairs, 0.6, 0.2, 0.2, 0)
    return split, image_table(split), read_qa(tmp_path / "data" / "prepared" / "qa.csv")


def _run(tmp_path, split, images, qa, model="t2i-tiny-vilt"):
    return run(split, images, qa, model=model, kind="auto", device=torch.device("cpu"),
               settings=TrainSettings(epochs=1, batch_size=32, lr=1e-3),
               train_embedded=True, infer_batch_size=32, max_questions=6,
               model_dir=tmp_path / "models" / "vqa", cache_dir=tmp_path / "cache" / "vqa",
               load=load_image)


def test_pipeline_writes_scores_answers_and_metrics_and_reuses_its_caches(tmp_path):
    split, images, qa = _generated(tmp_path)
    result = _run(tmp_path, split, images, qa)
    assert list(result.scores.columns) == ["pair_id", "split", "score_1", "score_2"]
    assert len(result.scores) == len(split) and result.scores[["score_1", "score_2"]].notna().all().all()
    assert list(result.answers.columns) == ["pair_id", "image", "slot", "question", "kind", "p_yes"]
    assert set(result.answers["image"]) == set(images["image"])
    assert result.answers.groupby("image").size().max() <= 6
    for key in ("val_accuracy_d", "test_accuracy_d", "vqa_answer_accuracy"):
        assert key in result.metrics
    assert 0.0 <= result.metrics["vqa_answer_accuracy"] <= 1.0
    assert (tmp_path / "models" / "vqa" / "model.safetensors").is_file()
    assert result.curve and result.curve[0]["epoch"] == 1
    assert result.n_computed > 0
    again = _run(tmp_path, split, images, qa)  # same inputs: trained model and answers reused
    assert again.vqa.fingerprint == result.vqa.fingerprint
    assert again.n_computed == 0 and again.n_forward == 0
    pd.testing.assert_frame_equal(again.scores, result.scores)
    served = VqaScorer.load(tmp_path / "models" / "vqa", device="cpu")
    assert served.max_questions == 6
    explicit = VqaScorer.load(tmp_path / "models" / "vqa", device="cpu", max_questions=12)
    assert explicit.max_questions == 12  # an explicit cap wins over the saved one, even 12
    row = images.iloc[0]
    d, _ = served.score(row["prompt"], [load_image(row["image"])])
    got = result.scores.set_index("pair_id").loc[row["pair_id"], f"score_{row['slot']}"]
    assert d[0] == pytest.approx(got, abs=1e-5)


def test_embedded_model_without_questions_says_what_to_set(tmp_path):
    split, images, _ = _generated(tmp_path, n_pairs=4)
    (tmp_path / "empty.csv").write_text("")
    assert read_qa(tmp_path / "empty.csv") is None
    assert read_qa(tmp_path / "absent.csv") is None
    with pytest.raises(VqaStageError, match="vqa.model"):
        _run(tmp_path, split, images, None)


def test_bad_answer_in_qa_names_the_row(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("image,pair_id,question,answer,kind\na.png,p1,Is it?,yes,existence\n"
                    "a.png,p1,Is it red?,maybe,colour\n")
    with pytest.raises(VqaStageError, match="row 3"):
        read_qa(path)
