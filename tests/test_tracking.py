"""Where MLflow logs: the project's SQLite store unless the user says otherwise."""

from __future__ import annotations

import mlflow

from t2ieval.tracking import configure, tracking_uri


def test_configure_follows_the_project_not_the_last_call(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    a = configure(tmp_path / "a")
    assert a == f"sqlite:///{(tmp_path / 'a').resolve().as_posix()}/mlflow.db"
    b = configure(tmp_path / "b")
    assert b.endswith("/b/mlflow.db")
    assert mlflow.get_tracking_uri() == b and mlflow.get_registry_uri() == b


def test_a_users_uri_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere.db")
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path}/elsewhere.db"
    assert configure(tmp_path / "x") == f"sqlite:///{tmp_path}/elsewhere.db"
