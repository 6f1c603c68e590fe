"""GEPA Explorer: see, tune and trust GEPA prompt optimization in MLflow.

The entry point is a router: page objects, the shared sidebar, then the current page.
"""

import streamlit as st

from core import runs
from ui import passcode, shell, status

st.set_page_config(page_title="GEPA Explorer", page_icon=":material/genetics:", layout="wide")
passcode.require()  # a class server (GEPA_EXPLORER_CLASS_PASSCODE): nothing shown before the passcode

page = shell.navigation()
context = shell.render_sidebar()
st.session_state["app.context"] = context
status.prepare_store(context)
runs.warm_up()  # runs start from a process that has already imported what they need
page.run()
status.render_status(context)
