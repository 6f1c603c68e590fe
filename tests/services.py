"""Real Redis, PostgreSQL and an ``mlflow server`` on PostgreSQL, started by the tests on free loopback
ports and stopped by them, also when a test fails.

Context managers (``running_redis``, ``running_postgres``, ``running_mlflow_on_postgres``) for tests
that need their own server, and fixtures yielding URLs for the rest:

* ``redis_url``: a fresh, empty ``redis-server`` for each test (it starts in milliseconds).
* ``postgres_url``: one PostgreSQL for the session (``initdb`` takes seconds), a role and database of
  its own; :func:`create_database` adds another database owned by that role.
* ``mlflow_postgres_url``: one ``mlflow server`` for the session on its own database of that PostgreSQL,
  artifacts proxied (``--artifacts-destination``) to a temporary folder.

Nothing is skipped: a missing binary fails with the Debian package that brings it (``scripts/test``
installs them). The servers are Debian's, never the system services: PostgreSQL runs from a temporary
data folder, as the ``postgres`` user when the tests run as root (PostgreSQL refuses root).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from conftest import free_port, running_mlflow_server

POSTGRES_ROOTS = Path("/usr/lib/postgresql")  # Debian: /usr/lib/postgresql/<major>/bin, not on PATH
POSTGRES_USER = "postgres"  # made by Debian's postgresql packages; runs the server when we are root
START_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it


class ServiceError(RuntimeError):
    """A test service could not be found or started; the message says which and why."""


# --------------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisServer:
    """A running ``redis-server`` on 127.0.0.1, without persistence; ``root`` holds its config and log."""

    port: int
    password: str | None
    root: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise ServiceError(
            "redis-server not found: install Debian's package redis-server (apt-get install -y redis-server; "
            "scripts/test does it)"
        )
    return found


@contextmanager
def running_redis(*, password: str | None = None, timeout: float = 30) -> Iterator[RedisServer]:
    """A ``redis-server`` on a free loopback port (``--save ""``, ``appendonly no``), with
    ``requirepass`` when ``password`` is given; stopped and its folder removed on exit."""
    binary = redis_binary()
    root = Path(tempfile.mkdtemp(prefix="gepa-redis-"))
    server: RedisServer | None = None
    try:
        for attempt in range(START_ATTEMPTS):
            server = _start_redis(binary, root, password, timeout)
            if server.process.poll() is None:
                break
            if "Address already in use" not in _tail(root / "redis.log") or attempt == START_ATTEMPTS - 1:
                raise ServiceError(f"redis-server did not start:\n{_tail(root / 'redis.log')}")
        assert server is not None
        yield server
    finally:
        if server is not None:
            _stop(server.process)
        shutil.rmtree(root, ignore_errors=True)


def _start_redis(binary: str, root: Path, password: str | None, timeout: float) -> RedisServer:
    import redis

    port = free_port()
    config = root / "redis.conf"
    lines = [f"port {port}", "bind 127.0.0.1", 'save ""', "appendonly no", f"dir {root}", "daemonize no"]
    if password:  # in the config file, not on the command line (ps); quoted, so any character goes
        lines.append("requirepass " + json.dumps(password, ensure_ascii=False))
    config.write_text("\n".join(lines) + "\n")
    with (root / "redis.log").open("w") as log:
        process = subprocess.Popen(
            [binary, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True
        )
    server = RedisServer(port, password, root, process)
    client = redis.Redis.from_url(server.url, socket_connect_timeout=1, socket_timeout=1)
    try:
        _wait(lambda: _redis_answers(client), process, timeout, "redis-server", root / "redis.log")
    finally:
        client.close()
    return server


def _redis_answers(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The URL of a fresh, empty ``redis-server`` of this test's own, without a password."""
    with running_redis() as server:
        yield server.url


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL cluster in a temporary folder ``root`` (data in ``root/data``, its Unix
    socket in ``root/socket``), listening on 127.0.0.1 only; ``user`` owns ``database``."""

    port: int
    user: str
    password: str | None
    database: str
    root: Path
    pid: int

    @property
    def url(self) -> str:
        return database_url(self.user, self.password, self.port, self.database)


def database_url(user: str, password: str | None, port: int, database: str) -> str:
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}" if password else quote(user, safe="")
    return f"postgresql://{auth}@127.0.0.1:{port}/{database}"


def postgres_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: the one on PATH, else Debian's newest
    ``/usr/lib/postgresql/<major>/bin``."""
    on_path = shutil.which("pg_ctl")
    if on_path is not None and (Path(on_path).resolve().parent / "initdb").exists():
        return Path(on_path).resolve().parent
    found = [p.parent for p in POSTGRES_ROOTS.glob("*/bin/pg_ctl") if (p.parent / "initdb").exists()]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise ServiceError(
            "initdb and pg_ctl not found (on PATH or in /usr/lib/postgresql/*/bin): install Debian's package "
            "postgresql (apt-get install -y postgresql; scripts/test does it)"
        )
    return found[-1]


def _server_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: ourselves, or the ``postgres`` user when we are root (None: ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_USER)
    except KeyError:
        raise ServiceError(
            f"PostgreSQL refuses to run as root and there is no '{POSTGRES_USER}' user: install Debian's "
            "package postgresql, which creates it (apt-get install -y postgresql; scripts/test does it)"
        ) from None


@contextmanager
def running_postgres(
    *, password: str | None = None, user: str = "gepa", database: str = "gepa", timeout: float = 60
) -> Iterator[PostgresServer]:
    """A fresh PostgreSQL on a free loopback port with a login role ``user`` (allowed to create
    databases) owning ``database``. With ``password``, TCP connections need it (scram-sha-256);
    without, they are trusted. Stopped and its folder removed on exit."""
    bin_dir = postgres_bin_dir()
    owner = _server_user()
    # Our own temp folder, not pytest's: pytest's are private to the user running the tests, which
    # the postgres user is not.
    root = Path(tempfile.mkdtemp(prefix="gepa-pg-", dir="/tmp" if owner else None))
    data, socket_dir, log = root / "data", root / "socket", root / "postgres.log"
    socket_dir.mkdir()
    if owner is not None:
        for path in (root, socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    try:
        auth_host = "scram-sha-256" if password else "trust"
        initdb = [bin_dir / "initdb", "-D", data, "-U", POSTGRES_USER, "-E", "UTF8", "--locale=C", "--no-sync"]
        _as_owner(owner, [*initdb, "--auth-local=trust", f"--auth-host={auth_host}", "--no-instructions"], root)
        for attempt in range(START_ATTEMPTS):
            port = free_port()
            options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1"
            # A throwaway cluster: durability costs time and buys nothing here.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            command = [bin_dir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", str(int(timeout)), "-o", options]
            completed = _as_owner(owner, [*command, "start"], root, check=False)
            if completed.returncode == 0:
                break
            if "Address already in use" not in _tail(log) or attempt == START_ATTEMPTS - 1:
                raise ServiceError(f"PostgreSQL did not start:\n{completed.stdout}{_tail(log)}")
        pid = int((data / "postmaster.pid").read_text().split()[0])
        _create_role_and_database(socket_dir, port, user, password, database)
        yield PostgresServer(port, user, password, database, root, pid)
    finally:
        if (data / "postmaster.pid").exists():
            _stop_postgres(bin_dir, owner, data, root)
        shutil.rmtree(root, ignore_errors=True)


def _as_owner(
    owner: pwd.struct_passwd | None, command: list, cwd: Path, *, check: bool = True
) -> subprocess.CompletedProcess:
    argv = [str(part) for part in command]
    if owner is not None:
        argv = [_runuser(), "-u", owner.pw_name, "--", *argv]
    completed = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and completed.returncode != 0:
        raise ServiceError(f"{Path(str(command[0])).name} failed:\n{completed.stdout}{completed.stderr}")
    return completed


def _runuser() -> str:
    # /usr/sbin is not on every PATH (a non-login root shell, say).
    found = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if found is None:
        raise ServiceError("runuser not found: install Debian's package util-linux (apt-get install -y util-linux)")
    return found


def _create_role_and_database(socket_dir: Path, port: int, user: str, password: str | None, database: str) -> None:
    import psycopg2
    from psycopg2 import sql

    # Over the Unix socket, where the superuser is trusted whatever the TCP rule says.
    admin = psycopg2.connect(host=str(socket_dir), port=port, user=POSTGRES_USER, dbname="postgres")
    try:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD %s").format(sql.Identifier(user)), (password,)
            )
            cursor.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user))
            )
    finally:
        admin.close()


def create_database(url: str, name: str) -> str:
    """Create database ``name`` owned by the role of ``url`` (a :class:`PostgresServer` URL) and return
    its URL: one more empty store on the same server."""
    import psycopg2
    from psycopg2 import sql

    connection = psycopg2.connect(url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def _stop_postgres(bin_dir: Path, owner: pwd.struct_passwd | None, data: Path, root: Path) -> None:
    pid = int((data / "postmaster.pid").read_text().split()[0])
    for mode in ("fast", "immediate"):
        stop = [bin_dir / "pg_ctl", "-D", data, "-m", mode, "-w", "-t", "30", "stop"]
        if _as_owner(owner, stop, root, check=False).returncode == 0:
            return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the session (see :func:`running_postgres`)."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the session PostgreSQL's own database, no password (trusted on loopback)."""
    return postgres_server.url


# --------------------------------------------------------------------------------------------------
# MLflow on PostgreSQL
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server``; the artifacts it proxies land in ``artifacts``."""

    url: str
    artifacts: Path
    process: subprocess.Popen


def store_uri(database: str) -> str:
    """``database`` (a ``postgresql://`` URL) as MLflow's backend store URI. SQLAlchemy 2.1, which MLflow
    installs, reads a bare ``postgresql://`` as psycopg 3; we ship psycopg2, so the driver is named."""
    return database.replace("postgresql://", "postgresql+psycopg2://", 1)


@contextmanager
def running_mlflow_on_postgres(database: str, root: Path | None = None) -> Iterator[MlflowServer]:
    """``mlflow server --backend-store-uri DATABASE --artifacts-destination ROOT/artifacts`` on a
    free loopback port (MLflow creates its schema in the empty database first); stopped on exit.
    Without ``root``, a temporary folder removed on exit holds the artifacts and the server's log."""
    folder = root or Path(tempfile.mkdtemp(prefix="gepa-mlflow-"))
    try:
        with running_mlflow_server(folder, backend_store_uri=store_uri(database)) as (url, process):
            yield MlflowServer(url, folder / "artifacts", process)
    finally:
        if root is None:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_postgres_url(postgres_url: str) -> Iterator[str]:
    """The URL of one ``mlflow server`` for the session, on its own database ``mlflow`` of the session
    PostgreSQL, artifacts proxied to a temporary folder. Tests share it: name experiments uniquely."""
    with running_mlflow_on_postgres(create_database(postgres_url, "mlflow")) as server:
        yield server.url


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------


def _wait(ready: Callable[[], bool], process: subprocess.Popen, timeout: float, what: str, log: Path) -> None:
    """Until ``ready()``; returns early when ``process`` exits (the caller looks at why)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return
        if time.monotonic() > deadline:
            _stop(process)
            raise ServiceError(f"{what} did not answer within {timeout:.0f} s:\n{_tail(log)}")
        time.sleep(0.02)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""
