"""The test services themselves: each starts, answers, and is gone once its fixture ends."""

import socket
import urllib.request
import uuid
from pathlib import Path

import psycopg2
import pytest
import redis
from services import create_database, running_mlflow_on_postgres, running_postgres, running_redis

pytestmark = pytest.mark.services


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def pid_gone(pid: int) -> bool:
    """Exited: no such process, or a zombie (a daemon's parent here is an init that may not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def raw_reply(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(200)


def test_redis_answers(redis_url):
    client = redis.Redis.from_url(redis_url)
    assert client.ping()
    assert client.dbsize() == 0  # a fresh server for each test


def test_redis_keeps_nothing_on_disk(redis_url):
    client = redis.Redis.from_url(redis_url)
    assert client.config_get("save") == {"save": ""}
    assert client.config_get("appendonly") == {"appendonly": "no"}


def test_redis_is_gone_after_its_context():
    with running_redis() as server:
        assert redis.Redis.from_url(server.url).ping()
    assert server.process.poll() is not None
    assert port_closed(server.port)
    assert not server.root.exists()


def test_redis_with_a_password_refuses_clients_without_it():
    with running_redis(password='s3cret with/odd:chars@"') as server:
        assert redis.Redis.from_url(server.url).ping()
        assert raw_reply(server.port, b"PING\r\n").startswith(b"-NOAUTH")


def test_postgres_answers(postgres_url):
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        assert cursor.fetchone()[0].startswith("15")
        cursor.execute("SELECT current_user, current_database()")
        assert cursor.fetchone() == ("gepa", "gepa")
    connection.close()


def test_postgres_listens_on_loopback_only(postgres_server):
    with psycopg2.connect(postgres_server.url) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW listen_addresses")
        assert cursor.fetchone()[0] == "127.0.0.1"
    connection.close()


def test_create_database_gives_an_empty_database_of_the_same_role(postgres_url):
    name = f"extra_{uuid.uuid4().hex[:8]}"
    url = create_database(postgres_url, name)
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        assert cursor.fetchone() == ("gepa", name)
    connection.close()


def test_postgres_with_a_password_refuses_clients_without_it():
    with running_postgres(password="pw with spaces&symbols", user="mlflow", database="mlflow") as server:
        psycopg2.connect(server.url).close()
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(host="127.0.0.1", port=server.port, user="mlflow", dbname="mlflow").close()


def test_postgres_is_gone_after_its_context():
    with running_postgres() as server:
        psycopg2.connect(server.url).close()
        assert (server.root / "data" / "PG_VERSION").exists()
    assert port_closed(server.port)
    assert pid_gone(server.pid)
    assert not server.root.exists()


def test_mlflow_server_on_postgres_answers_and_stores_artifacts(mlflow_postgres_url, tmp_path):
    import mlflow

    assert urllib.request.urlopen(f"{mlflow_postgres_url}/health", timeout=5).read() == b"OK"
    client = mlflow.MlflowClient(tracking_uri=mlflow_postgres_url)
    experiment_id = client.create_experiment(f"services-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    note = tmp_path / "note.txt"
    note.write_text("through the server")
    client.log_artifact(run.info.run_id, str(note))
    assert client.get_experiment(experiment_id).artifact_location.startswith("mlflow-artifacts:")
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
    downloaded = client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path / "back"))
    assert Path(downloaded).read_text() == "through the server"


def test_mlflow_server_keeps_its_runs_in_postgres_and_its_artifacts_in_the_destination(postgres_url, tmp_path):
    import mlflow

    database = create_database(postgres_url, f"mlflow_{uuid.uuid4().hex[:8]}")
    with running_mlflow_on_postgres(database) as server:
        client = mlflow.MlflowClient(tracking_uri=server.url)
        run = client.create_run(client.create_experiment("kept"))
        note = tmp_path / "note.txt"
        note.write_text("proxied")
        client.log_artifact(run.info.run_id, str(note))
        stored = [p for p in server.artifacts.rglob("note.txt")]
        assert [p.read_text() for p in stored] == ["proxied"]
    with psycopg2.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_uuid FROM runs")
        assert cursor.fetchall() == [(run.info.run_id,)]
    connection.close()
    assert server.process.poll() is not None
    assert port_closed(int(server.url.rsplit(":", 1)[1]))
    assert not server.artifacts.parent.exists()


def test_a_missing_binary_fails_naming_the_debian_package(monkeypatch, tmp_path):
    import services

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(services, "POSTGRES_ROOTS", tmp_path)
    with pytest.raises(services.ServiceError, match="Debian's package redis-server"), running_redis():
        pass
    with pytest.raises(services.ServiceError, match="Debian's package postgresql"), running_postgres():
        pass
