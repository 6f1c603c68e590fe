"""For the instructor: a short "what to look at" note on each Results tab, and the Welcome page's loop
diagram with each step linked to where the Results page's Replay tab shows it."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from core.replay import STEP_TITLES, StepName
from ui import shell

TAB_PARAM = "results.tab"
"""The query parameter the Results tabs are bound to (their ``key``)."""
FOCUS_PARAM = "results.replay_focus"
"""The query parameter Replay's step picker is bound to (its ``key``)."""
REPLAY_TAB = "Replay"

TAB_NOTES: dict[str, str] = {
    "Candidates": (
        "Each point is a prompt GEPA kept, at the iteration that found it; the line is the best score so "
        "far. Flat stretches are iterations whose proposals were rejected or skipped: open them in Replay."
    ),
    "Pareto front": (
        "Count the members after each iteration: when two or more stay, each is best on some examples "
        "the others miss. Pick a late iteration and read *why each member is kept*."
    ),
    "Lineage": (
        "Follow the edges from the baseline: a parent with two children means GEPA went back to an older "
        "prompt, often a front member that was not the best, and improved it another way."
    ),
    "Score matrix": (
        "Read a column top to bottom: an example that turns green and then red again is one a later rule "
        "broke. Those trade-offs are why GEPA keeps a front instead of one best prompt."
    ),
    "Per example": (
        "Start with *regressed*: examples the baseline got right and the chosen candidate gets wrong show "
        "the side effect of a rule; compare the normalised outputs under each example."
    ),
    "What if": (
        "Find the smallest budget that reaches the best score: everything after it was spent without "
        "improvement. Patience moves the stop the same way, without a model call."
    ),
    "Seeds": (
        "Compare the seeds' final scores: the spread is how much of one run's gain is luck. Quote the mean "
        "and the spread, and watch whether the curves reach their best at the same budget."
    ),
    "Cost": (
        "Read where the dollars go: the task model's calls grow with the budget, the reflection model's "
        "with the iterations. For a judge run, compare its cost with what it changed against exact match."
    ),
    "Export": (
        "The run as one JSON file (schema in the README) opens in a notebook with `json.load`; "
        "`python -m core export RUN_ID --out FILE` writes the same file from a shell."
    ),
    REPLAY_TAB: (
        "Step through the run one iteration at a time. Watch for a parent that is not the best (Pareto "
        "selection at work), and compare what the reflection model was shown with the rule it wrote."
    ),
}

LOOP_STEPS: tuple[tuple[StepName, str], ...] = (
    ("evaluate", "1. Evaluate"),
    ("reflect", "2. Reflect"),
    ("improve", "3. Improve"),
    ("select", "4. Select"),
)


def render_note(tab: str) -> None:
    """The tab's "what to look at" note, collapsed; nothing for a tab without one."""
    note = TAB_NOTES.get(tab)
    if note:
        with st.expander("What to look at", icon=":material/school:"):
            st.markdown(note)


def replay_query(step: StepName) -> dict[str, str]:
    """The Results page's query parameters that open Replay at ``step`` (the step picker is bound to the
    URL by its labels, the step titles)."""
    return {TAB_PARAM: REPLAY_TAB, FOCUS_PARAM: STEP_TITLES[step]}


def replay_href(step: StepName) -> str:
    """A link to Replay at ``step``, relative to the Welcome page (the app's root)."""
    return "results?" + urlencode(replay_query(step))


def render_replay_links() -> None:
    """One link per step of the loop to Replay on the Results page (the newest run, or the one in the URL)."""
    st.caption("See each step in a recorded run, on the Results page's Replay tab:")
    for column, (step, label) in zip(st.columns(len(LOOP_STEPS)), LOOP_STEPS, strict=True):
        column.page_link(
            shell.RESULTS, label=label, icon=":material/replay:", query_params=replay_query(step), width="content"
        )
