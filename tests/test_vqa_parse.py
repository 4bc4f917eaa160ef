"""Prompt parsing and question templates of the VQA branch (spaCy, no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from t2ieval.data.scenes import STYLE_TEMPLATES, number_word, pluralize, style_question
from t2ieval.params import load_params
from t2ieval.vqa.description import ATTRIBUTE_COLUMNS, description_matrix
from t2ieval.vqa.lexicon import NUMBER_WORDS, STYLE_NOUNS, STYLE_PARTICIPLES
from t2ieval.vqa.parse import parse_prompt, parse_prompts
from t2ieval.vqa.questions import KINDS, make_questions, question_matrix, score_matrix

ROOT = Path(__file__).resolve().parents[1]

# prompt -> objects as (name, colours, number), relations as (subject, relation, object), style
REAL_WORLD = [
    ("four wine bottles", [("wine bottle", (), 4)], [], None),
    (
        "square blue apples on a tree with circular yellow leaves",
        [("apple", ("blue",), None), ("tree", (), None), ("leaf", ("yellow",), None)],
        [("apple", "on", "tree"), ("tree", "with", "leaf")],
        None,
    ),
    (
        "a bamboo ladder propped up against an oak tree",
        [("bamboo ladder", (), None), ("oak tree", (), None)],
        [("bamboo ladder", "against", "oak tree")],
        None,
    ),
    ("a cat with four eyes", [("cat", (), None), ("eye", (), 4)], [("cat", "with", "eye")], None),
    (
        "a red car next to a white house",
        [("car", ("red",), None), ("house", ("white",), None)],
        [("car", "next to", "house")],
        None,
    ),
    (
        "a man holding a red umbrella",
        [("man", (), None), ("umbrella", ("red",), None)],
        [("man", "holding", "umbrella")],
        None,
    ),
    (
        "a dog in front of a brown fence",
        [("dog", (), None), ("fence", ("brown",), None)],
        [("dog", "in front of", "fence")],
        None,
    ),
    (
        "a pair of black shoes under a wooden table",
        [("shoe", ("black",), 2), ("table", (), None)],
        [("shoe", "under", "table")],
        None,
    ),
    (
        "a couple of dogs playing in the snow",
        [("dog", (), 2), ("snow", (), None)],
        [("dog", "in", "snow")],
        None,
    ),
    ("an oil painting of a lighthouse", [("lighthouse", (), None)], [], "painting"),
    (
        "a cat that is on the table",
        [("cat", (), None), ("table", (), None)],
        [("cat", "on", "table")],
        None,
    ),
    (
        "a photo of an astronaut riding a horse on the moon",
        [("astronaut", (), None), ("horse", (), None), ("moon", (), None)],
        [("astronaut", "riding", "horse")],
        "photo",
    ),
    ("a red and white striped shirt", [("shirt", ("red", "white"), None)], [], None),
    ("a light blue car", [("car", ("light blue",), None)], [], None),
    (
        "a dozen eggs in a basket",
        [("egg", (), 12), ("basket", (), None)],
        [("egg", "in", "basket")],
        None,
    ),
    ("5 purple stars", [("star", ("purple",), 5)], [], None),
    (
        "a teddy bear sitting on a wooden chair",
        [("teddy bear", (), None), ("chair", (), None)],
        [("teddy bear", "on", "chair")],
        None,
    ),
    (
        "a woman with long black hair",
        [("woman", (), None), ("hair", ("black",), None)],
        [("woman", "with", "hair")],
        None,
    ),
    (
        "a blue bird perched on a branch",
        [("bird", ("blue",), None), ("branch", (), None)],
        [("bird", "on", "branch")],
        None,
    ),
    (
        "two children playing with a red ball",
        [("child", (), 2), ("ball", ("red",), None)],
        [("child", "playing with", "ball")],
        None,
    ),
    (
        "a yellow taxi behind a green bus",
        [("taxi", ("yellow",), None), ("bus", ("green",), None)],
        [("taxi", "behind", "bus")],
        None,
    ),
    (
        "a white horse standing in a field",
        [("horse", ("white",), None), ("field", (), None)],
        [("horse", "in", "field")],
        None,
    ),
    (
        "a vase of pink roses beside a window",
        [("vase", (), None), ("rose", ("pink",), None), ("window", (), None)],
        [("vase", "beside", "window")],
        None,
    ),
    (
        "an elephant balancing on a ball",
        [("elephant", (), None), ("ball", (), None)],
        [("elephant", "on", "ball")],
        None,
    ),
    ("a black and white dog", [("dog", ("black", "white"), None)], [], None),
    ("three apples and two oranges", [("apple", (), 3), ("orange", (), 2)], [], None),
    (
        "a panda eating bamboo",
        [("panda", (), None), ("bamboo", (), None)],
        [("panda", "eating", "bamboo")],
        None,
    ),
    (
        "a giraffe wearing a red scarf",
        [("giraffe", (), None), ("scarf", ("red",), None)],
        [("giraffe", "wearing", "scarf")],
        None,
    ),
    (
        "a green cube below a red sphere",
        [("cube", ("green",), None), ("sphere", ("red",), None)],
        [("cube", "below", "sphere")],
        None,
    ),
    (
        "a yellow lamp above a wooden desk",
        [("lamp", ("yellow",), None), ("desk", (), None)],
        [("lamp", "above", "desk")],
        None,
    ),
    (
        "a blue mug on top of a stack of books",
        [("mug", ("blue",), None), ("book", (), None)],
        [("mug", "on top of", "book")],
        None,
    ),
    (
        "a single red apple in a glass bowl",
        [("apple", ("red",), 1), ("glass bowl", (), None)],
        [("apple", "in", "glass bowl")],
        None,
    ),
    ("a pencil sketch of an old man", [("man", (), None)], [], "sketch"),
    (
        "a brown bear to the right of a gray wolf",
        [("bear", ("brown",), None), ("wolf", ("gray",), None)],
        [("bear", "right of", "wolf")],
        None,
    ),
]

SYNTHETIC = [
    (
        "two red circles to the left of a blue square",
        [("circle", ("red",), 2), ("square", ("blue",), None)],
        [("circle", "left of", "square")],
        None,
    ),
    ("a sketch of a green star", [("star", ("green",), None)], [], "sketch"),
    (
        "three yellow triangles above a purple hexagon",
        [("triangle", ("yellow",), 3), ("hexagon", ("purple",), None)],
        [("triangle", "above", "hexagon")],
        None,
    ),
    ("an outline drawing of two orange hearts", [("heart", ("orange",), 2)], [], "sketch"),
    (
        "a picture of a yellow star below one purple triangle",
        [("star", ("yellow",), None), ("triangle", ("purple",), 1)],
        [("star", "below", "triangle")],
        None,
    ),
    (
        "an image with three green hexagons to the right of an orange circle",
        [("hexagon", ("green",), 3), ("circle", ("orange",), None)],
        [("hexagon", "right of", "circle")],
        None,
    ),
    (
        "a sketch of an orange star to the left of two black diamonds",
        [("star", ("orange",), None), ("diamond", ("black",), 2)],
        [("star", "left of", "diamond")],
        "sketch",
    ),
    ("an image showing two blue squares", [("square", ("blue",), 2)], [], None),
    ("a red circle on a plain background", [("circle", ("red",), None)], [], None),
    (
        "an orange diamond placed above a black cross",
        [("diamond", ("orange",), None), ("cross", ("black",), None)],
        [("diamond", "above", "cross")],
        None,
    ),
    ("four purple crosses on a plain background", [("cross", ("purple",), 4)], [], None),
]


def _check(prompt, objects, relations, style):
    desc = parse_prompt(prompt)
    got = [(o.name, o.colours, o.number) for o in desc.objects]
    assert got == objects, f"{prompt!r}: objects {got}"
    triples = desc.relation_triples()
    for rel in relations:
        assert rel in triples, f"{prompt!r}: relation {rel} not in {triples}"
    assert desc.style == style, f"{prompt!r}: style {desc.style}"
    assert all(o.style == style for o in desc.objects)


@pytest.mark.parametrize(
    "prompt,objects,relations,style", REAL_WORLD, ids=[p for p, *_ in REAL_WORLD]
)
def test_real_world_prompts(prompt, objects, relations, style):
    _check(prompt, objects, relations, style)


@pytest.mark.parametrize(
    "prompt,objects,relations,style", SYNTHETIC, ids=[p for p, *_ in SYNTHETIC]
)
def test_synthetic_prompts(prompt, objects, relations, style):
    _check(prompt, objects, relations, style)


def test_at_least_thirty_real_world_prompts():
    assert len(REAL_WORLD) >= 30


def test_every_generated_prompt_parses_to_its_scene():
    """The generator's own prompts (all templates) parse back to the scene they describe."""
    from t2ieval.data.scenes import render_prompt, sample_scene

    rng = np.random.default_rng(7)
    scenes = [sample_scene(rng) for _ in range(300)]
    prompts = [render_prompt(s, t) for t, s in enumerate(scenes)]
    for scene, prompt, desc in zip(scenes, prompts, parse_prompts(prompts)):
        assert [o.name for o in desc.objects] == [g.shape for g in scene.groups], prompt
        assert [o.colours for o in desc.objects] == [(g.colour,) for g in scene.groups], prompt
        for obj, g in zip(desc.objects, scene.groups):
            # "a"/"an" leaves the number open (documented decision); numerals set it
            assert obj.number == (g.count if g.count > 1 else None) or obj.number == g.count, prompt
        want_style = "sketch" if scene.style == "sketch" else None
        assert desc.style == want_style, prompt
        if scene.relation is not None:
            a, b = scene.groups[0].shape, scene.groups[1].shape
            assert desc.relation_triples() == [(a, scene.relation, b)], prompt
        else:
            assert desc.relations == (), prompt


# Prompts of the default set (2,000 pairs, seed 0) that spaCy misreads: a colour before "cross"
# is taken for a noun ("a purple cross" -> objects "purple" and "cross") or the colour-noun pair
# loses its relation. Their asked questions differ from the ground truth; fixing the parser
# changes what is asked, so when that is done this list shrinks with it.
KNOWN_MISREADINGS = frozenset(
    {
        "a purple cross",
        "three green circles placed above a purple cross",
        "three blue diamonds placed above an orange cross",
        "three green squares placed above a purple cross",
    }
)


def test_ground_truth_questions_are_the_questions_asked_at_scoring_time():
    """The questions ``qa.csv`` trains on and the questions asked of the same prompt agree.

    For a pair's faithful image, the generator's ground-truth questions answered "yes" are
    exactly the questions ``make_questions(parse_prompt(prompt))`` asks, in its order (by kind,
    then by object), with one exception: the count question of a group of one ("Is there one
    circle?"), because the prompt says "a"/"an" there and the parser leaves that number open
    (a documented decision). The generator's other questions are all answered "no" and are never
    asked at scoring time, where every question expects "yes": the style question of a filled
    scene and the two decoys (an absent shape, a wrong colour). The question cap never cuts a
    generated prompt's questions. Checked on the whole default set; the prompts spaCy misreads
    are listed in :data:`KNOWN_MISREADINGS`, and that list must be exactly the disagreements.
    """
    from t2ieval.data.scenes import questions, sample_pair

    cap = load_params(ROOT / "params.yaml").vqa.max_questions_per_image
    specs = [sample_pair(np.random.default_rng([0, i])) for i in range(2000)]  # as make_pair draws
    prompts = sorted({s.prompt for s in specs})
    asked = {p: make_questions(d) for p, d in zip(prompts, parse_prompts(prompts))}
    disagree, covered = set(), set()
    for i, spec in enumerate(specs):
        good = spec.good
        truth = questions(good, good, np.random.default_rng([0, i, 1]))
        assert len({qa.question for qa in truth}) == len(truth), spec.prompt
        count_one = {f"Is there one {g.shape}?" for g in good.groups if g.count == 1}
        expected = sorted(
            (qa for qa in truth if qa.answer == "yes" and qa.question not in count_one),
            key=lambda qa: KINDS.index(qa.kind),
        )
        got = asked[spec.prompt]
        if [(q.kind, q.text) for q in got] != [(qa.kind, qa.question) for qa in expected]:
            disagree.add(spec.prompt)
        assert len(got) <= cap, spec.prompt
        covered.update(
            {
                ("groups", len(good.groups)),
                ("style", good.style),
                ("relation", good.relation),
                (
                    "template",
                    good.style,
                    len(good.groups),
                    spec.template % (2 if good.style == "sketch" else 4),
                ),
            }
            | {("count", g.count) for g in good.groups}
        )
    assert disagree == KNOWN_MISREADINGS, (
        sorted(disagree - KNOWN_MISREADINGS),
        sorted(KNOWN_MISREADINGS - disagree),
    )
    templates = {("template", "sketch", n, t) for n in (1, 2) for t in range(2)} | {
        ("template", "filled", n, t) for n in (1, 2) for t in range(4)
    }
    wanted = (
        templates
        | {("groups", 1), ("groups", 2), ("style", "filled"), ("style", "sketch")}
        | {("relation", r) for r in (None, "left of", "right of", "above", "below")}
        | {("count", n) for n in range(1, 5)}
    )
    assert wanted <= covered, wanted - covered


def test_question_templates_and_kinds():
    qs = make_questions(parse_prompt("a cat with four eyes"))
    texts = {q.kind: [] for q in qs}
    for q in qs:
        texts[q.kind].append(q.text)
    assert texts["existence"] == ["Can you find any cat?", "Can you find any eye?"]
    assert texts["count"] == ["Are there four eyes?"]
    assert texts["relation"] == ["Does the cat have any eyes?"]
    one = make_questions(parse_prompt("one red heart"))
    assert "Is there one heart?" in [q.text for q in one]
    held = make_questions(parse_prompt("a man holding a red umbrella"))
    assert "Is the man holding the umbrella?" in [q.text for q in held]
    assert "Is the umbrella red?" in [q.text for q in held]


def test_pluralisation():
    assert pluralize("wine bottle") == "wine bottles"
    assert pluralize("box") == "boxes"
    assert pluralize("leaf") == "leaves"
    assert pluralize("cherry") == "cherries"
    assert pluralize("child") == "children"
    assert pluralize("cross") == "crosses"
    assert pluralize("day") == "days"
    assert [
        q.text for q in make_questions(parse_prompt("three red crosses")) if q.kind == "count"
    ] == ["Are there three crosses?"]


def test_number_words_are_read_back_as_written():
    """The parser reads every number word that prompts and count questions are written with."""
    assert [number_word(n) for n in (1, 4, 12, 20, 21, 0)] == [
        "one",
        "four",
        "twelve",
        "twenty",
        "21",
        "0",
    ]
    assert all(NUMBER_WORDS[number_word(n)] == n for n in range(1, 21))


def test_every_parsed_style_has_a_style_question():
    assert set(STYLE_NOUNS.values()) | set(STYLE_PARTICIPLES.values()) <= set(STYLE_TEMPLATES)
    assert style_question("star", "sketch") == "Is the star drawn as a sketch?"
    with pytest.raises(ValueError, match="style"):
        style_question("star", "filled")


def test_prompt_without_object_asks_about_the_whole_prompt():
    desc = parse_prompt("Beautiful!")
    assert len(desc.objects) == 1 and desc.objects[0].whole_prompt
    qs = make_questions(desc)
    assert [q.text for q in qs] == ["Does the image show beautiful?"]
    assert qs[0].kind == "prompt"
    asked = question_matrix(desc, qs)
    assert asked.iloc[0]["existence"] == "Does the image show beautiful?"


def test_description_matrix_shape_and_cells():
    desc = parse_prompt("two red circles to the left of a blue square")
    m = description_matrix(desc)
    n = len(desc.objects)
    assert m.shape == (n, len(ATTRIBUTE_COLUMNS) + n)
    assert list(m.columns) == list(ATTRIBUTE_COLUMNS) + ["circle", "square"]
    assert m.loc["circle", "colour"] == "red" and m.loc["circle", "number"] == "2"
    assert m.loc["circle", "square"] == "left of"
    assert m.loc["square", "circle"] == ""
    assert m.loc["square", "number"] == ""


def test_score_matrix_fills_the_asked_cells():
    desc = parse_prompt("a sketch of three yellow triangles above a purple hexagon")
    qs = make_questions(desc)
    p = np.linspace(0.1, 0.9, len(qs))
    sm = score_matrix(desc, qs, p)
    assert sm.shape == (2, len(ATTRIBUTE_COLUMNS) + 2)
    for q, value in zip(qs, p):
        assert sm.iloc[q.row][q.column] == pytest.approx(value)
    assert np.isnan(sm.loc["hexagon", "number"])  # "a" leaves the count open
    assert sm.loc["triangle", "style"] == pytest.approx(p[[q.kind for q in qs].index("style")])
    assert np.nanmean(sm.to_numpy(dtype=float)) == pytest.approx(p.mean())


def test_question_cap_keeps_the_basic_kinds_first():
    desc = parse_prompt("square blue apples on a tree with circular yellow leaves")
    qs = make_questions(desc, max_questions=4)
    assert len(qs) == 4
    assert [q.kind for q in qs] == ["existence", "existence", "existence", "colour"]
    with pytest.raises(ValueError):
        make_questions(desc, max_questions=0)


def test_duplicate_object_names_get_distinct_rows():
    desc = parse_prompt("a red circle and a blue circle")
    m = description_matrix(desc)
    assert list(m.index) == ["circle", "circle#2"]
    texts = [q.text for q in make_questions(desc)]
    assert texts.count("Can you find any circle?") == 1
    assert {"Is the circle red?", "Is the circle blue?"} <= set(texts)


def test_empty_prompt_is_refused():
    with pytest.raises(ValueError, match="prompt 0"):
        parse_prompts(["   "])
