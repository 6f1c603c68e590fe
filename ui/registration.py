"""The one button that registers a candidate of a recorded run, used by the Optimize and Results pages.

Whether a candidate may be registered is :func:`core.registration.registration_blocker`'s decision;
the button is disabled with that reason otherwise.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.analysis import RunView
from core.registration import Registration, describe_registered, registration_blocker
from core.templates import markdown_escape
from ui import data, shell


def render_register_button(
    view: RunView, info: Any, candidate: int, tracking_uri: str, *, key: str, label: str | None = None
) -> Registration | None:
    """A button registering ``candidate`` of the run ``info`` as a new version of its baseline's prompt;
    returns what the click registered (None: not clicked, or it failed, which is said)."""
    blocker = registration_blocker(view, candidate)
    label = label or f"Register candidate {candidate} as a new version of {view.baseline.name}"
    clicked = st.button(
        label, key=key, disabled=blocker is not None, help=f"Not possible: {blocker}." if blocker else None
    )
    if not clicked:
        return None
    from core.runs import register_run_candidate

    try:
        registration = register_run_candidate(info, candidate, tracking_uri=tracking_uri)
    except Exception as error:  # noqa: BLE001 - shown as one line
        st.error(shell.one_line(error))
        return None
    data.clear_registry_cache()
    said = markdown_escape(describe_registered(registration.as_event(), this_run=info.run_id))
    if registration.existing:
        st.info(f"Candidate {candidate}: {said}")
    else:
        st.success(said)
    return registration
