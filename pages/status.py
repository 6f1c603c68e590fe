"""The sidebar's status line: does the store answer, do the models answer?

The checks run on one background board per server process (:mod:`core.health`), never in a page's
script run, so a page shows at once and the answers fill in when they arrive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import streamlit as st

from core import store
from core.health import HealthBoard, StatusRow, model_status_in_child, store_status_in_child
from core.models import ModelConfig
from core.templates import markdown_escape
from pages.shell import AppContext

STATUS_TTL = 60.0


@st.cache_resource
def health_board() -> HealthBoard:
    """One board per server process: checks run in its threads, never in a page's script run."""
    return HealthBoard()


def _store_check(uri: str) -> Callable[[], tuple[bool, str]]:
    """In this process: for pages that read the store, which need MLflow loaded here anyway."""
    return lambda: store.check_store(uri)


def _store_status(board: HealthBoard, uri: str) -> tuple[bool, str] | None:
    """The sidebar's store line: a page's own check when there is one, else a check in a child process
    (so a page that does not read the store is not slowed by MLflow loading in the background)."""
    return board.peek(("store-here", uri), ttl=STATUS_TTL) or board.get(
        ("store", uri), lambda: store_status_in_child(uri), ttl=STATUS_TTL
    )


def _models_check(models: ModelConfig) -> Callable[[], list[StatusRow]]:
    return lambda: model_status_in_child(models)


def store_ready(context: AppContext) -> bool:
    """Say so, in one line, when the store does not answer; pages then stop there. Waits for the check
    (a page that reads the store cannot do anything before it anyway)."""
    board = health_board()
    key = ("store-here", context.tracking_uri)
    result = board.get(key, _store_check(context.tracking_uri), ttl=STATUS_TTL)
    if result is None:
        with st.spinner("Opening the MLflow store..."):
            result = board.wait(key, timeout=120)
    ok, message = result or (False, "The MLflow store did not answer in time.")
    if not ok:
        st.error(
            f"{markdown_escape(message)} Change the tracking URI in the sidebar, or start the server, "
            "then press Check again."
        )
    return ok


def render_status(context: AppContext) -> None:
    """The sidebar's status line: does the store answer, do the models answer. Checked in the
    background, so pages never wait for it; it fills in when the answers arrive."""
    board = health_board()
    store_result = _store_status(board, context.tracking_uri)
    model_result = None
    if context.models is not None:
        model_result = board.get(("models", _models_key(context.models)), _models_check(context.models), ttl=300)
    pending = store_result is None or (context.models is not None and model_result is None)
    with st.sidebar:
        (_status_waiting if pending else _status_lines)(context, store_result, model_result)


@st.fragment(run_every=1.0)
def _status_waiting(context: AppContext, store_result: Any, model_result: Any) -> None:
    """Polls the board until every answer is in, then reruns the page once: the settled status is drawn
    without a fragment, so the timer stops."""
    board = health_board()
    store_now = _store_status(board, context.tracking_uri)
    models_now = None
    if context.models is not None:
        models_now = board.get(("models", _models_key(context.models)), _models_check(context.models), ttl=300)
    if store_now is None or (context.models is not None and models_now is None):
        st.divider()
        st.caption("Checking the store and the models...")
        return
    st.rerun()


def _status_lines(context: AppContext, store_result: tuple[bool, str], model_result: Any) -> None:
    st.divider()
    ok, message = store_result
    (st.success if ok else st.error)(f"Store: {markdown_escape(message)}", icon=":material/database:")
    if context.store.ui_url:
        st.link_button("Open MLflow UI", context.store.ui_url)
    else:
        st.caption(f"MLflow's own UI for this store: `mlflow ui --backend-store-uri {context.tracking_uri}`")
    for role, line_ok, line in model_result or []:
        (st.success if line_ok else st.error)(
            f"{role.capitalize()} model: {markdown_escape(line)}", icon=":material/smart_toy:"
        )
    if st.button("Check again", key="sidebar.recheck"):
        health_board().forget()
        st.rerun()


def _models_key(models: ModelConfig) -> str:
    secret = hashlib.sha256((models.api_key or "").encode()).hexdigest()[:12]
    return f"{models.public_dict()}|{secret}"
