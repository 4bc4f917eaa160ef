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


def test_using_tracking_uri_puts_mlflow_and_the_environment_back(tmp_path, monkeypatch):
    import os

    from t2ieval.tracking import using_tracking_uri

    user, inner = f"sqlite:///{tmp_path}/user.db", f"sqlite:///{tmp_path}/inner.db"
    mlflow.set_tracking_uri(None)  # MLflow holds no URI of its own: it reads the environment
    mlflow.set_registry_uri(None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", user)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    with using_tracking_uri(inner) as uri:
        assert uri == inner
        assert mlflow.get_tracking_uri() == inner and mlflow.get_registry_uri() == inner
    assert os.environ["MLFLOW_TRACKING_URI"] == user and "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_tracking_uri() == user and mlflow.get_registry_uri() == user
    # nothing was pinned: MLflow still follows the environment, as before the block
    monkeypatch.setenv("MLFLOW_TRACKING_URI", inner)
    assert mlflow.get_tracking_uri() == inner and mlflow.get_registry_uri() == inner

    # an explicit setting is restored too, also when the block raises
    mlflow.set_tracking_uri(user)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    try:
        with using_tracking_uri(inner):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert mlflow.get_tracking_uri() == user
    mlflow.set_tracking_uri(None)


def test_using_tracking_uri_defaults_to_the_projects_store(tmp_path, monkeypatch):
    import os

    from t2ieval.tracking import using_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    with using_tracking_uri(root=tmp_path) as uri:
        assert uri == tracking_uri(tmp_path) == mlflow.get_registry_uri()
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
