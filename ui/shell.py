"""What every page shares: the sidebar (store, models, status), the data layer and small widgets.

Session keys are prefixed ``sidebar.``. Reads go through ``st.cache_data`` with a short ttl and are
cleared after writes; nothing cached is ever mutated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import streamlit as st

from core import store
from core.models import PROVIDER_CHOICES, ModelConfig, model_config_for
from core.templates import markdown_escape

store.limit_http_retries()

SIMULATED_NOTE = (
    "The offline demo model is **simulated**: a deterministic stand-in that knows the bundled questions "
    "and imitates the habits of chat models (full sentences, trailing periods, spelled-out numbers...). "
    "It is not a language model."
)


PARTICIPANT_PARAM = "participant"  # the sidebar's name field, bound to the address
PRICE_ROLES = ("task", "reflection", "judge")

WELCOME = "app_pages/welcome.py"
PROMPTS = "app_pages/prompts.py"
OPTIMIZE = "app_pages/optimize.py"
RESULTS = "app_pages/results.py"
CLASS = "app_pages/class_view.py"


def navigation(position: Literal["sidebar", "hidden"] = "sidebar") -> Any:
    """The app's pages, registered with ``st.navigation`` (the router calls this on every run); hidden
    keeps the address's page for after the class passcode without listing the pages."""
    pages = [
        st.Page(WELCOME, title="Welcome", icon=":material/waving_hand:", default=True),
        st.Page(PROMPTS, title="Prompts", icon=":material/edit_note:", url_path="prompts"),
        st.Page(OPTIMIZE, title="Optimize", icon=":material/rocket_launch:", url_path="optimize"),
        st.Page(RESULTS, title="Results", icon=":material/insights:", url_path="results"),
        st.Page(CLASS, title="Class", icon=":material/groups:", url_path="class"),
    ]
    return st.navigation(pages, position=position)


@dataclass(frozen=True)
class AppContext:
    """The choices made in the sidebar: where the store is and which models to use."""

    tracking_uri: str
    models: ModelConfig | None
    model_error: str | None
    participant: str | None = None
    prices: Mapping[str, tuple[float, float] | None] = field(default_factory=dict)
    setting_errors: tuple[str, ...] = ()

    def price_fields(self) -> dict[str, tuple[float, float] | None]:
        """The prices given in the sidebar as :class:`~core.config.OptimizationConfig` fields."""
        return {f"{role}_price": self.prices.get(role) for role in PRICE_ROLES}

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
    for role in PRICE_ROLES:
        st.session_state.setdefault(f"sidebar.price.{role}", "")


def render_sidebar() -> AppContext:
    """Store and model settings; returns the context pages use. The status line is filled later."""
    init_state()
    with st.sidebar:
        st.text_input(
            "Your name",
            key=PARTICIPANT_PARAM,
            bind="query-params",
            placeholder="e.g. alice (optional)",
            help="In a class: tags your runs and registers your optimized prompts as yourname.prompt, so "
            "they never mix with anyone else's; Results can show only yours. Kept in the address, so a "
            "bookmark or a reload keeps it.",
        )
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
            help="An OpenAI-compatible endpoint is any server that speaks OpenAI's API: Ollama, vLLM, "
            "llama.cpp server, LM Studio.",
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
        render_price_fields(choice)
    context = current_context()
    if context.model_error:
        st.sidebar.error(context.model_error)
    for problem in context.setting_errors:
        st.sidebar.error(problem)
    return context


def render_price_fields(choice: str) -> None:
    """Prices per million tokens, for models litellm's bundled list does not know (or to override it)."""
    if choice == "offline":
        return  # the simulated model costs nothing, and says so
    with st.expander("Prices (USD per million tokens)"):
        st.caption(
            "Input, output: for example 0.15, 0.60. Empty: OpenAI's own models are priced from litellm's "
            "bundled list; any other model's cost is shown as unknown, never as $0."
        )
        for role in PRICE_ROLES:
            st.text_input(f"{role.capitalize()} model", key=f"sidebar.price.{role}", placeholder="in, out")


def render_provider_fields(choice: str) -> None:
    if choice == "compatible":
        st.text_input("Base URL", key="sidebar.base_url", placeholder="http://127.0.0.1:11434/v1")
    st.text_input("Task model", key="sidebar.model", placeholder="gpt-4o-mini" if choice == "openai" else "llama3.1")
    st.text_input(
        "Reflection model",
        key="sidebar.reflection_model",
        placeholder="gpt-4o" if choice == "openai" else "same as the task model",
        help="Called by GEPA (with the openai client, at the same endpoint) to propose new prompts.",
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
    participant, prices, problems = _participant_and_prices(state)
    return AppContext(uri, models, None, participant, prices, problems)


def _participant_and_prices(state: Any) -> tuple[str | None, dict[str, tuple[float, float] | None], tuple[str, ...]]:
    """The sidebar's participant name and prices, and one line per field that does not parse."""
    from core.errors import InputError
    from core.participants import participant_name
    from core.pricing import Price

    problems = []
    try:
        participant = participant_name(str(state.get(PARTICIPANT_PARAM) or ""))
    except InputError as error:
        participant = None
        problems.append(f"Your name: {error}")
    prices: dict[str, tuple[float, float] | None] = {}
    if state.get("sidebar.provider", "offline") != "offline":
        for role in PRICE_ROLES:
            text = str(state.get(f"sidebar.price.{role}") or "").strip()
            prices[role] = None
            if text:
                try:
                    price = Price.parse(text)
                except ValueError as error:
                    problems.append(f"{role.capitalize()} model price: {error}")
                else:
                    prices[role] = (price.input_per_million, price.output_per_million)
    return participant, prices, tuple(problems)


def one_line(error: BaseException) -> str:
    """An error as one line of Markdown-escaped text: messages can quote model or server replies."""
    return markdown_escape(" ".join(str(error).split()) or type(error).__name__)
