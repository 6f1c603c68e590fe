"""GEPA Explorer: see, tune and trust GEPA prompt optimization in MLflow.

The entry point is a router: page objects, the shared sidebar, then the current page.
"""

import streamlit as st

from pages import shell

st.set_page_config(page_title="GEPA Explorer", page_icon=":material/genetics:", layout="wide")

pages = [
    st.Page("pages/welcome.py", title="Welcome", icon=":material/waving_hand:", default=True),
    st.Page("pages/prompts.py", title="Prompts", icon=":material/edit_note:", url_path="prompts"),
    st.Page("pages/optimize.py", title="Optimize", icon=":material/rocket_launch:", url_path="optimize"),
    st.Page("pages/results.py", title="Results", icon=":material/insights:", url_path="results"),
]
page = st.navigation(pages)
context = shell.render_sidebar()
st.session_state["app.context"] = context
page.run()
shell.render_status(context)
