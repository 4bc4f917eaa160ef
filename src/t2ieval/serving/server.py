"""Running ``mlflow models serve`` for a model and talking to it: used by the tests and benchmark.

:class:`ModelServer` starts the real MLflow scoring server (``--env-manager local``) on a free
loopback port, waits for ``/ping``, and always stops the server's whole process group on exit.
The client side is the standard library only (``urllib``), like any user's ``curl``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def split_body(frame: pd.DataFrame | Sequence[Mapping[str, Any]]) -> dict:
    """A ``dataframe_split`` request body; ``None`` cells are sent as JSON ``null``."""
    frame = pd.DataFrame(frame)
    return {
        "dataframe_split": {
            "columns": list(frame.columns),
            "data": frame.astype(object).where(frame.notna(), None).values.tolist(),
        }
    }


@dataclass
class Response:
    """What the server answered: HTTP status and the parsed JSON (or the raw text)."""

    status: int
    body: Any
    text: str

    @property
    def message(self) -> str:
        """The error message of a failed request (empty when there is none)."""
        return self.body.get("message", "") if isinstance(self.body, dict) else self.text

    def frame(self) -> pd.DataFrame:
        """The predictions as a DataFrame (raises when the request failed)."""
        if self.status != 200:
            raise RuntimeError(f"request failed with HTTP {self.status}: {self.message[:2000]}")
        return pd.DataFrame(self.body["predictions"])


class ModelServer:
    """``mlflow models serve -m MODEL_URI --env-manager local`` as a context manager.

    >>> with ModelServer("models:/t2ieval@champion", tracking_uri="sqlite:///mlflow.db") as srv:
    ...     srv.invoke(split_body(frame)).frame()                  # doctest: +SKIP
    """

    def __init__(
        self,
        model_uri: str,
        tracking_uri: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 180.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)  # the venv's uvicorn must be on PATH
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        if self.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = self.tracking_uri
            env.pop("MLFLOW_REGISTRY_URI", None)
        env.update(self.extra_env)
        return env

    def start(self) -> ModelServer:
        """Start the server and wait until ``/ping`` answers (raises with the server log if not)."""
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            self.model_uri,
            "--env-manager",
            "local",
            "-h",
            self.host,
            "-p",
            str(self.port),
        ]
        self._log = tempfile.NamedTemporaryFile(
            "w+", prefix="t2ieval-serve-", suffix=".log", delete=False
        )
        log.info("starting %s", " ".join(cmd))
        # its own session: stop() ends the server and the uvicorn process it execs, and only them
        self.proc = subprocess.Popen(
            cmd, env=self._env(), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the model server exited with {self.proc.returncode}:\n"
                    f"{self.server_log()[-6000:]}"
                )
            if self.ping():
                log.info("model server ready at %s", self.url)
                return self
            time.sleep(0.5)
        log_text = self.server_log()
        self.stop()
        raise TimeoutError(
            f"the model server did not answer /ping within "
            f"{self.startup_timeout:.0f}s:\n{log_text[-6000:]}"
        )

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def invoke(
        self,
        body: dict | str | bytes,
        timeout: float = 300.0,
        content_type: str = "application/json",
    ) -> Response:
        """``POST /invocations``; HTTP errors come back as a :class:`Response`, not an exception."""
        data = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        req = urllib.request.Request(
            f"{self.url}/invocations",
            data=data,
            method="POST",
            headers={"Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        return Response(status, parsed, text)

    def server_log(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after 10 s)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> ModelServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
