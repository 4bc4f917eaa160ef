"""The quality branch (the method's CE-score slot): image-quality features and a model on top.

``config``: the branch's settings (families, model kind, regularisation grid). ``families``: the
feature families ``entropy`` (:mod:`t2ieval.entropy`), ``nss`` (the 36 BRISQUE natural-scene
statistics, :mod:`t2ieval.quality.nss`) and ``handcrafted`` (:mod:`t2ieval.quality.handcrafted`),
one feature vector per image and the batch feature table. ``model``: the pairwise, image-level
logistic or calibrated-SVM model, regularisation by prompt-grouped inner CV, saved with skops.
Import the submodule you use.
"""
