"""Serving: the MLflow pyfunc and its packaging."""
