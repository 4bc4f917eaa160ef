"""The D-score branch: prompt parsing, templated questions, VQA models and D-scores.

- :mod:`t2ieval.vqa.parse`: prompt -> typed :class:`~t2ieval.vqa.parse.Description` and the
  ``n x (m + n)`` description matrix (spaCy).
- :mod:`t2ieval.vqa.questions`: templated yes/no questions and the matrices they fill.
- :mod:`t2ieval.vqa.model`: ViLT / BLIP loading and P(yes).
- :mod:`t2ieval.vqa.tokenizer`, :mod:`t2ieval.vqa.train`: the embedded tiny ViLT.
- :mod:`t2ieval.vqa.score`: :class:`~t2ieval.vqa.score.VqaScorer` with batching and answer cache.
- :mod:`t2ieval.vqa.pipeline`: the ``run_vqa`` stage's logic.

Submodules import torch/transformers/spaCy lazily where they can; import what you use.
"""

__all__ = ["model", "parse", "pipeline", "questions", "score", "tokenizer", "train"]
