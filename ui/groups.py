"""Repeats over seeds in the app: start a group from the Optimize page, follow its runs, and read the
group back on the Results page as a distribution instead of one lucky run."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import analysis, charts, groups
from core.templates import markdown_escape
from ui import data, shell

SEED_CHOICES = (1, 3, 5)


def render_seed_choice() -> int:
    """How many seeds to run the settings with (1: just the one seed)."""
    return st.radio(
        "Repeat with seeds",
        SEED_CHOICES,
        horizontal=True,
        key="optimize.repeats",
        format_func=lambda n: "once" if n == 1 else f"{n} seeds",
        help="Runs the same settings with this many seeds at once, each in its own process, so you can see "
        "how much of the gain is luck. The test rows are the same for every seed.",
    )


def views_of_group(uri: str, runs: list[Any], group: str) -> list[analysis.RunView]:
    """The views of every run of ``group`` in the store that has recorded something."""
    found = []
    for info in (r for r in runs if r.group == group):
        opened = data.open_run(info.run_id, uri)
        if opened.view is not None:
            found.append(opened.view)
    return found


@st.fragment(run_every=1.0)
def render_group_live(context: shell.AppContext, refs: list[str]) -> None:
    """One progress line per run of a group being run from this page; a rerun once all have ended."""
    lines, live = [], 0
    for ref in refs:
        opened = data.open_run(ref, context.tracking_uri)
        view = opened.view
        live += opened.is_live
        if view is None:
            lines.append(f"- starting… ({markdown_escape(opened.message or opened.phase)})")
            continue
        best = f"best {view.final_score:.1%}" if view.final_score is not None else "no score yet"
        lines.append(
            f"- **seed {view.seed}**: {view.metric_calls} of {view.budget} metric calls, {best} on validation"
            + ("" if opened.is_live else f" · {view.outcome}")
        )
    st.markdown("\n".join(lines))
    if not live:
        st.rerun()


def render_group_summary(uri: str, runs: list[Any], group: str) -> None:
    """The group's table, mean and spread, and every run's best-so-far curve on one chart."""
    views = views_of_group(uri, runs, group)
    if not views:
        st.info("None of this group's runs has recorded anything yet.")
        return
    table = groups.group_table(views)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            name: st.column_config.NumberColumn(format="percent")
            for name in ("validation before", "validation after", "test before", "test after")
        },
    )
    for label, column in (("validation", "validation after"), ("test", "test after")):
        spread = groups.spread(list(table[column].dropna()))
        if spread.n:
            size = len(views[0].val_examples if label == "validation" else views[0].test_examples)
            st.markdown(
                f"**{label.capitalize()} ({size} examples), best candidate over {spread.n} seeds**: mean "
                f"{spread.mean:.1%}, standard deviation {spread.std:.1%}"
            )
    render_group_charts(views)


def render_group_charts(views: list[analysis.RunView]) -> None:
    """Every seed's best-so-far curve on one chart, and what if over the finished ones."""
    curves = {f"seed {view.seed}": analysis.run_curve(view) for view in views}
    st.plotly_chart(charts.compare_runs_figure(curves), width="stretch", key="results.group_curves")
    finished = [v for v in views if not v.is_live]
    if finished:
        budgets, patiences = analysis.what_if_grid(finished[0])
        grid = groups.what_if_over_group(finished, budgets, patiences)
        st.markdown("**What if, over the group**: the mean best validation score the seeds would have ended with")
        st.plotly_chart(charts.what_if_group_figure(grid), width="stretch", key="results.group_what_if")
