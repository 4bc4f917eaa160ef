"""The D-score branch: prompt parsing, templated questions, VQA models and D-scores.

- :mod:`t2ieval.vqa.parse`: prompt -> typed :class:`~t2ieval.vqa.description.Description` (spaCy),
  reading with the word lists of :mod:`t2ieval.vqa.lexicon`.
- :mod:`t2ieval.vqa.description`: the :class:`~t2ieval.vqa.description.Description` data model
  and the ``n x (m + n)`` description matrix.
- :mod:`t2ieval.vqa.questions`: templated yes/no questions and the matrices they fill (the
  templates themselves are in :mod:`t2ieval.data.scenes`, shared with the synthetic ground truth).
- :mod:`t2ieval.vqa.model`: ViLT / BLIP loading and P(yes).
- :mod:`t2ieval.vqa.tokenizer`, :mod:`t2ieval.vqa.train`, :mod:`t2ieval.vqa.auxiliary`: the
  embedded tiny ViLT.
- :mod:`t2ieval.vqa.score`: :class:`~t2ieval.vqa.score.VqaScorer` with batching and answer cache.
- :mod:`t2ieval.vqa.pipeline`: the ``train_vqa`` and ``score_vqa`` stages' logic.

Submodules import torch/transformers/spaCy lazily where they can; import what you use.
"""

__all__ = [
    "auxiliary",
    "description",
    "lexicon",
    "model",
    "parse",
    "pipeline",
    "questions",
    "score",
    "tokenizer",
    "train",
]
