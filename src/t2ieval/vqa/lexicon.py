"""The word lists the prompt parser (:mod:`t2ieval.vqa.parse`) reads prompts with.

Reading only: how questions are *written* (templates, relation phrases, number words, plurals)
lives in :mod:`t2ieval.data.scenes`, shared with the synthetic generator. The number words here
are built from that module's :data:`~t2ieval.data.scenes.NUMBER_NAMES`, so the parser reads every
number word that prompts and questions are written with.
"""

from __future__ import annotations

from t2ieval.data.scenes import NUMBER_NAMES

COLOUR_WORDS: frozenset[str] = frozenset(
    {
        "red",
        "green",
        "blue",
        "yellow",
        "purple",
        "orange",
        "pink",
        "brown",
        "black",
        "white",
        "gray",
        "grey",
        "violet",
        "cyan",
        "magenta",
        "gold",
        "silver",
        "beige",
        "turquoise",
        "teal",
        "navy",
        "maroon",
        "crimson",
        "scarlet",
        "indigo",
        "lime",
        "olive",
        "lavender",
        "tan",
        "ivory",
        "khaki",
        "aqua",
        "amber",
        "emerald",
        "bronze",
        "golden",
    }
)
"""Colour names an object's modifiers are matched against."""

SHADE_WORDS: frozenset[str] = frozenset({"light", "dark", "pale", "bright", "deep", "navy"})
"""Words that shade a following colour (``light blue``)."""

NUMBER_WORDS: dict[str, int] = {
    **{word: n for n, word in enumerate(NUMBER_NAMES, start=1)},
    "dozen": 12,
    "single": 1,
    "both": 2,
}
"""Number words and the count each states (digits are read as digits)."""

QUANTITY_NOUNS: dict[str, int | None] = {
    "pair": 2,
    "couple": 2,
    "trio": 3,
    "dozen": 12,
    "group": None,
    "bunch": None,
    "lot": None,
    "number": None,
    "set": None,
    "pile": None,
    "herd": None,
    "flock": None,
    "crowd": None,
    "collection": None,
    "row": None,
    "stack": None,
}
"""Nouns of ``a pair of X``: not objects; the count they give X (None: no count)."""

STYLE_NOUNS: dict[str, str] = {
    "sketch": "sketch",
    "outline": "sketch",
    "drawing": "sketch",
    "doodle": "sketch",
    "painting": "painting",
    "watercolor": "painting",
    "watercolour": "painting",
    "photo": "photo",
    "photograph": "photo",
    "cartoon": "cartoon",
}
"""Nouns (lemmas) naming the picture's style, and the style they name."""

STYLE_PARTICIPLES: dict[str, str] = {"sketched": "sketch", "outlined": "sketch"}
"""Words outside :data:`STYLE_NOUNS` that also name a style (``a sketched cat``)."""

WRAPPER_NOUNS: frozenset[str] = frozenset(
    {
        "picture",
        "image",
        "illustration",
        "render",
        "rendering",
        "scene",
        "view",
        "artwork",
        "art",
        "depiction",
        "shot",
        "style",
        "version",
        "background",
        "foreground",
        "close-up",
    }
)
"""Nouns that wrap the picture's content (``a picture of``) or its setting: not objects."""

WRAPPER_VERBS: frozenset[str] = frozenset({"show", "depict", "feature"})
"""Verbs (lemmas) whose object is the picture's content, not in a relation (``showing X``)."""

POSSESSION_VERBS: frozenset[str] = frozenset({"have", "contain"})
"""Verbs (lemmas) read as the relation ``with`` (``a cat has a hat``)."""

RELATIONAL_NOUNS: dict[str, str] = {
    "left": "left of",
    "right": "right of",
    "front": "in front of",
    "top": "on top of",
    "bottom": "at the bottom of",
    "middle": "in the middle of",
    "center": "in the middle of",
    "centre": "in the middle of",
    "side": "beside",
    "back": "behind",
    "edge": "at the edge of",
}
"""The noun of a multi-word preposition (``left`` in ``to the left of``) and the relation's name."""

RELATION_PREPOSITIONS: frozenset[str] = frozenset(
    {
        "on",
        "under",
        "above",
        "below",
        "behind",
        "against",
        "in",
        "inside",
        "beside",
        "near",
        "over",
        "beneath",
        "underneath",
        "between",
        "among",
        "by",
        "at",
        "across",
        "along",
        "around",
        "with",
        "within",
        "onto",
        "into",
        "atop",
        "through",
        "outside",
    }
)
"""Prepositions that relate two objects, each its own relation name (``of`` is not one)."""

RELATION_ADVERBS: dict[str, str] = {"next": "next to", "close": "close to", "adjacent": "next to"}
"""The adverb of ``next to`` / ``close to`` and the relation's name."""

__all__ = [
    "COLOUR_WORDS",
    "NUMBER_WORDS",
    "POSSESSION_VERBS",
    "QUANTITY_NOUNS",
    "RELATIONAL_NOUNS",
    "RELATION_ADVERBS",
    "RELATION_PREPOSITIONS",
    "SHADE_WORDS",
    "STYLE_NOUNS",
    "STYLE_PARTICIPLES",
    "WRAPPER_NOUNS",
    "WRAPPER_VERBS",
]
