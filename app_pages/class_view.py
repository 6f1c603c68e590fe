"""Class: for the instructor, every participant's runs on one dataset side by side (a table and a scatter
of score against metric calls), and one sentence on what the class's budget and patience choices did."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core import charts, participants
from core.runs import RunInfo
from core.summary import counted
from core.templates import markdown_escape
from ui import data, shell, status

RUN_PARAM = "run"  # the Results page's run parameter
BEST_FILL = "background-color: #fff4d6"
FOLLOW_SECONDS = 15  # the run list is cached for 10 s (ui.data.cached_runs)

# The table's order: what differs between runs first, the long and mostly equal columns (scorer, name) last.
TABLE_COLUMNS = (
    "participant",
    "results",
    "best validation",
    "test",
    "metric calls",
    "budget",
    "patience",
    "seed",
    "cost",
    "seconds",
    "status",
    "started",
    "scorer",
    "run",
    "best of participant",
)

NO_NAMES_NOTE = (
    "No run here has a participant name yet, so every run is listed as *(no name)*. Each participant types "
    "their name in the sidebar's **Your name** field before they start a run (or opens the app's address "
    "with `?participant=alice` at the end); their runs are then tagged with it and show up here under it."
)


def render_dataset_picker(runs: list[RunInfo]) -> str:
    """The dataset to compare on, among those the runs used (the most used first, and by default)."""
    counts = dict(participants.class_datasets(runs))
    names = list(counts)
    if len(names) == 1:
        st.caption(f"Dataset: **{markdown_escape(names[0])}** ({counted(counts[names[0]], 'run')})")
        return names[0]
    return st.selectbox(
        "Dataset",
        names,
        key="class.dataset",
        format_func=lambda name: f"{name} ({counted(counts[name], 'run')})",
        help="Scores are only comparable on one dataset: the class's runs on the one chosen here.",
    )


def render_overview(table: pd.DataFrame) -> None:
    names = participants.named_participants(table)
    unnamed = int((table["participant"] == participants.NO_NAME).sum())
    finished = int((table["status"] == "finished").sum())
    going = int((table["status"] == "running").sum())
    parts = [counted(len(table), "run"), counted(len(names), "participant")]
    parts += [f"{finished} finished"] + ([f"{going} still running"] if going else [])
    parts += [f"{unnamed} without a name"] if unnamed and names else []
    st.caption(" · ".join(parts))
    if not names:
        st.info(NO_NAMES_NOTE, icon=":material/badge:")
    if finding := participants.class_finding(table):
        st.markdown(f"**{markdown_escape(finding)}**")


def render_scatter(table: pd.DataFrame) -> None:
    st.plotly_chart(charts.class_scatter_figure(table), width="stretch", key="class.scatter")


def render_table(table: pd.DataFrame) -> None:
    best_only = st.toggle(
        "Only the best run of each participant",
        key="class.best_only",
        help="Best validation score; fewer metric calls break a tie. Without this, those rows are highlighted.",
    )
    shown = participants.best_of_each(table) if best_only else table
    rows = shown.assign(results=[f"results?{RUN_PARAM}={run_id}" for run_id in shown["run id"]])
    # Whole percents read better on a projector than Streamlit's "percent" format (two decimals).
    rows = rows.assign(**{column: rows[column] * 100 for column in ("best validation", "test")})
    st.dataframe(
        rows[list(TABLE_COLUMNS)].style.apply(_best_fill, axis=1),
        hide_index=True,
        width="stretch",
        key="class.table",
        column_config=_column_config(),
    )
    st.caption(
        "Highlighted: each participant's best run. Click a column to sort; **open** shows that run on the "
        "Results page (in a new tab). *None*: not recorded (a test score without a test set, a cost when a "
        "model used has no known price, scores of a run still going)."
    )


def _best_fill(row: pd.Series) -> list[str]:
    return [BEST_FILL if row["best of participant"] else ""] * len(row)


def _column_config() -> dict[str, Any]:
    score = {"format": "%.0f%%", "width": 70}
    return {
        "participant": st.column_config.TextColumn(width=100, pinned=True),
        "results": st.column_config.LinkColumn("run", display_text="open", width=50, pinned=True),
        "best validation": st.column_config.NumberColumn("best val.", help="Best validation score", **score),
        "test": st.column_config.NumberColumn(help="The best candidate's test score (no test set: empty)", **score),
        "metric calls": st.column_config.NumberColumn("calls", help="Metric calls used", width=55),
        "budget": st.column_config.NumberColumn(width=60),
        "patience": st.column_config.NumberColumn(help="0: no early stop", width=64),
        "seed": st.column_config.NumberColumn(width=44),
        "scorer": st.column_config.TextColumn(width=170),
        "cost": st.column_config.NumberColumn(format="dollar", width=64),
        "seconds": st.column_config.NumberColumn(format="%.0f", width=64),
        "status": st.column_config.TextColumn(width=80),
        "best of participant": None,
        "run": st.column_config.TextColumn("run name", width=220),
        "started": st.column_config.DatetimeColumn(format="MMM D HH:mm", width=100),
    }


def render_class(tracking_uri: str) -> None:
    """Everything below the title, from the store's runs as they are now (re-read when following)."""
    runs = data.runs_or_say_why(tracking_uri)
    if runs is None:
        return
    if not runs:
        st.info(
            "No optimization runs in this store yet. When participants start runs on the Optimize page, "
            "they appear here, one row per run.",
            icon=":material/groups:",
        )
        st.page_link(shell.OPTIMIZE, label="Start one on the Optimize page", icon=":material/rocket_launch:")
        return
    table = participants.class_table(runs, dataset=render_dataset_picker(runs))
    render_overview(table)
    render_scatter(table)
    render_table(table)
    if st.button("Refresh", icon=":material/refresh:", key="class.refresh", help="Read the store's runs again"):
        data.cached_runs.clear()
        st.rerun()


def main() -> None:
    context = shell.app_context()
    st.title("Class")
    st.caption(
        "Every participant's runs on one dataset, side by side: how their budget and patience choices played out."
    )
    if not status.store_ready(context):
        return
    follow = st.toggle(
        f"Follow the class (every {FOLLOW_SECONDS} s)",
        key="class.follow",
        help="Reads the runs again by itself while participants run, so new points appear on the projector.",
    )
    st.fragment(render_class, run_every=FOLLOW_SECONDS if follow else None)(context.tracking_uri)


main()
