"""GEPA Explorer: see, tune and trust GEPA prompt optimization in MLflow.

The entry point is a router: page objects, the class passcode (when the instructor set one), the shared
sidebar, then the current page.
"""

import streamlit as st

from core import runs
from ui import gate, shell, status

st.set_page_config(page_title="GEPA Explorer", page_icon=":material/genetics:", layout="wide")

locked = gate.locked()  # a class passcode is set and this session has not given it yet
page = shell.navigation(position="hidden" if locked else "sidebar")
if locked:
    gate.render_gate()
    st.stop()
context = shell.render_sidebar()
st.session_state["app.context"] = context
status.prepare_store(context)
runs.warm_up()  # runs start from a process that has already imported what they need
page.run()
status.render_status(context)
