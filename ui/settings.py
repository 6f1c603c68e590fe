"""Choices that stay for the whole session, even on runs that do not draw their widgets.

Streamlit forgets the value of a widget that a script run does not draw (the Optimize page does not
draw its settings while a run is shown, say), so each page keeps a copy of its widgets' values under
``PAGE.kept`` and puts them back before the widgets are drawn again. Widgets kept this way take their
defaults from ``st.session_state.setdefault``, never from a ``value=`` argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st


def keep(page: str, keys: Iterable[str]) -> None:
    """Call at the top of the page, before its widgets: remembers the current value of each of
    ``keys`` that is set, and puts back the remembered value of each that Streamlit forgot.

    Every remembered value is set again on every run, through the Session State API: a widget drawn
    again after runs without it otherwise holds the value on the server but shows its default in the
    browser (the browser only takes a value that was set in the run that draws the widget)."""
    kept = st.session_state.setdefault(f"{page}.kept", {})
    for key in keys:
        if key in st.session_state:
            kept[key] = st.session_state[key]
        if key in kept:
            st.session_state[key] = kept[key]


def put(page: str, values: Mapping[str, Any]) -> None:
    """Set widget values (before the widgets are drawn in this run) and remember them."""
    kept = st.session_state.setdefault(f"{page}.kept", {})
    for key, value in values.items():
        st.session_state[key] = value
        kept[key] = value
