"""What every page shares: the sidebar (store, models, status), the data layer and small widgets.

Session keys are prefixed ``sidebar.``. Reads go through ``st.cache_data`` with a short ttl and are
cleared after writes; nothing cached is ever mutated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from core import store
from core.health import HealthBoard
from core.models import PROVIDER_CHOICES, ModelConfig, model_config_for
from core.offline_model import MODEL_NAME as OFFLINE_MODEL

store.limit_http_retries()
STATUS_TTL = 60.0

SIMULATED_NOTE = (
    "The offline demo model is **simulated**: a deterministic stand-in that knows the bundled questions "
    "and imitates the habits of chat models (full sentences, trailing periods, spelled-out numbers...). "
    "It is not a language model."
)


ROUTED = "app.routed"


def navigation() -> Any:
    """The app's pages, registered with ``st.navigation`` (the router calls this on every run)."""
    pages = [
        st.Page("pages/welcome.py", title="Welcome", icon=":material/waving_hand:", default=True),
        st.Page("pages/prompts.py", title="Prompts", icon=":material/edit_note:", url_path="prompts"),
        st.Page("pages/optimize.py", title="Optimize", icon=":material/rocket_launch:", url_path="optimize"),
        st.Page("pages/results.py", title="Results", icon=":material/insights:", url_path="results"),
    ]
    return st.navigation(pages)


def require_router() -> None:
    """Hand over to the router when a page file was run on its own.

    Until some session has run the router, Streamlit serves ``pages/NAME.py`` directly for a URL such
    as ``/results?run=...`` (its older multipage mode), without the sidebar or the page list. Registering
    the pages and rerunning sends the same URL through the router.
    """
    if not st.session_state.get(ROUTED):
        navigation()
        st.rerun()


@dataclass(frozen=True)
class AppContext:
    """The choices made in the sidebar: where the store is and which models to use."""

    tracking_uri: str
    models: ModelConfig | None
    model_error: str | None

    @property
    def store(self) -> store.StoreInfo:
        return store.StoreInfo(self.tracking_uri)


def init_state() -> None:
    st.session_state.setdefault("sidebar.tracking_uri", store.default_tracking_uri())
    st.session_state.setdefault("sidebar.provider", "offline")
    st.session_state.setdefault("sidebar.base_url", "")
    st.session_state.setdefault("sidebar.model", "")
    st.session_state.setdefault("sidebar.reflection_model", "")
    st.session_state.setdefault("sidebar.api_key", "")
    st.session_state.setdefault("sidebar.offline_delay", 0)
    st.session_state.setdefault("sidebar.offline_errors", 0.0)


def render_sidebar() -> AppContext:
    """Store and model settings; returns the context pages use. The status line is filled later."""
    init_state()
    with st.sidebar:
        st.subheader("MLflow store")
        st.text_input(
            "Tracking URI",
            key="sidebar.tracking_uri",
            help="A local SQLite file by default. For shared use, point it at an `mlflow server`, "
            "for example http://127.0.0.1:5000.",
        )
        st.subheader("Models")
        choice = st.radio(
            "Provider",
            list(PROVIDER_CHOICES),
            format_func=PROVIDER_CHOICES.get,
            key="sidebar.provider",
        )
        if choice == "offline":
            st.caption(SIMULATED_NOTE)
            with st.expander("Simulate a slower or flaky model"):
                st.slider(
                    "Latency per call (ms)",
                    0,
                    1000,
                    step=50,
                    key="sidebar.offline_delay",
                    help="Slows the demo down so a class can watch proposals arrive.",
                )
                st.slider(
                    "Share of calls that fail",
                    0.0,
                    0.5,
                    step=0.05,
                    key="sidebar.offline_errors",
                    help="Failed calls are retried with backoff; shows the engine's retries at work.",
                )
        else:
            render_provider_fields(choice)
    context = current_context()
    if context.model_error:
        st.sidebar.error(context.model_error)
    return context


def render_provider_fields(choice: str) -> None:
    if choice == "compatible":
        st.text_input("Base URL", key="sidebar.base_url", placeholder="http://127.0.0.1:11434/v1")
    st.text_input("Task model", key="sidebar.model", placeholder="gpt-4o-mini" if choice == "openai" else "llama3.1")
    st.text_input(
        "Reflection model",
        key="sidebar.reflection_model",
        placeholder="gpt-4o" if choice == "openai" else "same as the task model",
        help="Called through litellm inside GEPA to propose new prompts.",
    )
    st.text_input(
        "API key",
        key="sidebar.api_key",
        type="password",
        help="Kept only in this browser session; never saved, logged or sent to MLflow. "
        "Leave empty to use OPENAI_API_KEY from the environment.",
    )


def app_context() -> AppContext:
    """The context the router put in session state (or, for a page run on its own, a fresh one)."""
    context = st.session_state.get("app.context")
    return context if isinstance(context, AppContext) else current_context()


def current_context() -> AppContext:
    state = st.session_state
    uri = (state.get("sidebar.tracking_uri") or "").strip() or store.default_tracking_uri()
    key = state.get("sidebar.api_key") or None
    try:
        if state.get("sidebar.provider", "offline") == "openai" and not key:
            models = ModelConfig.from_env(
                "openai",
                model=state.get("sidebar.model") or None,
                reflection_model=state.get("sidebar.reflection_model") or None,
            )
        else:
            models = model_config_for(
                state.get("sidebar.provider", "offline"),
                base_url=state.get("sidebar.base_url"),
                model=state.get("sidebar.model"),
                reflection_model=state.get("sidebar.reflection_model"),
                api_key=key,
                simulated_delay_ms=float(state.get("sidebar.offline_delay", 0)),
                simulated_error_rate=float(state.get("sidebar.offline_errors", 0.0)),
            )
    except ValueError as error:
        return AppContext(uri, None, str(error))
    return AppContext(uri, models, None)


@st.cache_resource
def health_board() -> HealthBoard:
    """One board per server process: checks run in its threads, never in a page's script run."""
    return HealthBoard()


def _store_check(uri: str) -> Callable[[], tuple[bool, str]]:
    return lambda: store.check_store(uri)


def _models_check(models: ModelConfig) -> Callable[[], list[tuple[str, bool, str]]]:
    def check() -> list[tuple[str, bool, str]]:
        from core.models import check_model

        rows = []
        for role in ("task", "reflection"):
            result = check_model(models, role=role, through_litellm=False)
            label = f"{result.model} answers" if result.ok else result.message
            if models.is_offline and result.ok:
                label = f"{OFFLINE_MODEL} (simulated) answers"
            rows.append((role, result.ok, label))
        return rows

    return check


def store_ready(context: AppContext) -> bool:
    """Say so, in one line, when the store does not answer; pages then stop there. Waits for the check
    (a page that reads the store cannot do anything before it anyway)."""
    board = health_board()
    key = ("store", context.tracking_uri)
    result = board.get(key, _store_check(context.tracking_uri), ttl=STATUS_TTL)
    if result is None:
        with st.spinner("Opening the MLflow store..."):
            result = board.wait(key, timeout=120)
    ok, message = result or (False, "The MLflow store did not answer in time.")
    if not ok:
        st.error(f"{message} Change the tracking URI in the sidebar, or start the server, then press Check again.")
    return ok


def render_status(context: AppContext) -> None:
    """The sidebar's status line: does the store answer, do the models answer. Checked in the
    background, so pages never wait for it; it fills in when the answers arrive."""
    board = health_board()
    store_result = board.get(("store", context.tracking_uri), _store_check(context.tracking_uri), ttl=STATUS_TTL)
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
    store_now = board.get(("store", context.tracking_uri), _store_check(context.tracking_uri), ttl=STATUS_TTL)
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
    (st.success if ok else st.error)(f"Store: {message}", icon=":material/database:")
    if context.store.ui_url:
        st.link_button("Open MLflow UI", context.store.ui_url)
    else:
        st.caption(f"MLflow's own UI for this store: `mlflow ui --backend-store-uri {context.tracking_uri}`")
    for role, line_ok, line in model_result or []:
        (st.success if line_ok else st.error)(f"{role.capitalize()} model: {line}", icon=":material/smart_toy:")
    if st.button("Check again", key="sidebar.recheck"):
        health_board().forget()
        st.rerun()


def _models_key(models: ModelConfig) -> str:
    secret = hashlib.sha256((models.api_key or "").encode()).hexdigest()[:12]
    return f"{models.public_dict()}|{secret}"


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def render_dataset_picker(prefix: str) -> Any:
    """Choose a bundled dataset or upload one (validated on the spot). Returns (Dataset, bundled
    entry or None) or None when nothing usable is chosen; problems are shown row by row."""
    from core.datasets import DatasetError, bundled_datasets, load_dataset, parse_dataset

    bundled = bundled_datasets()
    options = [b.key for b in bundled] + ["upload"]
    labels = {b.key: b.title for b in bundled} | {"upload": "Upload your own (JSONL, JSON or CSV)"}
    choice = st.selectbox("Dataset", options, format_func=labels.get, key=f"{prefix}.dataset")
    if choice != "upload":
        entry = next(b for b in bundled if b.key == choice)
        st.caption(entry.description)
        return load_dataset(entry.path), entry
    upload = st.file_uploader(
        "Dataset file",
        type=["jsonl", "json", "csv"],
        key=f"{prefix}.upload",
        help="Rows in the MLflow shape {'inputs': {...}, 'expectations': {'expected_response': ...}} or flat "
        "rows with one column per template variable plus expected_response (or answer). UTF-8, up to 20 MB "
        "and 5,000 rows.",
    )
    if upload is None:
        return None
    data = upload.getvalue()
    try:
        dataset = parse_dataset(data, upload.name)
    except DatasetError as error:
        st.error(f"{upload.name} cannot be used: fix these rows and upload it again.")
        st.dataframe(
            [{"row": p.row, "field": p.field, "problem": p.message} for p in error.problems],
            hide_index=True,
            width="stretch",
        )
        return None
    path = store.save_upload(data, upload.name)
    from core.datasets import Dataset

    return Dataset(dataset.name, str(path), dataset.examples, dataset.fields), None


def render_rows(dataset: Any, *, limit: int = 200) -> None:
    rows = [{"row": e.row, **e.inputs, "expected": e.expected} for e in dataset.examples[:limit]]
    st.dataframe(rows, hide_index=True, width="stretch", height=min(38 + 35 * len(rows), 320))
    if len(dataset) > limit:
        st.caption(f"Showing the first {limit} of {len(dataset)} rows.")
