"""Where things live: the MLflow store, its artifacts, and the live folders of running optimizations.

With no configuration everything goes under ``GEPA_EXPLORER_HOME`` (default ``~/.gepa-explorer``):
``mlflow.db`` (SQLite tracking store and prompt registry), ``artifacts/`` and ``runs/``. Set
``MLFLOW_TRACKING_URI`` (or pass ``--tracking-uri``) to use a shared ``mlflow server`` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_EXPERIMENT = "GEPA Explorer"
HOME_ENV = "GEPA_EXPLORER_HOME"
UI_URL_ENV = "GEPA_EXPLORER_MLFLOW_UI_URL"


class StoreError(RuntimeError):
    """The MLflow store cannot be reached or used; the message says what to check."""


def explorer_home() -> Path:
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".gepa-explorer").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def runs_home() -> Path:
    path = explorer_home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(data: bytes, filename: str) -> Path:
    """Keep an uploaded dataset where a run process can read it; the same bytes reuse one file."""
    import hashlib

    folder = explorer_home() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(filename).name) or "dataset"
    path = folder / f"{hashlib.sha256(data).hexdigest()[:12]}-{safe}"
    if not path.exists():
        path.write_bytes(data)
    return path


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{explorer_home() / 'mlflow.db'}"


@dataclass(frozen=True)
class StoreInfo:
    """A tracking URI and what a user should be told about it."""

    tracking_uri: str

    @property
    def is_local(self) -> bool:
        return urlsplit(self.tracking_uri).scheme in ("sqlite", "file", "")

    @property
    def is_server(self) -> bool:
        return urlsplit(self.tracking_uri).scheme in ("http", "https")

    @property
    def ui_url(self) -> str | None:
        """MLflow's own UI for this store: the server itself, or for a local store the address in
        ``GEPA_EXPLORER_MLFLOW_UI_URL`` (where ``mlflow ui`` was started on the same file), if set."""
        if self.is_server:
            return self.tracking_uri.rstrip("/")
        return (os.environ.get(UI_URL_ENV) or "").rstrip("/") or None

    @property
    def label(self) -> str:
        if self.tracking_uri.startswith("sqlite:///"):
            return f"Local SQLite store {self.tracking_uri.removeprefix('sqlite:///')}"
        if self.is_server:
            return f"MLflow server {self.tracking_uri}"
        return self.tracking_uri


def configure_mlflow(tracking_uri: str | None = None) -> StoreInfo:
    """Point MLflow at ``tracking_uri`` (or the default) for this process and the prompt registry."""
    import mlflow

    uri = tracking_uri or default_tracking_uri()
    info = StoreInfo(uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if info.is_server:
        limit_http_retries()
        ping_server(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return info


def limit_http_retries() -> None:
    """MLflow's client retries an unreachable server for minutes by default; a few seconds is enough
    to ride out a blip, and an outage should be said at once (unless the user chose otherwise)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


def ping_server(uri: str, timeout: float = 5.0) -> None:
    """Raise :class:`StoreError` unless the MLflow server at ``uri`` answers its health check."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            raise StoreError(f"The MLflow server at {uri} answers with an error ({error.code}).") from None
    except (OSError, ValueError):
        raise StoreError(
            f"The MLflow server at {uri} does not answer: start it "
            "(mlflow server --host 127.0.0.1 --port 5000) or check the tracking URI."
        ) from None


def ensure_experiment(name: str = DEFAULT_EXPERIMENT) -> str:
    """The id of experiment ``name``, created on first use.

    On a local store its artifacts go to ``GEPA_EXPLORER_HOME/artifacts``, chosen on purpose rather
    than MLflow's ``./mlruns`` of whatever folder the app was started from.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        artifact_location = None
        if StoreInfo(mlflow.get_tracking_uri()).is_local:
            artifact_location = (explorer_home() / "artifacts").as_uri()
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:
            # Another process created it between our lookup and our create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id
    except MlflowException as error:
        raise StoreError(_store_message(error, mlflow.get_tracking_uri())) from None
    except OSError as error:
        raise StoreError(f"The MLflow store at {mlflow.get_tracking_uri()} cannot be used: {error}") from None


def check_store(tracking_uri: str | None = None) -> tuple[bool, str]:
    """Whether the store answers, with one line to show. Never raises; sets no global state."""
    info = StoreInfo(tracking_uri or default_tracking_uri())
    try:
        if info.is_server:
            ping_server(info.tracking_uri)
        elif info.tracking_uri.startswith("sqlite:///"):
            Path(info.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        import mlflow

        mlflow.MlflowClient(tracking_uri=info.tracking_uri).search_experiments(max_results=1)
    except StoreError as error:
        return False, str(error)
    except Exception as error:  # noqa: BLE001 - reported to the user as one line
        return False, _store_message(error, info.tracking_uri)
    return True, f"{info.label} answers"


def _store_message(error: BaseException, uri: str) -> str:
    text = " ".join(str(error).split())
    if "Connection refused" in text or "Max retries exceeded" in text or "Failed to establish" in text:
        return (
            "The MLflow server does not answer: start it (mlflow server --host 127.0.0.1 --port 5000) "
            "or check the tracking URI."
        )
    if "unsupported URI" in text or "maintenance mode" in text:
        return (
            f"The tracking URI {uri} is not a store GEPA Explorer can use: give http://HOST:PORT for an "
            "MLflow server, or sqlite:///PATH.db for a local file."
        )
    return f"The MLflow store cannot be used: {text[:300]}"
