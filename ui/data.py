"""The pages' data layer: cached reads of the prompt registry and of recorded runs.

``st.cache_data`` with short ttls for what can change, no expiry for what cannot (a finished run's
events); writers clear the matching cache. Cached values are never mutated.
"""

from __future__ import annotations

from typing import Any

import streamlit as st


@st.cache_data(ttl=30, show_spinner=False)
def cached_prompts(tracking_uri: str) -> list[Any]:
    from core import prompts

    return prompts.list_prompts(tracking_uri=tracking_uri)


@st.cache_data(ttl=30, show_spinner=False)
def cached_versions(tracking_uri: str, name: str, with_aliases: bool = True) -> list[Any]:
    from core import prompts

    return prompts.list_versions(name, tracking_uri=tracking_uri, with_aliases=with_aliases)


@st.cache_data(ttl=3600, show_spinner="Registering the bundled baselines...")
def bundled_prompts(tracking_uri: str) -> list[Any]:
    from core import prompts

    return prompts.ensure_bundled_prompts(tracking_uri=tracking_uri)


def runs_or_say_why(tracking_uri: str) -> list[Any] | None:
    """The store's optimization runs (:func:`cached_runs`), or None once the page says in one line
    that the store cannot be read."""
    try:
        return cached_runs(tracking_uri)
    except Exception as error:  # noqa: BLE001 - the store is unusable; one line
        from ui.shell import one_line

        st.error(f"The MLflow store cannot be read: {one_line(error)}")
        return None


@st.cache_data(ttl=10, show_spinner=False)
def cached_runs(tracking_uri: str) -> list[Any]:
    from core.runs import list_optimization_runs

    return list_optimization_runs(tracking_uri=tracking_uri)


@st.cache_data(max_entries=20, show_spinner="Loading the run from MLflow...")
def finished_events(tracking_uri: str, run_id: str) -> list[Any]:
    """Events of a run that has ended (they never change, so they are cached without expiry)."""
    from core.runs import get_run, load_events

    return load_events(get_run(run_id, tracking_uri=tracking_uri), tracking_uri=tracking_uri)


def open_run(ref: str, tracking_uri: str) -> Any:
    """:func:`core.runs.open_run` with ended runs' events read through the cache. A run whose process
    died is salvaged on the way, which the page then says."""
    from core.runs import open_run as open_any_run

    opened = open_any_run(
        ref, tracking_uri=tracking_uri, finished_events=lambda info: finished_events(tracking_uri, info.run_id)
    )
    if opened.salvaged:
        cached_runs.clear()
    return opened


def clear_registry_cache() -> None:
    cached_prompts.clear()
    cached_versions.clear()
