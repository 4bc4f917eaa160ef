"""Compositional scenes of the embedded preference set, and the wording of prompts and questions.

A :class:`Scene` is one or two *groups* of identical objects (shape, colour, count) plus a global
style (filled or sketch) and, for two groups, a spatial relation of the first to the second. The
prompt is rendered from the scene; the preferred image draws the scene itself, the other image a
copy violated in exactly one recorded way (the pair's ``category``). Questions are asked about the
prompt's scene and answered from the scene actually drawn, so the answers are ground truth for
the VQA branch.

This module is also the one home of the English wording that three things share: the synthetic
prompts, their ground-truth questions (``qa.csv``, what the embedded VQA model is trained on) and
the questions :mod:`t2ieval.vqa.questions` asks of any prompt at scoring time. That is the
question templates (:func:`existence_question`, :func:`colour_question`, :func:`count_question`,
:func:`relation_question`, :func:`possession_question`, :func:`style_question`,
:func:`prompt_question`), the relation phrases (:func:`relation_text`), number words
(:func:`number_word`) and plurals (:func:`pluralize`). One copy, so the questions trained on and
the questions asked cannot drift apart (``tests/test_vqa_parse.py`` checks that they agree on the
whole default set). It lives here rather than in :mod:`t2ieval.vqa` because the ``prepare`` stage,
which writes ``qa.csv``, depends on ``t2ieval.data`` and not on the VQA package (``dvc.yaml``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "diamond", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (35, 70, 220),
    "yellow": (240, 210, 20),
    "purple": (140, 40, 170),
    "orange": (245, 130, 20),
    "black": (25, 25, 25),
}
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
"""The spatial relations of a two-group scene, named as the prompt parser names them."""
FLIPPED: dict[str, str] = {
    "left of": "right of", "right of": "left of", "above": "below", "below": "above",
}
STYLES: tuple[str, ...] = ("filled", "sketch")
COUNTS: tuple[int, ...] = (1, 2, 3, 4)
"""How many identical objects a group can hold."""
CATEGORIES: tuple[str, ...] = ("object", "colour", "count", "relation", "style", "degradation")
DEGRADATIONS: tuple[str, ...] = ("noise", "blur", "clutter")


# --------------------------------------------------------------------------- wording
# Shared by the prompts, the ground-truth questions and t2ieval.vqa.questions: see the module
# docstring. Changing a word here changes qa.csv and every question asked.

RELATION_TEXT: dict[str, str] = {
    "left of": "to the left of",
    "right of": "to the right of",
}
"""How a relation is written in a prompt or a question, where that differs from its name."""

NUMBER_NAMES: tuple[str, ...] = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty",
)
"""The number words ``one`` ... ``twenty``, in order (``NUMBER_NAMES[n - 1]`` names ``n``)."""

_IRREGULAR_PLURALS: dict[str, str] = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "foot": "feet",
    "tooth": "teeth", "mouse": "mice", "goose": "geese", "ox": "oxen", "sheep": "sheep",
    "fish": "fish", "deer": "deer", "leaf": "leaves", "knife": "knives", "wolf": "wolves",
    "shelf": "shelves", "half": "halves", "loaf": "loaves", "wife": "wives", "life": "lives",
    "calf": "calves", "thief": "thieves", "elf": "elves", "scarf": "scarves",
    "tomato": "tomatoes", "potato": "potatoes", "hero": "heroes", "echo": "echoes",
    "cactus": "cacti", "octopus": "octopuses",
}
_VOWELS = "aeiou"

STYLE_TEMPLATES: dict[str, str] = {
    "sketch": "Is the {object} drawn as a sketch?",
    "painting": "Is the {object} shown as a painting?",
    "photo": "Is the {object} shown in a photo?",
    "cartoon": "Is the {object} drawn as a cartoon?",
}
"""The style question per picture style (the prompt parser's styles)."""


def relation_text(relation: str) -> str:
    """A relation as written: ``"left of"`` -> ``"to the left of"``; most read as named."""
    return RELATION_TEXT.get(relation, relation)


def number_word(n: int) -> str:
    """``2`` -> ``"two"``: number words up to twenty, digits beyond (and below one)."""
    return NUMBER_NAMES[n - 1] if 1 <= n <= len(NUMBER_NAMES) else str(n)


def pluralize(noun: str) -> str:
    """English plural of a (possibly multi-word) noun; only the last word changes.

    >>> pluralize("wine bottle"), pluralize("box"), pluralize("leaf"), pluralize("cherry")
    ('wine bottles', 'boxes', 'leaves', 'cherries')
    """
    words = noun.split(" ")
    last = words[-1]
    lower = last.lower()
    if lower in _IRREGULAR_PLURALS:
        plural = _IRREGULAR_PLURALS[lower]
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif lower.endswith("y") and len(lower) > 1 and lower[-2] not in _VOWELS:
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return " ".join(words[:-1] + [plural])


def article(word: str) -> str:
    """The indefinite article before ``word``: ``an`` before a vowel letter, else ``a``."""
    return "an" if word[0] in _VOWELS else "a"


def existence_question(name: str) -> str:
    """Is any object called ``name`` in the picture."""
    return f"Can you find any {name}?"


def colour_question(name: str, colour: str) -> str:
    """Is the object called ``name`` of colour ``colour``."""
    return f"Is the {name} {colour}?"


def count_question(name: str, plural: str, n: int) -> str:
    """Are there ``n`` objects called ``name`` (``plural`` in the plural)."""
    return f"Is there one {name}?" if n == 1 else f"Are there {number_word(n)} {plural}?"


def relation_question(subject: str, relation: str, obj: str) -> str:
    """Does ``subject`` stand in ``relation`` to ``obj`` (any relation but ``with``)."""
    return f"Is the {subject} {relation_text(relation)} the {obj}?"


def possession_question(owner: str, owned: str) -> str:
    """The ``with`` relation: does ``owner`` have any ``owned`` (singular or plural as written)."""
    return f"Does the {owner} have any {owned}?"


def style_question(name: str, style: str) -> str:
    """Is the object called ``name`` drawn in ``style`` (a key of :data:`STYLE_TEMPLATES`)."""
    if style not in STYLE_TEMPLATES:
        raise ValueError(f"no style question for style {style!r}; known: {list(STYLE_TEMPLATES)}")
    return STYLE_TEMPLATES[style].format(object=name)


def prompt_question(prompt: str) -> str:
    """The whole prompt as one question, for a prompt in which no object was found."""
    return f"Does the image show {prompt}?"


# --------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Group:
    """``count`` identical objects of one shape and colour."""

    shape: str
    colour: str
    count: int


@dataclass(frozen=True)
class Scene:
    """What an image shows (or what a prompt asks for)."""

    groups: tuple[Group, ...]
    style: str = "filled"
    relation: str | None = None  # relation of groups[0] to groups[1]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> Scene:
        return Scene(groups=tuple(Group(**g) for g in d["groups"]), style=d["style"],
                     relation=d["relation"])


@dataclass(frozen=True)
class QA:
    question: str
    answer: str  # "yes" | "no"
    kind: str    # existence | colour | count | relation | style


@dataclass
class PairSpec:
    """Everything needed to render one preference pair."""

    prompt: str
    good: Scene
    bad: Scene
    category: str
    degradation: str | None = None
    template: int = 0
    meta: dict = field(default_factory=dict)


def describe_group(g: Group) -> str:
    """``a red circle`` / ``three blue squares``."""
    if g.count == 1:
        return f"{article(g.colour)} {g.colour} {g.shape}"
    return f"{number_word(g.count)} {g.colour} {pluralize(g.shape)}"


PROMPT_TEMPLATES_ONE = (
    "{a}",
    "a picture of {a}",
    "an image showing {a}",
    "{a} on a plain background",
)
PROMPT_TEMPLATES_TWO = (
    "{a} {rel} {b}",
    "a picture of {a} {rel} {b}",
    "{a} placed {rel} {b}",
    "an image with {a} {rel} {b}",
)
SKETCH_PREFIXES = ("a sketch of ", "an outline drawing of ")


def render_prompt(scene: Scene, template: int) -> str:
    """The prompt text of a scene, through one of several templates.

    Sketch scenes are prefixed (``a sketch of ...``); filled scenes carry no style word.
    """
    words = {"a": describe_group(scene.groups[0])}
    templates = PROMPT_TEMPLATES_ONE
    if len(scene.groups) > 1:
        words.update(b=describe_group(scene.groups[1]),
                     rel=relation_text(scene.relation or "left of"))
        templates = PROMPT_TEMPLATES_TWO
    if scene.style == "sketch":  # the bare first template after the prefix
        return SKETCH_PREFIXES[template % len(SKETCH_PREFIXES)] + templates[0].format(**words)
    return templates[template % len(templates)].format(**words)


def sample_scene(rng: np.random.Generator) -> Scene:
    """A random scene of one or two groups (two groups carry a spatial relation)."""
    n_groups = 1 if rng.random() < 0.4 else 2
    shapes = rng.choice(len(SHAPES), size=n_groups, replace=False)
    colour_names = list(COLOURS)
    groups = []
    for i in range(n_groups):
        max_count = 4 if n_groups == 1 else (3 if i == 0 else 2)
        groups.append(Group(shape=SHAPES[int(shapes[i])],
                            colour=colour_names[int(rng.integers(len(colour_names)))],
                            count=int(rng.integers(1, max_count + 1))))
    relation = RELATIONS[int(rng.integers(len(RELATIONS)))] if n_groups == 2 else None
    style = STYLES[int(rng.random() < 0.25)]
    return Scene(groups=tuple(groups), style=style, relation=relation)


def _other(rng: np.random.Generator, options: list, current) -> object:
    choices = [o for o in options if o != current]
    return choices[int(rng.integers(len(choices)))]


def violate(scene: Scene, category: str, rng: np.random.Generator) -> Scene:
    """A copy of ``scene`` that contradicts it in exactly the way ``category`` names.

    ``degradation`` returns the scene unchanged: the violation is in the rendering.
    """
    groups = list(scene.groups)
    k = int(rng.integers(len(groups)))
    g = groups[k]
    if category == "object":
        used = {x.shape for x in groups}
        new = _other(rng, [s for s in SHAPES if s not in used], None)
        groups[k] = dataclasses.replace(g, shape=new)
    elif category == "colour":
        groups[k] = dataclasses.replace(g, colour=_other(rng, list(COLOURS), g.colour))
    elif category == "count":
        max_count = 4 if len(groups) == 1 else 3
        groups[k] = dataclasses.replace(g, count=_other(rng, list(range(1, max_count + 1)), g.count))
    elif category == "relation":
        if scene.relation is None:
            raise ValueError("a single-group scene has no relation to flip")
        return dataclasses.replace(scene, relation=FLIPPED[scene.relation])
    elif category == "style":
        return dataclasses.replace(scene, style="sketch" if scene.style == "filled" else "filled")
    elif category == "degradation":
        return scene
    else:
        raise ValueError(f"unknown violation category {category!r}; known: {CATEGORIES}")
    return dataclasses.replace(scene, groups=tuple(groups))


def sample_pair(rng: np.random.Generator) -> PairSpec:
    """One preference pair: a scene, its prompt, and a violated copy of a random category."""
    good = sample_scene(rng)
    categories = [c for c in CATEGORIES if not (c == "relation" and good.relation is None)]
    category = categories[int(rng.integers(len(categories)))]
    bad = violate(good, category, rng)
    template = int(rng.integers(1000))
    degradation = (DEGRADATIONS[int(rng.integers(len(DEGRADATIONS)))]
                   if category == "degradation" else None)
    return PairSpec(prompt=render_prompt(good, template), good=good, bad=bad,
                    category=category, degradation=degradation, template=template)


def _find(scene: Scene, shape: str) -> Group | None:
    return next((g for g in scene.groups if g.shape == shape), None)


def _holds_relation(scene: Scene, a: str, rel: str, b: str) -> bool:
    if scene.relation is None or len(scene.groups) < 2:
        return False
    first, second = scene.groups[0].shape, scene.groups[1].shape
    if (a, b) == (first, second):
        return scene.relation == rel
    if (a, b) == (second, first):
        return scene.relation == FLIPPED[rel]
    return False


SCENE_FACTS: tuple[str, ...] = (
    tuple(f"shape:{s}" for s in SHAPES)
    + tuple(f"colour:{c}" for c in COLOURS)
    + tuple(f"object:{s}:{c}" for s in SHAPES for c in COLOURS)
    + tuple(f"count:{s}:{n}" for s in SHAPES for n in COUNTS)
    + ("style:sketch",)
    + tuple(f"relation:{a}:{r}:{b}" for a in SHAPES for r in RELATIONS for b in SHAPES if a != b)
)
"""Every fact :func:`scene_facts` can state, in a fixed order (the columns of a fact matrix)."""


def scene_facts(scene: Scene) -> np.ndarray:
    """What ``scene`` shows as a 0/1 vector over :data:`SCENE_FACTS`.

    Shapes, colours, shape-colour objects, per-shape counts, the sketch style and the relation in
    both directions (``a left of b`` is also ``b right of a``). Every fact not stated is 0: unlike
    a handful of questions, this says what is *absent* too.
    """
    on = []
    for g in scene.groups:
        on += [f"shape:{g.shape}", f"colour:{g.colour}", f"object:{g.shape}:{g.colour}",
               f"count:{g.shape}:{g.count}"]
    if scene.style == "sketch":
        on.append("style:sketch")
    if scene.relation is not None and len(scene.groups) == 2:
        a, b = scene.groups[0].shape, scene.groups[1].shape
        on += [f"relation:{a}:{scene.relation}:{b}", f"relation:{b}:{FLIPPED[scene.relation]}:{a}"]
    out = np.zeros(len(SCENE_FACTS), dtype=np.float32)
    unknown = [f for f in on if f not in _FACT_INDEX]
    if unknown:
        raise ValueError(f"scene states facts outside SCENE_FACTS: {unknown}")
    out[[_FACT_INDEX[f] for f in on]] = 1.0
    return out


_FACT_INDEX = {f: i for i, f in enumerate(SCENE_FACTS)}


def questions(asked: Scene, shown: Scene, rng: np.random.Generator) -> list[QA]:
    """Questions about the prompt's scene ``asked``, answered from the drawn scene ``shown``.

    Also adds one question about an absent shape and one about a wrong colour, so that ``no``
    answers are common even for faithful images.
    """
    out: list[QA] = []
    for g in asked.groups:
        hit = _find(shown, g.shape)
        out.append(QA(existence_question(g.shape), "yes" if hit else "no", "existence"))
        out.append(QA(colour_question(g.shape, g.colour),
                      "yes" if hit and hit.colour == g.colour else "no", "colour"))
        out.append(QA(count_question(g.shape, pluralize(g.shape), g.count),
                      "yes" if hit and hit.count == g.count else "no", "count"))
    if asked.relation is not None:
        a, b = asked.groups[0].shape, asked.groups[1].shape
        truth = _holds_relation(shown, a, asked.relation, b)
        out.append(QA(relation_question(a, asked.relation, b), "yes" if truth else "no",
                      "relation"))
    main = asked.groups[0].shape
    out.append(QA(style_question(main, "sketch"),
                  "yes" if _find(shown, main) and shown.style == "sketch" else "no", "style"))
    present = {g.shape for g in shown.groups} | {g.shape for g in asked.groups}
    absent = [s for s in SHAPES if s not in present]
    if absent:
        s = absent[int(rng.integers(len(absent)))]
        out.append(QA(existence_question(s), "no", "existence"))
    g = shown.groups[int(rng.integers(len(shown.groups)))]
    wrong = _other(rng, list(COLOURS), g.colour)
    out.append(QA(colour_question(g.shape, wrong), "no", "colour"))
    return out
