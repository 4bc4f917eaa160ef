"""Scaling out: scoring manifests of any size with the registered model on Apache Spark.

:mod:`t2ieval.scaling.spark` needs the optional ``pyspark`` dependency (``pip install
t2ieval[spark]``) and Java 17+; importing this package does not import Spark.
"""
