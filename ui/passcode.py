"""The class passcode: with ``GEPA_EXPLORER_CLASS_PASSCODE`` set (``scripts/workshop --network`` requires
it), nothing of the app is shown until the passcode is typed, once per browser session."""

from __future__ import annotations

import hmac
import os

import streamlit as st

PASSCODE_ENV = "GEPA_EXPLORER_CLASS_PASSCODE"


def passcode_matches(given: str, expected: str) -> bool:
    """Whether ``given`` is the class passcode (compared in constant time)."""
    return hmac.compare_digest(given.strip().encode(), expected.strip().encode())


def require() -> None:
    """Stop the script here, showing only the passcode form, until this session has typed it."""
    expected = os.environ.get(PASSCODE_ENV, "").strip()
    if not expected or st.session_state.get("app.passcode_ok"):
        return
    st.title("GEPA Explorer")
    with st.form("app.passcode_form"):
        given = st.text_input("Class passcode", type="password", key="app.passcode", help="Your instructor has it.")
        sent = st.form_submit_button("Enter")
    if sent and passcode_matches(given, expected):
        st.session_state["app.passcode_ok"] = True
        st.rerun()
    if sent:
        st.error("That is not the class passcode.")
    st.stop()
