"""The class passcode gate: with ``GEPA_EXPLORER_CLASS_PASSCODE`` set, each browser session gives the
passcode once before the router shows any page (a refresh is a new session and asks again).

Session keys are prefixed ``gate.``; only whether the session passed is kept, never the passcode.
"""

from __future__ import annotations

import streamlit as st

from core.access import class_passcode, passcode_matches

PASSED_KEY = "gate.passed"
WRONG = "That is not the class passcode."
WIDTH = 420  # the form and its one line, not the whole screen


def locked() -> bool:
    """Whether this session must still give the class passcode (never when none is set)."""
    return class_passcode() is not None and st.session_state.get(PASSED_KEY) is not True


def render_gate() -> None:
    """The passcode form, and nothing else of the app; the right passcode reruns the app unlocked."""
    st.title("Class passcode")
    st.write("This GEPA Explorer is for a class: type the passcode your instructor gave you.")
    with st.form("gate.form", clear_on_submit=True, width=WIDTH):
        typed = st.text_input("Passcode", type="password", key="gate.passcode", autocomplete="current-password")
        entered = st.form_submit_button("Enter", type="primary", key="gate.enter")
    if not entered:
        return
    passcode = class_passcode()
    if passcode is not None and passcode_matches(typed or "", passcode):
        st.session_state[PASSED_KEY] = True
        st.rerun()
    st.error(WRONG, width=WIDTH)
