"""Where things live: the MLflow store, its artifacts, and the live folders of running optimizations.

With no configuration everything goes under ``GEPA_EXPLORER_HOME`` (default ``~/.gepa-explorer``):
``mlflow.db`` (SQLite tracking store and prompt registry), ``artifacts/`` and ``runs/``. Set
``MLFLOW_TRACKING_URI`` (or pass ``--tracking-uri``) to use a shared ``mlflow server`` instead.

Every process that opens a store (a page, a status check, a run, the CLI) goes through
:func:`prepare_store` first. MLflow creates and migrates a new SQLite schema in whichever process
opens the file first, and two processes doing it at once break each other ("table ... already
exists", "duplicate column name ..."): creation happens here, once, under a lock file beside the
database, and every other process waits for it. Store failures reach users as one line from
:func:`describe_store_error`, never as SQL.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from core.errors import InputError

T = TypeVar("T")

DEFAULT_EXPERIMENT = "GEPA Explorer"
HOME_ENV = "GEPA_EXPLORER_HOME"
UI_URL_ENV = "GEPA_EXPLORER_MLFLOW_UI_URL"
LOCK_SUFFIX = ".lock"
# A registration takes well under a second; one that holds a prompt's lock longer than this is stuck.
REGISTRY_LOCK_TIMEOUT_SECONDS = 120.0
READY_SUFFIX = ".ready"
# A first creation takes seconds; a store that took longer than this is stuck, not slow.
CREATION_TIMEOUT_SECONDS = 300.0
# Writes that meet a busy SQLite file (or a blip of a server) are tried this many times in all.
STORE_WRITE_ATTEMPTS = 6

# MLflow's database and server stores; its plain file store is in maintenance mode and refused.
USABLE_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")

_log = logging.getLogger(__name__)
_prepared: set[str] = set()


class StoreError(InputError, RuntimeError):
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
    """Keep an uploaded dataset where a run process can read it, under its own file name (a run names
    its dataset after the file) in a folder named by its content: the same bytes reuse one file, and
    two different files of one name do not overwrite each other."""
    import hashlib

    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(filename).name).lstrip(".")
    folder = explorer_home() / "uploads" / hashlib.sha256(data).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (safe or "dataset")
    if not path.exists():
        path.write_bytes(data)
    return path


@contextmanager
def registry_lock(tracking_uri: str, prompt_name: str) -> Iterator[None]:
    """Hold the lock of one prompt of one store, for "find the version with this text, else register
    it": two sessions or runs doing that at once would both find nothing and both register the text.

    The lock is a file: beside a SQLite store's database, under ``GEPA_EXPLORER_HOME`` for a server,
    so it covers every process of this machine (runs on other machines against one server are not
    serialised by it).

    Raises:
        StoreError: another process held the lock for minutes (a stuck registration).
    """
    import hashlib

    from filelock import FileLock, Timeout

    key = hashlib.sha256(f"{tracking_uri}|{prompt_name}".encode()).hexdigest()[:16]
    database = StoreInfo(tracking_uri).sqlite_path
    folder = database.parent if database is not None else explorer_home() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{database.name if database else 'registry'}.prompt-{key}{LOCK_SUFFIX}"
    try:
        with FileLock(str(path), timeout=REGISTRY_LOCK_TIMEOUT_SECONDS):
            yield
    except Timeout:
        raise StoreError(
            f"Another process has been registering a version of '{prompt_name}' for minutes; if none is "
            f"running any more, delete {path} and try again."
        ) from None


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
    def sqlite_path(self) -> Path | None:
        """The database file of a ``sqlite:///PATH`` store (relative paths resolve against the current
        folder, as MLflow resolves them); None for any other kind of store."""
        if not self.tracking_uri.startswith("sqlite:///"):
            return None
        path = unquote(self.tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])
        return Path(path).absolute() if path and path != ":memory:" else None

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
    def kind(self) -> str:
        """What kind of store this is, in a few words (no path or address)."""
        if self.tracking_uri.startswith("sqlite:///"):
            return "Local SQLite store"
        return "MLflow server" if self.is_server else "MLflow store"

    @property
    def label(self) -> str:
        if self.tracking_uri.startswith("sqlite:///"):
            return f"Local SQLite store {self.tracking_uri.removeprefix('sqlite:///')}"
        if self.is_server:
            return f"MLflow server {self.tracking_uri}"
        return self.tracking_uri


def configure_mlflow(tracking_uri: str | None = None) -> StoreInfo:
    """Point MLflow at ``tracking_uri`` (or the default) for this process and the prompt registry,
    once :func:`prepare_store` has made sure the store can be used."""
    import mlflow

    info = prepare_store(tracking_uri)
    mlflow.set_tracking_uri(info.tracking_uri)
    mlflow.set_registry_uri(info.tracking_uri)
    return info


def prepare_store(tracking_uri: str | None = None, *, timeout: float = CREATION_TIMEOUT_SECONDS) -> StoreInfo:
    """Make the store at ``tracking_uri`` (or the default) ready to use, and say where it is.

    A SQLite store is created, or finished when an interrupted start left it half-made, under an
    exclusive lock file beside the database (``mlflow.db.lock``); a process that finds another one
    creating it waits, so nobody ever opens a half-migrated schema. New stores use SQLite's WAL
    journal, so readers and writers of many runs and sessions do not block each other. A store that
    is ready costs a file read (``mlflow.db.ready`` records the MLflow version and schema it was
    made with), with no MLflow import. A server is asked for its health check.

    Raises:
        StoreError: the store cannot be used; the message says what failed and what to do.
    """
    info = StoreInfo(tracking_uri or default_tracking_uri())
    if urlsplit(info.tracking_uri).scheme.split("+")[0] not in USABLE_SCHEMES:
        raise StoreError(
            f"The tracking URI {info.tracking_uri} is not a store GEPA Explorer can use: give http://HOST:PORT "
            "for an MLflow server, or sqlite:///PATH.db for a local file."
        )
    if info.is_server:
        limit_http_retries()
        ping_server(info.tracking_uri)
        return info
    path = info.sqlite_path
    if path is None or info.tracking_uri in _prepared:
        return info
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(
            f"The folder {path.parent} for the local store cannot be created ({error.strerror or error}): "
            "choose another folder with GEPA_EXPLORER_HOME or another tracking URI."
        ) from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise StoreError(
            f"The local store {path} is not writable: give this user write access to {path.parent}, "
            "or choose another folder with GEPA_EXPLORER_HOME."
        )
    if not _is_ready(path):
        _create_under_lock(info.tracking_uri, path, timeout)
    _prepared.add(info.tracking_uri)
    return info


def store_needs_creation(tracking_uri: str | None = None) -> bool:
    """Whether :func:`prepare_store` still has to create (or finish) this SQLite store: a first start."""
    info = StoreInfo(tracking_uri or default_tracking_uri())
    path = info.sqlite_path
    return path is not None and info.tracking_uri not in _prepared and not _is_ready(path)


def _installed_mlflow() -> str:
    from importlib.metadata import version

    return version("mlflow")


def _schema_of(path: Path) -> str | None:
    """The schema revision recorded in the database file, read without MLflow; None when it has none."""
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("select version_num from alembic_version").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return row[0] if row else None


def _is_ready(path: Path) -> bool:
    marker = path.with_name(path.name + READY_SUFFIX)
    if not path.exists() or not marker.exists():
        return False
    try:
        made = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return made.get("mlflow") == _installed_mlflow() and made.get("schema") == _schema_of(path)


def _create_under_lock(uri: str, path: Path, timeout: float) -> None:
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(path) + LOCK_SUFFIX, timeout=timeout):
            if not _is_ready(path):  # another process may have finished it while we waited
                _create_or_finish(uri, path)
    except Timeout:
        raise StoreError(
            f"Another process has been creating the local store {path} for over {timeout:.0f} s: "
            f"if none is running, delete {path}{LOCK_SUFFIX} and start again."
        ) from None
    except OSError as error:
        raise StoreError(f"The local store {path} cannot be used: {error.strerror or error}.") from None


def _create_or_finish(uri: str, path: Path) -> None:
    """Create the schema (or complete an interrupted creation), switch to WAL, write the marker."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is first imported
    from mlflow.store.db import utils

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)

    # Not MLflow's create_sqlalchemy_engine_with_retry: under the lock nothing races us, and its
    # ten retries would spend about 100 s on a file that is not a database.
    engine = utils.create_sqlalchemy_engine(uri)
    try:
        if not utils._all_tables_exist(engine):
            utils._initialize_tables(engine)
        head = utils._get_latest_schema_revision()
        if utils._get_schema_version(engine) != head:
            utils._upgrade_db(engine)
    except Exception as error:  # noqa: BLE001 - said as one line with what to do
        if "file is not a database" in str(error):
            raise StoreError(describe_store_error(error, uri)) from None
        raise StoreError(
            f"The local store {path} could not be set up ({_short_error(error)}). If it was left half-made by "
            "an interrupted start and holds nothing you need, move it aside and start again; if it was made "
            "by another MLflow version, use that version or another store."
        ) from None
    finally:
        engine.dispose()
    try:
        db = sqlite3.connect(path, timeout=30)
        try:
            db.execute("pragma journal_mode=wal")
        finally:
            db.close()
    except sqlite3.Error as error:  # the store works without WAL, only with more waiting
        _log.warning("could not switch %s to WAL: %s", path, error)
    marker = path.with_name(path.name + READY_SUFFIX)
    marker.write_text(json.dumps({"mlflow": _installed_mlflow(), "schema": _schema_of(path)}))


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

    def find_or_create() -> str:
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
        except MlflowException as error:
            # Another process created it between our lookup and our create.
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise error from None
            return experiment.experiment_id

    try:
        return retry_store(find_or_create)
    except (MlflowException, OSError) as error:
        raise StoreError(describe_store_error(error, mlflow.get_tracking_uri())) from None


def check_store(tracking_uri: str | None = None) -> tuple[bool, str]:
    """Whether the store answers, with one line to show. Never raises. A passing failure (a busy file,
    a server blip) is tried again by itself before it is reported."""
    info = StoreInfo(tracking_uri or default_tracking_uri())

    def probe() -> None:
        import mlflow

        prepare_store(info.tracking_uri)
        mlflow.MlflowClient(tracking_uri=info.tracking_uri).search_experiments(max_results=1)

    try:
        retry_store(probe, attempts=3)
    except StoreError as error:
        return False, str(error)
    except Exception as error:  # noqa: BLE001 - reported to the user as one line
        return False, describe_store_error(error, info.tracking_uri)
    return True, f"{info.label} answers"


def is_transient_store_error(error: BaseException) -> bool:
    """A failure that may pass by itself: a SQLite file busy with another writer, a server restarting."""
    text = str(error)
    code = getattr(error, "error_code", None)
    return (
        "database is locked" in text
        or "database table is locked" in text
        or code in ("TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED")
        or any(f"{status} Server Error" in text or f"error code {status}" in text for status in (502, 503, 504))
    )


def retry_store(call: Callable[[], T], *, attempts: int = STORE_WRITE_ATTEMPTS, base_delay: float = 0.2) -> T:
    """``call()``, tried again with growing, jittered pauses while it meets a transient store error
    (:func:`is_transient_store_error`); any other error, or the last one, is raised as it is."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:
            if attempt == attempts - 1 or not is_transient_store_error(error):
                raise
            time.sleep(base_delay * 2**attempt * (0.5 + random.random()))
    raise AssertionError("unreachable")


_SQL_TAIL = re.compile(r"\s*(\[SQL:|\[parameters:|\(Background on this error at:).*$", re.DOTALL)
_SQLALCHEMY_CLASS = re.compile(r"^\((?:sqlite3|psycopg2|pymysql)\.\w+\)\s*")


def _short_error(error: BaseException) -> str:
    """An exception's message without SQL statements, parameters or links to SQLAlchemy's docs."""
    text = _SQL_TAIL.sub("", str(error))
    text = _SQLALCHEMY_CLASS.sub("", " ".join(text.split()))
    return text[:200] or type(error).__name__


def describe_store_error(error: BaseException, uri: str) -> str:
    """One line a person can act on for a store failure: what failed and what to do. Never SQL."""
    info = StoreInfo(uri)
    text = " ".join(str(error).split())
    where = f"The local store {info.sqlite_path}" if info.sqlite_path else f"The MLflow store at {uri}"
    if isinstance(error, StoreError):
        return str(error)
    if "Connection refused" in text or "Max retries exceeded" in text or "Failed to establish" in text:
        return (
            f"The MLflow server at {uri} does not answer: start it (mlflow server --host 127.0.0.1 --port 5000) "
            "or check the tracking URI."
        )
    if "unsupported URI" in text or "maintenance mode" in text:
        return (
            f"The tracking URI {uri} is not a store GEPA Explorer can use: give http://HOST:PORT for an "
            "MLflow server, or sqlite:///PATH.db for a local file."
        )
    if "database is locked" in text or "database table is locked" in text:
        return f"{where} stayed busy with other writers for too long: try again in a moment."
    if "readonly database" in text or "read-only" in text:
        return f"{where} is read-only: give this user write access to it and its folder, or choose another store."
    if "unable to open database file" in text:
        return f"{where} cannot be opened: check that its folder exists and is writable."
    if "disk I/O error" in text or "database or disk is full" in text:
        return f"{where} cannot be written (the disk is full or failing): free some space or choose another store."
    if "file is not a database" in text:
        return f"{where} is not an SQLite database file: move it aside, or choose another store."
    if "no such table" in text or "no such column" in text or re.search(r"\b(table|index) \S+ already exists", text):
        return (
            f"{where} is not a complete MLflow store: if it holds nothing you need, move it aside and start "
            "again, or choose another store."
        )
    return f"{where} cannot be used: {_short_error(error)}"
