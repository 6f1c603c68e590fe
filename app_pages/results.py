"""Results: any recorded optimization run, rebuilt from its MLflow events: its scores on validation and
test, candidates, Pareto front, lineage, the candidate x example matrix, every example side by side,
what-if, cost, the seeds of its group, export, and a step-by-step replay of its iterations."""

from __future__ import annotations

import streamlit as st

from core import analysis, charts
from core.participants import runs_of
from core.runs import RunInfo, run_labels, run_rows
from core.templates import markdown_escape
from ui import data, instructor, replay, results_views, shell, status

RUN_PARAM = "run"
GROUP_PARAM = "group"  # ?group=<id>: the Optimize page's link to a repeat over seeds
WHOSE_KEY = "results.whose"
SEEDS_TAB = "Seeds"


def render_whose(runs: list[RunInfo], participant: str | None, wanted: str | None) -> list[RunInfo] | None:
    """With a name in the sidebar, "Mine" or "Everyone's" runs; the runs to pick from, None when the
    choice leaves none (said on the page)."""
    if participant is None:
        return runs
    mine = runs_of(runs, participant)
    others = wanted and wanted not in {r.run_id for r in mine} and wanted in {r.run_id for r in runs}
    if others and st.session_state.get("results.whose_opened") != wanted:
        st.session_state["results.whose_opened"] = wanted
        st.session_state[WHOSE_KEY] = "everyone"  # a link to someone else's run opens it, once
    st.session_state.setdefault(WHOSE_KEY, "mine")
    whose = st.segmented_control(
        "Runs",
        ["mine", "everyone"],
        key=WHOSE_KEY,
        format_func={"mine": f"Mine ({participant}, {len(mine)})", "everyone": f"Everyone's ({len(runs)})"}.get,
        help="Your runs are those started with your name in the sidebar.",
    )
    if whose == "everyone" or whose is None:
        return runs
    if not mine:
        st.info(f"No runs by {participant} in this store yet: choose Everyone's, or start one.")
        st.page_link(shell.OPTIMIZE, label="Start one on the Optimize page", icon=":material/rocket_launch:")
        return None
    return mine


def render_picker(runs: list[RunInfo], participant: str | None) -> RunInfo | None:
    wanted = st.query_params.get(RUN_PARAM)
    group = st.query_params.get(GROUP_PARAM)
    if group:
        members = [r for r in runs if r.group == group]
        if not members:
            st.warning(f"No runs of the group '{group}' in this store.")
        elif wanted not in {r.run_id for r in members}:
            wanted = members[0].run_id  # the newest of the group
    shown = render_whose(runs, participant, wanted)
    if shown is None:
        return None
    ids = [r.run_id for r in shown]
    index = ids.index(wanted) if wanted in ids else 0
    if wanted and wanted not in ids and wanted not in {r.run_id for r in runs}:
        st.warning(f"No optimization run '{wanted}' in this store; showing the newest one.")
    with st.expander(f"All {len(shown)} optimization runs listed", expanded=False):
        st.dataframe(
            run_rows(shown),
            hide_index=True,
            width="stretch",
            column_config={
                "baseline": st.column_config.NumberColumn(format="percent", width=70),
                "best": st.column_config.NumberColumn(format="percent", width=70),
                "test": st.column_config.NumberColumn(format="percent", width=60),
                "scorer": st.column_config.TextColumn(width=170),
                "budget": st.column_config.TextColumn(width=60),
                "patience": st.column_config.TextColumn(width=64),
                "seed": st.column_config.TextColumn(width=44),
                "cost": st.column_config.NumberColumn(format="dollar", width=70),
                "seconds": st.column_config.NumberColumn(format="%.0f", width=64),
                "started": st.column_config.TextColumn(width=100),
            },
        )
    labels = run_labels(shown)
    chosen = st.selectbox(
        "Run",
        ids,
        index=index,
        format_func=labels.get,
        help="Each run by its scores, then what differs between the runs listed; all of it in the list above.",
    )
    if chosen != st.query_params.get(RUN_PARAM):
        st.query_params[RUN_PARAM] = chosen
    info = shown[ids.index(chosen)]
    if group and info.group != group:
        del st.query_params[GROUP_PARAM]  # another run was picked: the link's group no longer applies
    return info


def render_resume(info: RunInfo, uri: str) -> None:
    """For a failed or cancelled run: Resume, which continues it from GEPA's saved state as a new run
    (on the queue when there is one) and opens that run on the Optimize page."""
    from core.errors import InputError
    from core.resume import RESUMABLE, start_resume

    if info.status not in RESUMABLE:
        return
    if st.button(
        "Resume",
        key="results.resume",
        icon=":material/play_arrow:",
        help="Continue this run from the GEPA state it saved, as a new run with the same settings and budget.",
    ):
        models = shell.app_context().models
        try:
            handle = start_resume(info.run_id, tracking_uri=uri, api_key=models.api_key if models else None)
        except InputError as error:
            st.error(shell.one_line(error))
            return
        st.switch_page(shell.OPTIMIZE, query_params={RUN_PARAM: handle.run_dir.name})


def main() -> None:
    context = shell.app_context()
    uri = context.tracking_uri
    st.title("Results")
    if not status.store_ready(context):
        return
    runs = data.runs_or_say_why(uri)
    if runs is None:
        return
    if not runs:
        st.info("No optimization runs in this store yet.")
        st.page_link(shell.OPTIMIZE, label="Start one on the Optimize page", icon=":material/rocket_launch:")
        return
    info = render_picker(runs, context.participant)
    if info is None:
        return
    opened = data.open_run(info.run_id, uri)
    if opened.salvaged:
        st.warning("This run's process ended unexpectedly; what it recorded was saved to MLflow.")
    info = opened.info or info
    view = opened.view
    if view is None:
        if opened.phase == "elsewhere":
            st.info(markdown_escape(opened.message or ""), icon=":material/hourglass_top:")
        else:
            st.error(markdown_escape(opened.message or "This run recorded nothing."))
        return
    results_views.render_header(view, info)
    render_resume(info, uri)
    if not view.candidates:
        st.info(
            "The baseline is still being scored: the views appear once it has a score."
            if view.is_live
            else "This run ended before the baseline was scored, so there is nothing to compare. "
            + (f"It says: {markdown_escape(view.error)}" if view.error else ""),
            icon=":material/info:",
        )
        return
    render_tabs(view, uri, runs, info)


def open_seeds_once(group: str | None) -> None:
    """Arriving with ``?group=`` (and no tab named) opens the Seeds tab, once per group, so the
    reader can then leave it."""
    linked = st.query_params.get(GROUP_PARAM)
    if not group or linked != group or instructor.TAB_PARAM in st.query_params:
        return
    if st.session_state.get("results.seeds_opened") != group:
        st.session_state["results.seeds_opened"] = group
        st.session_state[instructor.TAB_PARAM] = SEEDS_TAB


# Ten or eleven tabs do not fit one line at a projector's 1024 px; Streamlit would hide the last ones
# behind a scroll arrow. They wrap onto a second line instead, every tab in sight.
WRAP_TABS = "<style>[data-testid='stTabs'] [role='tablist'] { flex-wrap: wrap; row-gap: 0.25rem; }</style>"


def render_tabs(view: analysis.RunView, uri: str, runs: list[RunInfo], info: RunInfo) -> None:
    st.html(WRAP_TABS)
    names = [
        "Candidates",
        "Pareto front",
        "Lineage",
        "Score matrix",
        "Per example",
        "What if",
        "Cost",
        "Export",
        "Proposals",
        "Replay",
    ]
    renderers = [
        lambda: results_views.render_candidates(view, uri, info),
        lambda: results_views.render_front(view),
        lambda: st.plotly_chart(charts.lineage_figure(view), width="stretch", key="results.lineage"),
        lambda: results_views.render_matrix(view),
        lambda: results_views.render_examples(view),
        lambda: results_views.render_what_if(view, uri, runs, info),
        lambda: results_views.render_cost(view),
        lambda: results_views.render_export(view, info),
        lambda: results_views.render_proposals(view),
        lambda: replay.render_replay(view, info.run_id),
    ]
    if info.group:
        names.insert(6, SEEDS_TAB)
        renderers.insert(6, lambda: render_seeds(uri, runs, info))
        open_seeds_once(info.group)
    tabs = st.tabs(
        names,
        key=instructor.TAB_PARAM,
        on_change="rerun",
        bind="query-params",
    )
    # Only the open tab is computed and sent: a 300 x 500 run stays quick to browse.
    for name, tab, render in zip(names, tabs, renderers, strict=True):
        if tab.open is not False:
            with tab:
                instructor.render_note(name)
                render()


def render_seeds(uri: str, runs: list[RunInfo], info: RunInfo) -> None:
    members = [r for r in runs if r.group == info.group]
    st.markdown(
        f"**This run is one of {len(members)} runs of the same settings with different seeds** "
        f"(group {info.group}): how much of its result is the seed's luck?"
    )
    results_views.render_seeds(uri, runs, info.group or "")


main()
