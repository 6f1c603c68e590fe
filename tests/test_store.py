"""The store: one guarded creation, concurrent writers, and store errors a person can act on."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, cli_env
from core.store import (
    StoreError,
    describe_store_error,
    is_transient_store_error,
    prepare_store,
    retry_store,
    store_needs_creation,
)


def check_store_in_children(home: Path, uri: str, count: int) -> list[tuple[int, list]]:
    """``python -m core check-store`` (the status check's child) ``count`` times at once on ``uri``."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "core", "check-store"],
            cwd=ROOT,
            env=cli_env(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for child in children:  # all of them asked before any answer is read: they open the store together
        child.stdin.write(json.dumps({"tracking_uri": uri}))
        child.stdin.close()
    answers = []
    for child in children:
        out, err = child.stdout.read(), child.stderr.read()
        child.wait(timeout=300)
        answers.append((child.returncode, json.loads(out.strip().splitlines()[-1]) if out.strip() else [False, err]))
    return answers


@pytest.mark.slow
def test_eight_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    answers = check_store_in_children(tmp_path, uri, 8)
    assert all(code == 0 and ok for code, (ok, _) in answers), answers
    with sqlite3.connect(tmp_path / "new" / "mlflow.db") as db:
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert db.execute("select count(*) from experiments").fetchone()[0] == 1  # MLflow's Default, once


def test_a_prepared_store_is_recognised_without_creating_it_again(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert store_needs_creation(uri)
    prepare_store(uri)
    marker = json.loads((tmp_path / "mlflow.db.ready").read_text())
    assert marker["schema"] and marker["mlflow"]
    assert not store_needs_creation(uri)


def test_a_store_with_a_schema_this_mlflow_does_not_know_is_refused_with_advice(tmp_path, monkeypatch):
    from core import store

    path = tmp_path / "mlflow.db"
    prepare_store(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:  # as a newer MLflow, or a broken migration, leaves it
        db.execute("update alembic_version set version_num = 'not-a-revision'")
    db.close()
    monkeypatch.setattr(store, "_prepared", set())  # as a fresh process finds it
    with pytest.raises(StoreError, match="could not be set up.*move it aside"):
        prepare_store(f"sqlite:///{path}")


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="is not an SQLite database file"):
        prepare_store(f"sqlite:///{path}")


def test_a_folder_that_cannot_be_made_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot be created"):
        prepare_store(f"sqlite:///{tmp_path / 'file' / 'mlflow.db'}")


SQL_FAILURE = (
    "(sqlite3.OperationalError) duplicate column name: status_details\n"
    "[SQL: ALTER TABLE jobs ADD COLUMN status_details TEXT]\n"
    "(Background on this error at: https://sqlalche.me/e/20/e3q8)"
)


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ("(sqlite3.OperationalError) database is locked [SQL: INSERT INTO runs ...]", "busy with other writers"),
        ("(sqlite3.OperationalError) attempt to write a readonly database", "is read-only"),
        ("(sqlite3.OperationalError) unable to open database file", "cannot be opened"),
        (SQL_FAILURE, "cannot be used: duplicate column name: status_details"),
        ("(sqlite3.OperationalError) no such table: experiments", "not a complete MLflow store"),
    ],
)
def test_store_errors_are_one_line_in_plain_words(message, said):
    line = describe_store_error(RuntimeError(message), "sqlite:////tmp/x/mlflow.db")
    assert said in line and "/tmp/x/mlflow.db" in line
    assert "\n" not in line and "SQL" not in line and "sqlalche.me" not in line and "OperationalError" not in line


def test_an_unreachable_server_is_named_with_its_url():
    line = describe_store_error(RuntimeError("Max retries exceeded with url"), "http://127.0.0.1:9")
    assert line.startswith("The MLflow server at http://127.0.0.1:9 does not answer")


def test_a_busy_store_is_retried_and_other_errors_are_not():
    calls = []

    def busy_twice() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "written"

    assert retry_store(busy_twice, base_delay=0.001) == "written" and len(calls) == 3
    assert is_transient_store_error(RuntimeError("database is locked"))
    assert not is_transient_store_error(RuntimeError("no such table: runs"))
    with pytest.raises(ValueError):
        retry_store(lambda: (_ for _ in ()).throw(ValueError("bad")), base_delay=0.001)


def test_a_prompt_that_already_exists_is_not_mistaken_for_a_broken_store():
    line = describe_store_error(RuntimeError("RESOURCE_ALREADY_EXISTS: Prompt short-answer-qa already exists."), "x")
    assert "not a complete MLflow store" not in line
    sql = "(sqlite3.OperationalError) table experiments already exists"
    assert "not a complete MLflow store" in describe_store_error(RuntimeError(sql), "sqlite:////tmp/m.db")


@pytest.mark.slow
def test_processes_registering_the_bundled_baselines_at_once_add_each_only_once(explorer_home):
    code = (
        "from core.store import configure_mlflow; from core.prompts import ensure_bundled_prompts; "
        "configure_mlflow(); ensure_bundled_prompts()"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=cli_env(explorer_home), stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    assert all(child.wait(timeout=300) == 0 for child in children), [c.stderr.read()[-500:] for c in children]
    with sqlite3.connect(explorer_home / "mlflow.db") as db:
        versions = db.execute("select name, count(*) from model_versions group by name").fetchall()
    assert sorted(versions) == [("context-qa", 1), ("short-answer-qa", 1)]
