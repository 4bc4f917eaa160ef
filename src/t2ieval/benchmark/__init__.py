"""``t2ieval benchmark``: compare text-to-image generators on one prompt suite.

One module per job:

* :mod:`~t2ieval.benchmark.inputs`: the generated images (a manifest or a folder layout),
  checked row by row;
* :mod:`~t2ieval.benchmark.score`: every distinct image scored once with the registered model
  (:class:`~t2ieval.scoring.CompositeScorer`, or Spark's batch path);
* :mod:`~t2ieval.benchmark.compare`: within-prompt, cross-generator comparisons (ties, missing
  images) and win rates;
* :mod:`~t2ieval.benchmark.strengths`: Bradley-Terry strengths and their bootstrap over prompts;
* :mod:`~t2ieval.benchmark.features` and :mod:`~t2ieval.benchmark.distribution`: FID, KID,
  Inception Score and CLIPScore, labelled with the feature space they were computed in;
* :mod:`~t2ieval.benchmark.report` and :mod:`~t2ieval.benchmark.mlflow_run`: the leaderboard
  files, the chart and the MLflow run;
* :mod:`~t2ieval.benchmark.demo`: the synthetic renderer as generators of known fidelity;
* :mod:`~t2ieval.benchmark.run`: all of it, in order.

Importing this package imports nothing heavy.
"""
