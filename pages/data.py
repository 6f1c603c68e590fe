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


@st.cache_data(ttl=10, show_spinner=False)
def cached_runs(tracking_uri: str) -> list[Any]:
    from core.runs import list_optimization_runs

    return list_optimization_runs(tracking_uri=tracking_uri)


@st.cache_data(max_entries=20, show_spinner="Loading the run from MLflow...")
def finished_events(tracking_uri: str, run_id: str) -> list[dict[str, Any]]:
    """Events of a run that has ended (they never change, so they are cached without expiry)."""
    from core.runs import get_run, load_events

    return load_events(get_run(run_id, tracking_uri=tracking_uri), tracking_uri=tracking_uri)


def clear_registry_cache() -> None:
    cached_prompts.clear()
    cached_versions.clear()


def salvaged(info: Any, tracking_uri: str) -> Any:
    """``info``, or its new record after salvaging it when its worker process died (said on the page)."""
    from core.runs import salvage_if_orphaned

    fresh = salvage_if_orphaned(info, tracking_uri=tracking_uri)
    if fresh is None:
        return info
    st.warning("This run's process ended unexpectedly; what it recorded was saved to MLflow.")
    cached_runs.clear()
    return fresh
