"""The Results page's tabs, one ``render_*`` function each. Not a page (the router does not list it).

Figures and tables come from :mod:`core.charts` and :mod:`core.analysis`; model text is shown with
``st.code`` / ``st.dataframe`` or escaped Markdown, never as HTML.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from core import analysis, charts
from core.export import export_run
from core.registration import describe_registered
from core.summary import counted
from core.templates import diff_markdown, markdown_escape, word_diff
from ui import data, registration, shell

EXAMPLES_IN_DETAIL = 50
PROPOSALS_SHOWN = 200
OUTCOME_MARKS = {
    "accepted": ":green[✓ accepted]",
    "rejected": ":red[✗ rejected]",
    "skipped": ":gray[↷ skipped]",
    "reflection_failed": ":orange[⚠ reflection failed]",
    "invalid_proposal": ":orange[⊘ discarded]",
}


def selected_candidate(view: analysis.RunView) -> int:
    chosen = st.session_state.get("results.candidate")
    return chosen if isinstance(chosen, int) and 0 <= chosen < len(view.candidates) else view.best_candidate


def render_candidates(view: analysis.RunView, uri: str, info: Any) -> None:
    axis = st.radio(
        "X axis",
        ["iteration", "metric_calls"],
        horizontal=True,
        key="results.x",
        format_func={"iteration": "Iteration", "metric_calls": "Metric calls used"}.get,
    )
    current = selected_candidate(view)
    until = None
    if view.last_iteration > 1:
        until = st.slider(
            "Show the run up to iteration",
            0,
            view.last_iteration,
            view.last_iteration,
            key="results.until",
            help="The front markers show the Pareto front as it was then.",
        )
    event = st.plotly_chart(
        charts.candidates_figure(view, x=axis, selected=current, at_iteration=until),
        width="stretch",
        key="results.candidates_chart",
        on_select="rerun",
        selection_mode="points",
    )
    clicked = charts.clicked_candidate(event)
    if clicked is not None and clicked != current:
        st.session_state["results.candidate"] = clicked
        st.rerun()
    indices = list(range(len(view.candidates)))
    chosen = st.selectbox("Candidate", indices, index=current, format_func=lambda i: analysis.candidate_label(view, i))
    st.session_state["results.candidate"] = chosen
    render_candidate_detail(view, chosen)
    render_register(view, chosen, uri, info)


def render_candidate_detail(view: analysis.RunView, index: int) -> None:
    candidate = view.candidates[index]
    st.code(candidate.template, language=None, wrap_lines=True)
    parents = ", ".join(str(p) for p in candidate.parents) or "none (the baseline)"
    found = "the baseline" if index == 0 else f"found in iteration {candidate.iteration}"
    st.caption(f"Parents: {parents} · {found}, after {candidate.metric_calls} metric calls")
    comparisons = [("its parent", candidate.parents[0])] if candidate.parents else []
    if index != 0:
        comparisons.append(("the baseline", 0))
    for label, other in comparisons:
        st.markdown(f"**Word diff against {label} (candidate {other})**: added in bold, removed struck through")
        with st.container(border=True):
            st.markdown(diff_markdown(word_diff(view.candidates[other].template, candidate.template)))
    frame = analysis.compare_examples(view, candidate=index, against=0)
    st.markdown(f"**Its results on the {len(frame)} validation examples** against the baseline")
    render_example_table(view, frame)


def render_example_table(view: analysis.RunView, frame: Any) -> None:
    """The per-example table, sized to read on a 1024 px projector: the input first, each ✓ next to
    its output, long texts wrapped over three lines."""
    st.caption(markdown_escape(analysis.mark_meaning(view.scorer)))
    label = analysis.input_label(view)
    table = analysis.example_table(frame, with_scores=view.scorer.kind != "exact_match", input_label=label)
    text = st.column_config.TextColumn
    # About 530 px in all: within the main column of a 1024 px screen with the sidebar open.
    config = {
        "row": st.column_config.NumberColumn(width=36),
        label: text(width=136),
        "expected": text(width=86),
        "before": text(width=104),
        "after": text(width=104),
    } | {
        column: text("✓", width=30, alignment="center", help=f"{column}: ✓ right, ✗ wrong (or the partial score)")
        for column in analysis.EXAMPLE_MARK_COLUMNS
    }
    st.dataframe(table, hide_index=True, width="stretch", column_config=config, row_height=68)


def render_register(view: analysis.RunView, index: int, uri: str, info: Any) -> None:
    """Register a chosen candidate (the best of a stopped run, or one a user prefers)."""
    if index == 0 or view.is_live:
        return
    if index == view.best_candidate and view.registered:
        st.caption(markdown_escape(describe_registered(view.registered, this_run=view.run_id)))
        return
    registration.render_register_button(view, info, index, uri, key=f"results.register.{info.run_id}.{index}")


def render_front(view: analysis.RunView) -> None:
    st.plotly_chart(charts.front_timeline_figure(view), width="stretch", key="results.front")
    if not view.fronts:
        return
    iterations = sorted({f.iteration for f in view.fronts})
    when = iterations[-1]
    if len(iterations) > 1:
        when = st.select_slider("Explain the front after iteration", iterations, value=when, key="results.front_at")
    explained = analysis.explain_front(view, when)
    examples = view.val_examples
    st.markdown(
        f"**Why each member of the front after iteration {when} is kept**: the validation examples on which "
        "it has the top score among the candidates found so far, alone or tied with others"
    )
    reasons = list(explained.members)
    if len(reasons) > 20:
        st.caption(f"The {len(reasons)} members are listed 20 at a time, best first.")
        reasons = sorted(reasons, key=lambda r: -view.candidates[r.candidate].aggregate)[:20]

    def rows(positions: tuple[int, ...]) -> str:
        shown = ", ".join(str(examples[p].row) for p in positions[:30])
        return f" (rows {shown}{f' and {len(positions) - 30} more' if len(positions) > 30 else ''})"

    for reason in reasons:
        parts = []
        if reason.alone:
            parts.append(f"best alone on {counted(len(reason.alone), 'example')}{rows(reason.alone)}")
        if reason.tied:
            parts.append(f"tied for best on {counted(len(reason.tied), 'example')}{rows(reason.tied)}")
        said = "; ".join(parts) or (
            "the top score on no example, but no other candidate is at least as good on every example"
        )
        st.markdown(f"- **Candidate {reason.candidate}** ({view.candidates[reason.candidate].aggregate:.1%}): {said}")
    if explained.unsolved:
        st.caption(
            f"No candidate scores above 0 on {counted(len(explained.unsolved), 'example')}{rows(explained.unsolved)}. "
            "GEPA counts such a tie at 0 for every candidate, so those examples explain no one's place above."
        )


def render_matrix(view: analysis.RunView) -> None:
    order = st.radio(
        "Order examples by",
        ["difficulty", "index"],
        horizontal=True,
        key="results.matrix_order",
        format_func={"difficulty": "How many candidates solve them (hardest first)", "index": "Dataset order"}.get,
    )
    st.plotly_chart(charts.score_matrix_figure(view, order=order), width="stretch", key="results.matrix")


def render_examples(view: analysis.RunView) -> None:
    indices = list(range(len(view.candidates)))
    left, right = st.columns(2)
    candidate = left.selectbox(
        "Candidate",
        indices,
        index=view.best_candidate,
        key="results.ex_candidate",
        format_func=lambda i: analysis.candidate_label(view, i),
    )
    against = right.selectbox(
        "Against", indices, index=0, key="results.ex_against", format_func=lambda i: analysis.candidate_label(view, i)
    )
    frame = analysis.compare_examples(view, candidate=candidate, against=against)
    counts = analysis.category_counts(frame)
    with st.container(horizontal=True, gap="medium"):
        for category in analysis.CATEGORIES:
            st.metric(analysis.CATEGORY_MARKS[category], counts[category], width="content")
    chosen = st.multiselect(
        "Show",
        analysis.CATEGORIES,
        default=list(analysis.CATEGORIES),
        key="results.ex_filter",
        format_func=analysis.CATEGORY_MARKS.get,
    )
    text = st.text_input("Search inputs, expected answers and outputs", key="results.ex_search")
    shown = analysis.filter_examples(frame, chosen, text)
    st.caption(f"{len(shown)} of {len(frame)} examples")
    render_example_table(view, shown)
    if len(shown) > EXAMPLES_IN_DETAIL:
        st.caption(
            f"In detail below: the first {EXAMPLES_IN_DETAIL} of these {len(shown)}. "
            "Narrow them with the filters or the search to see others."
        )
    for _, row in shown.head(EXAMPLES_IN_DETAIL).iterrows():
        question = str(row["inputs"]).splitlines()[-1] if row["inputs"] else ""
        question = question if len(question) <= 70 else question[:69] + "…"
        with st.expander(
            f"Row {row['row']} · {analysis.CATEGORY_MARKS[row['category']]} · "
            + markdown_escape(f"{question} · expected {row['expected']!r}")
        ):
            st.code(row["inputs"], language=None, wrap_lines=True)
            for side, label in (("against", f"candidate {against}"), ("candidate", f"candidate {candidate}")):
                mark = "✓" if row[f"{side}_correct"] else "✗"
                st.markdown(f"**{mark} {label}**: output vs expected (words to add in bold, to remove struck)")
                st.markdown(diff_markdown(word_diff(str(row[f"{side}_output"]), str(row["expected"]))))
                st.caption(
                    markdown_escape(f"normalised: {row[f'{side}_normalized']!r} vs {row['expected_normalized']!r}")
                )


def render_what_if(view: analysis.RunView, uri: str, runs: list[Any], info: Any) -> None:
    st.markdown(
        "**Where would this run have stopped, and how good would it have been?** "
        "Replayed from the recording: no model calls."
    )
    table = analysis.what_if(view, *analysis.what_if_grid(view))
    st.plotly_chart(charts.what_if_figure(table), width="stretch", key="results.what_if")
    with st.expander("As a table"):
        st.dataframe(table, hide_index=True, width="stretch")
    others = [r for r in runs if r.run_id != info.run_id and r.status != "RUNNING"]
    labels = {r.run_id: f"{r.name} ({r.run_id[:8]})" for r in others}
    chosen = st.multiselect("Compare with other runs", list(labels), format_func=labels.get, key="results.compare")
    curves = {f"this run ({info.run_id[:8]})": analysis.run_curve(view)}
    for run_id in chosen:
        try:
            curves[labels[run_id]] = analysis.run_curve(analysis.build_run_view(data.finished_events(uri, run_id)))
        except Exception as error:  # noqa: BLE001 - one unreadable run must not hide the others
            st.warning(f"{labels[run_id]}: {shell.one_line(error)}")
    st.plotly_chart(charts.compare_runs_figure(curves), width="stretch", key="results.compare_chart")


def render_export(view: analysis.RunView, info: Any) -> None:
    best = view.candidates[view.best_candidate]
    st.download_button(
        "The whole run (JSON, for notebooks and other tools)",
        lambda: json.dumps(export_run(view, run_id=info.run_id).to_dict(), ensure_ascii=False, indent=1),
        file_name=f"{info.run_id}-run.json",
        mime="application/json",
        on_click="ignore",
        help="Settings, summary, examples and splits, every candidate with its scores, and every proposal with "
        "what the reflection model was shown. Schema in the README; python -m core export writes the same file.",
    )
    frame = analysis.compare_examples(view, candidate=best.index, against=0)
    st.download_button(
        "Per-example results (CSV)",
        frame.to_csv(index=False),
        file_name=f"{info.run_id}-examples.csv",
        mime="text/csv",
        on_click="ignore",
    )
    st.download_button(
        f"Best prompt, candidate {best.index} (text)",
        best.template,
        file_name=f"{info.run_id}-candidate-{best.index}.txt",
        mime="text/plain",
        on_click="ignore",
    )
    figures = charts.page_figures(view, info.run_id[:8])
    st.caption(
        "Charts as standalone HTML files, drawn as here. Each file embeds plotly.js (about 5 MB), so it "
        "opens offline in any browser, without this app:"
    )
    with st.container(horizontal=True):  # as wide as their names, wrapping on a narrow screen
        for name, build in figures.items():
            st.download_button(
                f"{name}.html",
                lambda build=build: charts.figure_html(build()),
                file_name=f"{info.run_id}-{name}.html",
                mime="text/html",
                on_click="ignore",
                width="content",
            )


def render_proposal(proposal: Any, view: analysis.RunView) -> None:
    """One iteration as an expander: its outcome, parent and minibatch scores in the title; the
    reason, what the reflection model was shown, the whole proposed prompt and its reply inside."""
    from ui import replay

    before, after = sum(proposal.scores_before), sum(proposal.scores_after)
    size = len(proposal.minibatch) or 1
    title = f"Iteration {proposal.iteration} · {OUTCOME_MARKS.get(proposal.outcome, proposal.outcome)}"
    if proposal.parent is not None:
        title += f" · parent {proposal.parent}"
    if proposal.scores_after:
        title += f" · minibatch {before:g}/{size} → {after:g}/{size}"
    if proposal.candidate is not None:
        title += f" · became candidate {proposal.candidate}"
    with st.expander(title):
        st.markdown(markdown_escape(proposal.reason or ""))
        replay.render_shown(view, proposal)
        if proposal.template:
            st.caption("Proposed prompt")
            st.code(proposal.template, language=None, wrap_lines=True)
        if proposal.reflection:
            st.caption("The reflection model's reply")
            st.code(proposal.reflection, language=None, wrap_lines=True)


def render_proposals(view: analysis.RunView) -> None:
    """Every iteration of the run, filterable by outcome, each expandable."""
    counts = analysis.outcome_counts(view)
    present = [outcome for outcome, count in counts.items() if count]
    if not present:
        st.info("This run made no proposal: it ended before its first iteration.", icon=":material/info:")
        return
    chosen = st.multiselect(
        "Show",
        present,
        default=present,
        key="results.proposal_filter",
        format_func=lambda o: f"{analysis.OUTCOME_LABELS[o]} ({counts[o]})",
    )
    shown = analysis.proposals_with(view, chosen)
    st.caption(f"{len(shown)} of {counted(len(view.proposals), 'iteration')}, in order; open one for why it ended so.")
    if len(shown) > PROPOSALS_SHOWN:
        st.caption(f"The first {PROPOSALS_SHOWN} are listed: narrow them with the filter to see others.")
    for proposal in shown[:PROPOSALS_SHOWN]:
        render_proposal(proposal, view)
