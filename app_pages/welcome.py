"""Welcome: what GEPA does, what each page is for, and one click to a first run."""

import streamlit as st

from core.budget import DEFAULT_BUDGET, DEFAULT_PATIENCE
from ui import instructor, shell

LOOP = """
digraph G {
  rankdir=LR; bgcolor="transparent";
  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", color="#4a6fa5", fontname="Helvetica", fontsize=12,
        target="_self"];
  edge [color="#4a6fa5", fontname="Helvetica", fontsize=10];
  E [label="1. Evaluate\\nscore a prompt\\non examples", href="%(evaluate)s", tooltip="See it in Replay"];
  R [label="2. Reflect\\na model reads\\nthe failures", href="%(reflect)s", tooltip="See it in Replay"];
  I [label="3. Improve\\nit proposes a\\nrevised prompt", href="%(improve)s", tooltip="See it in Replay"];
  S [label="4. Select\\nkeep it if better;\\nPareto front", href="%(select)s", tooltip="See it in Replay"];
  E -> R [label="scores + outputs"]; R -> I; I -> S [label="new candidate"]; S -> E [label="next parent"];
}
""" % {step: instructor.replay_href(step) for step, _ in instructor.LOOP_STEPS}


def render_intro() -> None:
    st.title("GEPA Explorer")
    st.markdown(
        "Watch **GEPA** (Genetic-Pareto) improve a prompt through **MLflow**'s `optimize_prompts`, "
        "and see exactly why it chose what it chose."
    )
    st.graphviz_chart(LOOP, width="content")
    instructor.render_replay_links()
    st.markdown(
        "Each **iteration** GEPA picks a parent prompt, runs it on a small *minibatch* of examples, asks a "
        "**reflection model** to rewrite it from the failures, and keeps the rewrite only if it does better. "
        "Kept candidates are scored on the validation set; every candidate that is best on at least one "
        "example stays on the **Pareto front**, so specialists survive. The **budget** caps the metric "
        "calls (one call = one prompt scored on one example); **patience** stops after iterations without "
        "improvement."
    )


def render_pages_guide() -> None:
    prompts, optimize = st.columns(2)  # two by two: four narrow cards wrap word by word at 1024 px
    results, group = st.columns(2)
    with prompts, st.container(border=True):
        st.page_link(shell.PROMPTS, label="**Prompts**", icon=":material/edit_note:")
        st.caption(
            "Write templates with {{variables}}, check them against a dataset, register versions, "
            "diff them and move aliases."
        )
    with optimize, st.container(border=True):
        st.page_link(shell.OPTIMIZE, label="**Optimize**", icon=":material/rocket_launch:")
        st.caption("Pick a dataset, a scorer, a budget and a patience; run GEPA and watch every proposal live.")
    with results, st.container(border=True):
        st.page_link(shell.RESULTS, label="**Results**", icon=":material/insights:")
        st.caption(
            "Candidates per iteration, the Pareto front, lineage, every example side by side, and the "
            "test score the search never saw."
        )
    with group, st.container(border=True):
        st.page_link(shell.CLASS, label="**Class**", icon=":material/groups:")
        st.caption("Every participant's runs on one dataset: what their budget and patience choices did.")


def render_start() -> None:
    st.subheader("Start in one click")
    st.write(
        "The default run optimizes the plain baseline *Answer this question: {{question}}* on 90 bundled "
        "short-answer questions: GEPA learns from 30, picks by 30 more (validation) and never sees the last "
        f"30 (test), scored once at the end. Exact match, a budget of {DEFAULT_BUDGET} metric calls, a "
        f"patience of {DEFAULT_PATIENCE}, and the models chosen in the sidebar (by default the offline demo "
        "model, which the sidebar describes)."
    )
    if st.button("Run the default optimization", type="primary", key="welcome.start"):
        st.session_state["optimize.autostart"] = True
        st.switch_page(shell.OPTIMIZE)


render_intro()
render_pages_guide()
render_start()
