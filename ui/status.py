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
from core.health import (
    HealthBoard,
    StatusRow,
    model_status_in_child,
    retry_failures_soon,
    store_status_in_child,
)
from core.models import ModelConfig
from core.templates import markdown_escape
from ui.shell import AppContext

STATUS_TTL = 60.0
FAILURE_RETRY_SECONDS = 3.0
STORE_TTL = retry_failures_soon(STATUS_TTL, lambda answer: bool(answer[0]))
# A model check starts a child process that imports the model clients: repeated less eagerly.
MODELS_TTL = retry_failures_soon(300.0, lambda rows: all(ok for _, ok, _ in rows), failure_ttl=30.0)
PREPARING = "Preparing the local MLflow store, first start only…"


def prepare_store(context: AppContext) -> None:
    """Create the local store before the first page is served (a first start only takes seconds; later
    starts find it ready from a file read). A store that cannot be prepared is said by the page."""
    if store.StoreInfo(context.tracking_uri).sqlite_path is None:
        return
    try:
        if store.store_needs_creation(context.tracking_uri):
            with st.spinner(PREPARING):
                store.prepare_store(context.tracking_uri)
        else:
            store.prepare_store(context.tracking_uri)
    except store.StoreError:
        pass  # store_ready (on the pages that use the store) says what is wrong


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
    return board.peek(("store-here", uri), ttl=STORE_TTL) or board.get(
        ("store", uri), lambda: store_status_in_child(uri), ttl=STORE_TTL
    )


def _models_check(models: ModelConfig) -> Callable[[], list[StatusRow]]:
    return lambda: model_status_in_child(models)


def store_ready(context: AppContext) -> bool:
    """Say so, in one line, when the store does not answer; pages then stop there. Waits for the check
    (a page that reads the store cannot do anything before it anyway). A failure is checked again
    every few seconds by itself, and the page comes back as soon as the store answers."""
    board = health_board()
    key = ("store-here", context.tracking_uri)
    result = board.get(key, _store_check(context.tracking_uri), ttl=STORE_TTL)
    if result is None:
        with st.spinner("Opening the MLflow store..."):
            result = board.wait(key, timeout=120)
    ok, message = result or (False, "The MLflow store did not answer in time.")
    if not ok:
        st.error(
            f"{markdown_escape(message)} If the tracking URI is wrong, change it in the sidebar.",
            icon=":material/database:",
        )
        _store_retry(context)
    return ok


@st.fragment(run_every=FAILURE_RETRY_SECONDS)
def _store_retry(context: AppContext) -> None:
    """Checks the store again every few seconds and shows the page as soon as it answers."""
    board = health_board()
    key = ("store-here", context.tracking_uri)
    result = board.get(key, _store_check(context.tracking_uri), ttl=STORE_TTL)
    if result is not None and result[0]:
        st.rerun()
    st.caption("Checking again by itself every few seconds…")


def render_status(context: AppContext) -> None:
    """The sidebar's status line: does the store answer, do the models answer. Checked in the
    background, so pages never wait for it; it fills in when the answers arrive, and a failure is
    checked again by itself until it clears."""
    store_result, model_result = _answers(context)
    with st.sidebar:
        if _all_good(context, store_result, model_result):
            _status_lines(context, store_result, model_result)
        else:
            _status_polling(context)


def _answers(context: AppContext) -> tuple[Any, Any]:
    board = health_board()
    store_result = _store_status(board, context.tracking_uri)
    model_result = None
    if context.models is not None:
        model_result = board.get(("models", _models_key(context.models)), _models_check(context.models), ttl=MODELS_TTL)
    return store_result, model_result


def _all_good(context: AppContext, store_result: Any, model_result: Any) -> bool:
    if store_result is None or not store_result[0]:
        return False
    return context.models is None or (model_result is not None and all(ok for _, ok, _ in model_result))


@st.fragment(run_every=FAILURE_RETRY_SECONDS)
def _status_polling(context: AppContext) -> None:
    """Polls the board while an answer is missing or a failure stands; once everything answers it
    reruns the page, which then draws the settled status without a fragment, so the timer stops."""
    store_now, models_now = _answers(context)
    if _all_good(context, store_now, models_now):
        st.rerun()
    if store_now is None or (context.models is not None and models_now is None):
        st.divider()
        st.caption("Checking the store and the models...")
        return
    _status_lines(context, store_now, models_now)


def _status_lines(context: AppContext, store_result: tuple[bool, str], model_result: Any) -> None:
    st.divider()
    ok, message = store_result
    if ok:  # where it is, the tracking URI field above and the command below say
        st.success(f"Store: {context.store.kind} answers", icon=":material/database:")
    else:
        st.error(f"Store: {markdown_escape(message)}", icon=":material/database:")
    if context.store.ui_url:
        st.link_button("Open MLflow UI", context.store.ui_url)
    else:
        st.caption("MLflow's own UI for this store, in a terminal:")
        st.code(f"mlflow ui --backend-store-uri {context.tracking_uri}", language="bash", wrap_lines=False)
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
