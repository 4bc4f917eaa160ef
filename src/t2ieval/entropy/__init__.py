"""Ordinal-pattern entropy and complexity of images (the method's CE features).

``spec``: what a feature is (:class:`FeatureSpec`, the default list). ``features``: permutation
entropy H and statistical complexity C of images, matching ``ordpy``. ``plane``: the
complexity-entropy plane figure. The model on top is the quality branch's
(:mod:`t2ieval.quality.model`).
"""
