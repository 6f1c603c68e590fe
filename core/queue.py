"""Runs on a Redis queue: RQ jobs run by warm workers on any machine, followed through Redis.

The queue executor keeps the contract of :mod:`core.executors` (one run per process, the run
outlives whoever started it, no key in a file or a log) with nothing shared between the app, the
workers and the client but Redis and the MLflow tracking server:

* **The job.** One RQ job per run, its id the run's reference (``job_id=ref``, ``job_timeout=-1``).
  Its argument is the run's public config (:meth:`OptimizationConfig.to_dict`, the tracking URI
  resolved by the submitter) and the bytes of any dataset file it names; the work horse makes its
  own run folder under its ``GEPA_EXPLORER_HOME`` and runs it through :func:`core.runs.run_in_folder`,
  the code path of every local worker.
* **Events.** Each event the run writes to its ``events.jsonl`` is also ``XADD``-ed to the stream
  ``gepa:run:<ref>:events`` (field ``event``, the JSON line); when the job ends the horse adds one
  ``end`` entry (status, error, the CLI summary, the worker's name). Followers ``XREAD BLOCK`` from
  the last id they saw, so a late or reconnecting one misses nothing. ``events.jsonl`` is logged to
  the MLflow run at the end as for every run; the stream expires a week after the end.
* **Cancel.** The key ``gepa:run:<ref>:cancel`` (JSON ``{"register_best": ...}``). The horse's
  guard thread copies it into the run folder's cancel file, which the run's stop callback checks
  at each iteration boundary, as for a local run. A job still queued is cancelled in RQ at once.
* **Liveness.** The horse holds ``gepa:run:<ref>:lease`` (``SET EX 15``, renewed every 5 s) and
  exits when its worker dies (its parent pid changes). A follower (CLI, app, benchmark) that sees
  the job started and the lease gone declares the run dead (:func:`declare_dead`): the MLflow run is
  marked FAILED with every event of the stream kept as its ``events.jsonl`` plus a ``run_finished``
  saying the worker died, and an ``end`` entry tells every other follower. RQ's own abandoned-job
  expiry (interval + 60 s, hard-coded) is too slow for "within a minute".
* **GEPA's state.** The run keeps GEPA's ``run_dir`` in its folder (``gepa/gepa_state.bin``, saved
  by GEPA before each iteration); the guard uploads it to the MLflow run (artifact ``gepa/``)
  whenever it changed, so :func:`core.resume` can continue the run on any worker.
* **API keys.** By default a worker uses the key in its own environment (``OPENAI_API_KEY``). A
  key the submitter gives travels Fernet-encrypted under a per-job key derived (HKDF-SHA256, the
  job's reference as context) from ``GEPA_EXPLORER_QUEUE_SECRET``, a Fernet key shared by the app
  and the workers through their environments and never through Redis. The ciphertext is not in the
  job: it sits in ``gepa:run:<ref>:key`` (expiring after a day) and the horse deletes it with
  ``GETDEL`` when it starts, so it lives no longer than the wait in the queue. Without the secret a
  submitted key is refused (one line), never sent in plain text.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from core.errors import InputError
from core.events import Event, RunFinished, RunStarted, decode_event
from core.rundir import RunDir, WorkerOutcome

if TYPE_CHECKING:
    import redis

    from core.config import OptimizationConfig

QUEUE_URL_ENV = "GEPA_EXPLORER_QUEUE_URL"
QUEUE_SECRET_ENV = "GEPA_EXPLORER_QUEUE_SECRET"
QUEUE_REF_ENV = "GEPA_EXPLORER_QUEUE_REF"  # set in a horse only: the run's tags name its queue job
WORKER_NAME_ENV = "GEPA_EXPLORER_WORKER_NAME"
QUEUE_NAME = "gepa-explorer"
LEASE_SECONDS = 15
LEASE_RENEW_SECONDS = 5
JOB_MONITORING_INTERVAL = 5
STREAM_MAXLEN = 200_000  # a safety net far above a run's few thousand events
STREAM_TTL_SECONDS = 7 * 24 * 3600
KEY_TTL_SECONDS = 24 * 3600
WORKER_ALIVE_SECONDS = 3 * JOB_MONITORING_INTERVAL + 5
# What a queued run needs beyond the fork server's list (core.forkserver.PRELOAD): imported by the
# worker command before it forks its RQ workers, so every horse starts warm.
QUEUE_PRELOAD = (
    "core.queue",
    "core.resume",
    "gepa.core.state",
    "gepa.strategies.batch_sampler",
    "gepa.strategies.candidate_selector",
    "mlflow.store.tracking.rest_store",
    "mlflow.store.artifact.http_artifact_repo",
    "cryptography.fernet",
    "cryptography.hazmat.primitives.kdf.hkdf",
    "rq",
)

_log = logging.getLogger(__name__)


class QueueError(InputError):
    """The queue cannot be used as given; the message says what to do."""


def events_key(ref: str) -> str:
    return f"gepa:run:{ref}:events"


def cancel_key(ref: str) -> str:
    return f"gepa:run:{ref}:cancel"


def lease_key(ref: str) -> str:
    return f"gepa:run:{ref}:lease"


def secret_key(ref: str) -> str:
    return f"gepa:run:{ref}:key"


def salvage_key(ref: str) -> str:
    return f"gepa:run:{ref}:salvage"


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and tags)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str) -> redis.Redis:
    """A client of the Redis at ``url`` that answered a PING.

    Raises:
        QueueError: not a redis:// URL, or nothing answers there (or the password is refused).
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise QueueError(f"--queue {redacted(url)} is not a Redis URL: give redis://HOST:PORT/DB")
    try:
        conn = redis.Redis.from_url(url, socket_connect_timeout=3, retry=Retry(NoBackoff(), 0))
        conn.ping()
    except (redis.RedisError, ValueError, OSError) as error:
        reason = " ".join(str(error).split())[:160]
        raise QueueError(
            f"cannot reach the queue at {redacted(url)} ({reason}): is redis-server running? start one with "
            "`redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no` (or scripts/workshop)"
        ) from None
    # The same client again, retrying as redis-py does by default, for the long-lived work.
    return redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


# --------------------------------------------------------------------------------------------------
# Keys that travel encrypted
# --------------------------------------------------------------------------------------------------


def _job_cipher(ref: str):
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    secret = os.environ.get(QUEUE_SECRET_ENV, "").strip()
    if not secret:
        raise QueueError(
            f"an API key can only travel through the queue encrypted: set {QUEUE_SECRET_ENV} to the same "
            "Fernet key for the app and the workers (python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'), or let the workers use the key in their own environment"
        )
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"gepa-explorer job {ref}".encode()).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_key(ref: str, api_key: str) -> bytes:
    return _job_cipher(ref).encrypt(api_key.encode())


def decrypt_key(ref: str, token: bytes) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _job_cipher(ref).decrypt(token).decode()
    except InvalidToken:
        raise QueueError(
            f"the API key sent with run {ref} cannot be decrypted: is {QUEUE_SECRET_ENV} the same "
            "for the app and this worker?"
        ) from None


# --------------------------------------------------------------------------------------------------
# Submitting
# --------------------------------------------------------------------------------------------------


def participant_key(api_key: str | None) -> str | None:
    """The key to send with a run the app submits: None for the app's own ``OPENAI_API_KEY`` (the
    workers use the key in their environment), else the key a participant typed."""
    return None if not api_key or api_key == os.environ.get("OPENAI_API_KEY") else api_key


def job_payload(config: OptimizationConfig) -> dict[str, Any]:
    """What travels in the job: the public config (tracking URI resolved here, where the user chose
    it) and the bytes of the dataset files it names, so the worker needs no shared folder."""
    from core.store import default_tracking_uri

    data = config.to_dict()
    data["tracking_uri"] = config.tracking_uri or default_tracking_uri()
    if urlsplit(data["tracking_uri"]).scheme not in ("http", "https"):
        raise QueueError(
            f"a queued run records to a tracking server its worker can reach, not {data['tracking_uri']}: start "
            "`mlflow server` (see the README, 'A class on one host') and set MLFLOW_TRACKING_URI or --tracking-uri "
            "to its http:// URL"
        )
    from core.datasets import bundled_dataset_at
    from core.executors import PROJECT_ROOT

    files: dict[str, str] = {}
    bundled: dict[str, str] = {}
    for name in ("dataset_path", "test_dataset_path"):
        if data.get(name) and bundled_dataset_at(data[name]) is not None:
            # A bundled set stays itself (its declared split): the worker has its own copy.
            bundled[name] = str(Path(data[name]).resolve().relative_to(PROJECT_ROOT))
            data[name] = None
        elif data.get(name):
            path = Path(data[name])
            try:
                files[name] = base64.b64encode(path.read_bytes()).decode()
            except OSError as error:
                raise QueueError(f"{path} cannot be read: {error.strerror or error}") from None
            data[name] = path.name
    return {"config": data, "files": files, "bundled": bundled}


class QueueExecutor:
    """Starts runs as RQ jobs on the Redis at ``url`` and follows them there (see the module docstring)."""

    def __init__(self, url: str):
        self.url = url
        self._conn: redis.Redis | None = None
        self._lock = threading.Lock()

    @property
    def conn(self) -> redis.Redis:
        with self._lock:
            if self._conn is None:
                self._conn = connect(self.url)
            return self._conn

    @property
    def queue(self):
        from rq import Queue

        return Queue(QUEUE_NAME, connection=self.conn)

    def warm_up(self) -> None:
        """Nothing to warm here: the workers are warm."""

    def start(self, folder: RunDir, *, api_key: str | None) -> QueueRunHandle:
        """Submit the run in ``folder`` (a scratch folder here; the worker makes its own). The app's
        own ``OPENAI_API_KEY`` is not sent: workers use the key in their environment."""
        from core.config import OptimizationConfig

        config = OptimizationConfig.from_dict(folder.read_config())
        return self.submit(config, api_key=participant_key(api_key), ref=folder.name)

    def submit(
        self,
        config: OptimizationConfig,
        *,
        api_key: str | None = None,
        ref: str | None = None,
        resume: str | None = None,
    ) -> QueueRunHandle:
        """Enqueue ``config`` as job ``ref`` (default: a new run folder name); ``api_key`` travels
        encrypted (refused without the shared secret); ``resume`` is the MLflow run it continues."""
        import uuid

        ref = ref or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        conn = self.conn  # an unreachable queue is said first
        payload = job_payload(config) | {"resume": resume, "key": bool(api_key)}
        if api_key:
            conn.set(secret_key(ref), encrypt_key(ref, api_key), ex=KEY_TTL_SECONDS)
        self.queue.enqueue(
            "core.queue.run_job",
            payload,
            job_id=ref,
            job_timeout=-1,
            result_ttl=KEY_TTL_SECONDS,
            failure_ttl=KEY_TTL_SECONDS,
            description=f"GEPA Explorer run {ref}",
        )
        return QueueRunHandle(ref, conn)

    def find(self, name: str) -> QueueRunHandle | None:
        """The queued run ``name``, if the queue knows it. Raises RunNotFound (one line) when the queue
        cannot be reached."""
        from rq.job import Job

        from core.runs import RunNotFound

        if not name or "/" in name:
            return None
        try:
            conn = self.conn
        except QueueError as error:
            raise RunNotFound(str(error)) from None
        if not (Job.exists(name, connection=conn) or conn.exists(events_key(name))):
            return None
        return QueueRunHandle(name, conn)


# --------------------------------------------------------------------------------------------------
# Following a run
# --------------------------------------------------------------------------------------------------


@dataclass
class QueueRunHandle:
    """A queued run followed through Redis; the same methods as :class:`core.runs.RunHandle`."""

    ref: str
    conn: Any = field(repr=False)
    pid: int | None = None
    _last_id: bytes = field(default=b"0-0", repr=False)
    _events: list[Event] = field(default_factory=list, repr=False)
    _given: int = field(default=0, repr=False)
    _end: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def run_dir(self) -> Path:
        """Only its name means anything: the reference pages keep (no folder here)."""
        return Path(self.ref)

    @property
    def run_id(self) -> str | None:
        if not self._events:
            self.pull()
        started = next((e for e in self._events if isinstance(e, RunStarted)), None)
        return started.mlflow.run_id if started else None

    def pull(self, *, block_ms: int | None = None) -> None:
        """Read what the stream has beyond what this handle has seen (waiting up to ``block_ms``)."""
        if self._end is not None:
            return
        while True:
            reply = self.conn.xread({events_key(self.ref): self._last_id}, count=1000, block=block_ms)
            if not reply:
                return
            [(_, entries)] = reply
            for entry_id, fields in entries:
                self._last_id = entry_id
                if b"end" in fields:
                    self._end = json.loads(fields[b"end"])
                    return
                self._events.append(decode_event(json.loads(fields[b"event"]), where=f"queued run {self.ref}"))
            block_ms = None

    def read_events(self) -> list[Event]:
        self.pull()
        return list(self._events)

    def new_events(self) -> list[Event]:
        self.pull()
        fresh = self._events[self._given :]
        self._given = len(self._events)
        return fresh

    def has_events(self) -> bool:
        return bool(self.read_events())

    def job(self):
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            return Job.fetch(self.ref, connection=self.conn)
        except NoSuchJobError:
            return None

    def status(self) -> str:
        """``queued``, ``started``, ``ended`` or ``dead`` (started, then its lease lapsed)."""
        self.pull()
        if self._end is not None:
            return "ended"
        job = self.job()
        state = job.get_status(refresh=False) if job is not None else None
        if state in ("queued", "deferred", "scheduled"):
            return "queued"
        if state == "canceled":
            return "ended"
        if self.conn.exists(lease_key(self.ref)):
            return "started"
        began = job.started_at if job is not None else None
        if began is not None and state == "started" and _age_seconds(began) < LEASE_SECONDS:
            return "started"
        if job is None and not self._events:
            return "ended"
        return "dead"

    def outcome(self) -> WorkerOutcome | None:
        """What the run reported when it ended; a dead worker's run is declared dead here first."""
        state = self.status()
        if state == "dead":
            declare_dead(self.conn, self.ref)
            self.pull()
        elif state == "ended" and self._end is None:
            return WorkerOutcome("rejected", "The run was cancelled before a worker took it.")
        if self._end is None:
            return None
        end = self._end
        return WorkerOutcome(end["status"], end.get("error"), end.get("summary") or {}, end.get("finished_at", 0.0))

    def queue_state(self) -> QueueState:
        return queue_state(self.conn, self.ref)

    @property
    def worker(self) -> str | None:
        return (self._end or {}).get("worker")

    def is_alive(self) -> bool:
        return self.status() in ("queued", "started")

    def cancel(self, *, register_best: bool = False) -> None:
        self.conn.set(cancel_key(self.ref), json.dumps({"register_best": register_best}), ex=KEY_TTL_SECONDS)
        job = self.job()
        if job is not None and job.get_status() == "queued":
            job.cancel()
            self.conn.delete(secret_key(self.ref))
            _add_end(self.conn, self.ref, {"status": "rejected", "error": "Cancelled before a worker took it."})

    @property
    def cancel_requested(self) -> bool:
        return bool(self.conn.exists(cancel_key(self.ref)))

    def follow(self, on_event: Callable[[Event], None] | None, *, poll_ms: int = 1000) -> WorkerOutcome:
        """Hand every event to ``on_event`` as it comes, until the run ends (or is declared dead)."""
        while True:
            self.pull(block_ms=poll_ms)
            for event in self.new_events():
                if on_event is not None:
                    on_event(event)
            outcome = self.outcome()
            if outcome is not None:
                for event in self.new_events():
                    if on_event is not None:
                        on_event(event)
                return outcome


def _age_seconds(moment: datetime) -> float:
    """Seconds since ``moment`` (RQ's datetimes are UTC, naive or aware)."""
    return (datetime.now(UTC) - moment.replace(tzinfo=UTC)).total_seconds()


def _add_end(conn: Any, ref: str, end: dict[str, Any]) -> None:
    key = events_key(ref)
    conn.xadd(key, {"end": json.dumps(end | {"finished_at": time.time()}, default=str)})
    conn.expire(key, STREAM_TTL_SECONDS)


def declare_dead(conn: Any, ref: str) -> bool:
    """Mark run ``ref`` FAILED in MLflow because its worker died, keeping every event of its stream
    (``events.jsonl`` plus a ``run_finished`` saying so), and end its stream; False when another
    follower is already doing it or it has ended."""
    if not conn.set(salvage_key(ref), "1", nx=True, ex=120):
        return False
    from core.events import EVENTS_FILE

    reader = QueueRunHandle(ref, conn)
    events = reader.read_events()
    if reader._end is not None:
        return False
    job = reader.job()
    worker = job.worker_name if job is not None else None
    error = (
        f"The worker running it ({worker or 'unknown'}) died: its lease lapsed {LEASE_SECONDS} s after its last "
        f"renewal. The {len(events)} events it recorded are kept; resume it with `python -m core resume RUN_ID`."
    )
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    if started is not None:
        import tempfile

        import mlflow

        from core import tags
        from core.store import retry_store

        finished = RunFinished(status="failed", stopped_by="error", error=error, not_registered_reason="the run failed")
        finished = dataclasses.replace(finished, seq=len(events), t=round(time.time(), 3))
        conn.xadd(events_key(ref), {"event": json.dumps(finished.to_dict(), default=str)})
        client = mlflow.MlflowClient(started.mlflow.tracking_uri)
        run_id = started.mlflow.run_id
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / EVENTS_FILE
            lines = [json.dumps(e.to_dict(), ensure_ascii=False, default=str) for e in [*events, finished]]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            retry_store(lambda: client.log_artifact(run_id, str(path)))
        retry_store(lambda: client.set_tag(run_id, tags.STATUS, "failed"))
        retry_store(lambda: client.set_tag(run_id, tags.STOPPED_BY, "error"))
        retry_store(lambda: client.set_tag(run_id, tags.ERROR, error))
        retry_store(lambda: client.set_terminated(run_id, status="FAILED"))
    _add_end(conn, ref, {"status": "failed", "error": error, "worker": worker, "dead": True})
    return True


# --------------------------------------------------------------------------------------------------
# The queue at a glance
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueState:
    """What the Optimize page says while a run waits: its place, the workers alive, runs in flight."""

    position: int | None  # 0-based place of the run in the queue; None once a worker has it
    waiting: int
    workers_alive: int
    in_flight: int

    def caption(self) -> str:
        place = f"#{self.position + 1} of {self.waiting} waiting · " if self.position is not None else ""
        workers = f"{self.workers_alive} worker{'s' if self.workers_alive != 1 else ''} alive"
        return f"Queued run: {place}{workers} · {self.in_flight} run{'s' if self.in_flight != 1 else ''} in flight"


def queue_state(conn: Any, ref: str | None = None) -> QueueState:
    """The queue now, and ``ref``'s place in it. Workers count as alive by a heartbeat younger
    than three monitoring intervals, not by their listing (which lags a dead one by a minute)."""
    from rq import Queue, Worker
    from rq.registry import StartedJobRegistry

    queue = Queue(QUEUE_NAME, connection=conn)
    alive = sum(
        1
        for worker in Worker.all(queue=queue)
        if worker.last_heartbeat is not None and _age_seconds(worker.last_heartbeat) < WORKER_ALIVE_SECONDS
    )
    position = queue.get_job_position(ref) if ref else None
    in_flight = len(StartedJobRegistry(queue=queue).get_job_ids(cleanup=False))
    return QueueState(position, queue.count, alive, in_flight)


# --------------------------------------------------------------------------------------------------
# In the work horse
# --------------------------------------------------------------------------------------------------


class _Guard(threading.Thread):
    """The horse's watchman: renews the lease, copies a cancel flag into the run folder, uploads
    GEPA's saved state when it changed, and ends the horse at once when its worker died."""

    def __init__(self, conn: Any, ref: str, folder: RunDir, tracking_uri: str):
        super().__init__(name="gepa-queue-guard", daemon=True)
        self.conn, self.ref, self.folder, self.tracking_uri = conn, ref, folder, tracking_uri
        self.parent = os.getppid()
        self.stopped = threading.Event()
        self._state_mtime = 0.0

    def run(self) -> None:
        last_lease = 0.0
        while not self.stopped.is_set():
            if os.getppid() != self.parent:
                _log.error("the worker of run %s died: ending its work horse", self.ref)
                os._exit(1)
            try:
                now = time.monotonic()
                if now - last_lease >= LEASE_RENEW_SECONDS:
                    self.conn.set(lease_key(self.ref), os.getpid(), ex=LEASE_SECONDS)
                    last_lease = now
                self.upload_state()  # as soon as GEPA saved: a worker may die at any moment
                flag = self.conn.get(cancel_key(self.ref))
                if flag is not None and not self.folder.cancel_requested:
                    register = bool(json.loads(flag).get("register_best"))
                    self.folder.request_cancel(register_best=register)
            except Exception:  # noqa: BLE001 - a Redis hiccup: the lease rule decides, not this thread
                _log.warning("queue guard of run %s", self.ref, exc_info=True)
            self.stopped.wait(0.5)

    def upload_state(self) -> None:
        """GEPA's saved state (and the random state beside it) to the MLflow run, artifacts
        ``gepa/``, when it changed since the last upload."""
        run_id = self.folder.run_id()
        try:
            mtime = self.folder.gepa_state_path.stat().st_mtime
            # The random state is written just after GEPA's: wait for it, so the two always match.
            ready = (self.folder.gepa_dir / "random_state.pkl").stat().st_mtime >= mtime
        except OSError:
            return
        if run_id is None or mtime == self._state_mtime or not ready:
            return
        import mlflow

        client = mlflow.MlflowClient(self.tracking_uri)
        for saved in self.folder.gepa_saved_files():
            client.log_artifact(run_id, str(saved), artifact_path="gepa")
        self._state_mtime = mtime


def run_job(payload: dict[str, Any]) -> dict[str, Any]:
    """The RQ job (in the horse): run one optimization as a local worker does, events to the stream."""
    from rq import get_current_job

    from core.store import runs_home

    job = get_current_job()
    conn, ref = job.connection, job.id
    worker = job.worker_name or os.environ.get("RQ_WORKER_ID", socket.gethostname())
    conn.set(lease_key(ref), os.getpid(), ex=LEASE_SECONDS)
    os.environ[QUEUE_REF_ENV] = ref
    os.environ[WORKER_NAME_ENV] = worker
    token = conn.getdel(secret_key(ref))
    end: dict[str, Any] = {"worker": worker}
    guard = None
    try:
        api_key = decrypt_key(ref, token) if token else None
        folder = RunDir(runs_home() / ref)
        folder.path.mkdir(parents=True, exist_ok=True)
        config = dict(payload["config"])
        from core.executors import PROJECT_ROOT

        for name, relative in (payload.get("bundled") or {}).items():
            config[name] = str(PROJECT_ROOT / relative)
        for name, content in (payload.get("files") or {}).items():
            path = folder.path / "inputs" / Path(config[name]).name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(base64.b64decode(content))
            config[name] = str(path)
        if payload.get("resume"):
            from core.resume import prepare_resume

            prepare_resume(payload["resume"], folder, config["tracking_uri"])
        folder.write_config(config)
        guard = _Guard(conn, ref, folder, config["tracking_uri"])
        guard.start()
        key = events_key(ref)

        def publish(event: Event) -> None:
            line = json.dumps(event.to_dict(), ensure_ascii=False, default=str)
            conn.xadd(key, {"event": line}, maxlen=STREAM_MAXLEN, approximate=True)

        from core.runs import run_in_folder

        outcome = run_in_folder(folder, api_key=api_key or os.environ.get("OPENAI_API_KEY"), on_event=publish)
        guard.upload_state()
        end |= {"status": outcome.status, "error": outcome.error, "summary": outcome.summary | {"worker": worker}}
    except Exception as error:  # noqa: BLE001 - one line to the followers; the traceback in the worker's log
        _log.exception("queued run %s", ref)
        end |= {"status": "failed", "error": " ".join(str(error).split())[:500]}
    finally:
        if guard is not None:
            guard.stopped.set()
        conn.delete(secret_key(ref))
        _add_end(conn, ref, end)
        conn.delete(lease_key(ref), cancel_key(ref))
    return {k: v for k, v in end.items() if k != "summary"}


# --------------------------------------------------------------------------------------------------
# The worker command
# --------------------------------------------------------------------------------------------------


def serve_workers(url: str, concurrency: int, *, name: str | None = None) -> int:
    """Body of ``python -m core worker --queue URL --concurrency N``: import what a run needs, then
    fork N RQ workers (each forks one horse per job, warm); on SIGTERM/SIGINT stop them and exit."""
    import gc
    import signal

    from core.forkserver import PRELOAD, preload

    connect(url).close()
    gc.disable()  # as the fork server does: no collection while importing, then one frozen generation
    failed = preload((*PRELOAD, *QUEUE_PRELOAD))
    gc.freeze()
    gc.enable()
    if failed:
        _log.warning("could not preload %s", failed)
    prefix = name or socket.gethostname()
    children: dict[int, int] = {}
    me = os.getpid()
    for index in range(concurrency):
        pid = os.fork()
        if pid == 0:
            os._exit(_one_worker(url, f"{prefix}-{me}-{index}"))
        children[pid] = index
    print(
        f"{concurrency} worker{'s' if concurrency != 1 else ''} on {redacted(url)} (queue {QUEUE_NAME}), "
        f"pids {sorted(children)}",
        flush=True,
    )
    stopping = threading.Event()

    def stop(_signum: int, _frame: Any) -> None:
        stopping.set()
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        children.pop(pid, None)
        if not stopping.is_set():
            status = 1
            _log.error("worker %s exited (%s)", pid, code)
    return status


def _stop_with_parent() -> None:
    """Linux: SIGTERM (RQ's warm shutdown: the current run finishes) when the worker command dies,
    so no RQ worker outlives ``python -m core worker`` killed with SIGKILL."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _one_worker(url: str, name: str) -> int:
    import signal

    import redis
    from rq import Queue, Worker

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _stop_with_parent()
    conn = redis.Redis.from_url(url)
    worker = Worker(
        [Queue(QUEUE_NAME, connection=conn)],
        connection=conn,
        name=name,
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
    )
    try:
        worker.work(logging_level="WARNING")
    except Exception:  # noqa: BLE001 - logged; the parent reports the exit
        _log.exception("worker %s", name)
        return 1
    return 0
