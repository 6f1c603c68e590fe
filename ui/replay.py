"""The Results page's Replay tab: a recorded run stepped through one GEPA iteration at a time
(:mod:`core.replay`), and the "what the reflection model was shown" part the Optimize page's live
proposal feed shares (:func:`render_shown`). Not a page (the router does not list it).

Session keys are prefixed ``results.replay_``. Model text is shown with ``st.code`` or escaped
Markdown (the cells of ``st.table`` included), never as HTML.
"""

from __future__ import annotations

import streamlit as st

from core import replay
from core.analysis import RunView, inputs_text
from core.events import Proposal
from core.replay import STEP_TITLES, ReplayStep, StepName
from core.templates import diff_counts, diff_markdown, markdown_escape
from ui.instructor import FOCUS_PARAM

AT_KEY = "results.replay_at"
"""The iteration (a position) shown; plain state, so it survives a visit to another tab."""
SLIDER_KEY = "results.replay_slider"
RUN_KEY = "results.replay_run"
LAST_FOCUS_KEY = "results.replay_last_focus"
PICKED_KEY = "results.replay_focus_picked"
EVERY_STEP = "Every step"
FOCUS_OPTIONS = (EVERY_STEP, *STEP_TITLES.values())
STEP_OF_TITLE: dict[str, StepName] = {title: step for step, title in STEP_TITLES.items()}
PROMPT_HEIGHT = 320


def render_replay(view: RunView, run_id: str) -> None:
    """The Replay tab of run ``run_id``: ``Iteration N of M`` with Previous / Next and a slider, then the
    iteration's Select, Evaluate, Reflect, Improve and Decision (or only the one picked under "Show")."""
    count = replay.replay_count(view)
    if count == 0:
        st.info(
            "No iteration has finished yet: the first one appears here as soon as it ends."
            if view.is_live
            else "This run ended before its first iteration finished, so there is nothing to replay.",
            icon=":material/info:",
        )
        return
    new_run = st.session_state.get(RUN_KEY) != run_id
    st.session_state[RUN_KEY] = run_id
    header = st.container()
    focus = _render_focus(view, new_run=new_run)
    with header:
        position = _render_navigation(view, count)
    step = replay.replay_step(view, position)
    for note in step.missing:
        st.info(markdown_escape(note), icon=":material/history:")
    sections = (
        ("select", _render_select, _select_line),
        ("evaluate", _render_evaluate, _evaluate_line),
        ("reflect", _render_reflect, _reflect_line),
        ("improve", _render_improve, _improve_line),
        ("decision", _render_decision, _decision_line),
    )
    for number, (name, render, line) in enumerate(sections, start=1):
        with st.container(border=True):
            title = f"{number}. {STEP_TITLES[name]}"
            if focus in (None, name):
                st.markdown(f"#### {title}")
                render(view, step)
            else:
                st.markdown(f"**{title}** · {markdown_escape(line(step))}")


def _render_focus(view: RunView, *, new_run: bool) -> StepName | None:
    """The "Show" picker, bound to the URL so the Welcome page can link to a step; None for every step.
    A step that arrives through the URL, or a newly opened run, starts at the first iteration that
    shows the step; a step picked here keeps the iteration."""
    chosen = st.segmented_control(
        "Show",
        FOCUS_OPTIONS,
        default=EVERY_STEP,
        required=True,
        key=FOCUS_PARAM,
        bind="query-params",
        on_change=lambda: st.session_state.__setitem__(PICKED_KEY, True),
    )
    focus = STEP_OF_TITLE.get(chosen or EVERY_STEP)
    picked = st.session_state.pop(PICKED_KEY, False)
    if new_run or (chosen != st.session_state.get(LAST_FOCUS_KEY) and not picked):
        st.session_state[AT_KEY] = replay.first_position_showing(view, focus) if focus else 1
    st.session_state[LAST_FOCUS_KEY] = chosen
    return focus


def _move(delta: int, count: int) -> None:
    st.session_state[AT_KEY] = min(count, max(1, int(st.session_state.get(AT_KEY, 1)) + delta))


def _render_navigation(view: RunView, count: int) -> int:
    """Heading, Previous / Next and the slider; the position shown."""
    position = min(count, max(1, int(st.session_state.get(AT_KEY, 1))))
    st.session_state[AT_KEY] = position
    st.subheader(f"Iteration {view.proposals[position - 1].iteration} of {count}")
    with st.container(horizontal=True):
        st.button(
            "Previous",
            key="results.replay_previous",
            icon=":material/chevron_left:",
            on_click=_move,
            args=(-1, count),
            disabled=position <= 1,
        )
        st.button(
            "Next",
            key="results.replay_next",
            icon=":material/chevron_right:",
            on_click=_move,
            args=(1, count),
            disabled=position >= count,
        )
    if count > 1:
        st.session_state[SLIDER_KEY] = position
        st.slider(
            "Iteration",
            1,
            count,
            key=SLIDER_KEY,
            on_change=lambda: st.session_state.__setitem__(AT_KEY, st.session_state[SLIDER_KEY]),
        )
    return position


# --------------------------------------------------------------------------------------------------
# The five parts
# --------------------------------------------------------------------------------------------------


def _table(rows: list[dict[str, object]]) -> None:
    """A small table whose cells wrap, so long outputs and feedback read in full. ``st.table`` renders
    Markdown in its cells: every cell is escaped, so model text shows as typed."""
    st.table(
        [{markdown_escape(k): markdown_escape(str(v)) for k, v in row.items()} for row in rows],
        hide_index=True,
        border="horizontal",
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _select_line(step: ReplayStep) -> str:
    select = step.select
    return f"parent {select.parent}, drawn from a front of {len(select.front)}"


def _render_select(view: RunView, step: ReplayStep) -> None:
    select = step.select
    st.markdown(markdown_escape(select.why))
    if len(select.front) < 2:
        return
    total = select.total_draws
    st.caption(
        f"The Pareto front when iteration {step.iteration} began: every candidate found so far that no other "
        "matches or beats everywhere. *Leads on* counts the validation examples where it has the top score "
        "(ties included); *alone* those where no other front member does."
    )
    _table(
        [
            {
                "candidate": member.candidate,
                "role": ", ".join(
                    role
                    for role, yes in (
                        ("parent", member.candidate == select.parent),
                        ("best", member.candidate == select.best),
                    )
                    if yes
                ),
                "validation score": _pct(member.score),
                "leads on": len(member.leads_on),
                "alone": len(member.alone_on),
                "GEPA's draws": f"{member.draws} of {total}" if total else "–",
            }
            for member in select.front
        ]
    )
    member = select.parent_member
    if member is None or select.parent is None or not member.alone_on:
        return
    parent = view.candidates[select.parent]
    examples = view.val_examples
    st.markdown(
        f"**Where only candidate {select.parent} has the top score** on the front ({len(member.alone_on)} "
        f"validation examples): what the front would lose without it"
    )
    _table(
        [
            {
                "row": examples[p].row,
                "input": inputs_text(examples[p].inputs),
                "expected": examples[p].expected,
                "its output": parent.outputs[p] if p < len(parent.outputs) else "",
            }
            for p in member.alone_on
        ]
    )


def _evaluate_line(step: ReplayStep) -> str:
    right = sum(1 for e in step.evaluate if e.parent_score == 1.0)
    return f"{len(step.evaluate)} training examples; the parent got {right} right"


def _render_evaluate(view: RunView, step: ReplayStep) -> None:
    right = sum(1 for e in step.evaluate if e.parent_score == 1.0)
    st.markdown(
        f"GEPA drew **{len(step.evaluate)}** of the {len(view.started.train_ids)} training examples (the "
        f"minibatch) and ran the parent, candidate {step.select.parent}, on them: **{right} of "
        f"{len(step.evaluate)}** scored 1."
    )
    _table(
        [
            {
                "row": e.row,
                "input": e.inputs,
                "expected": e.expected,
                "parent's output": e.parent_output or "",
                "score": _score(e.parent_score),
            }
            for e in step.evaluate
        ]
    )


def _reflect_line(step: ReplayStep) -> str:
    shown = step.reflect
    if not shown.asked:
        return "not asked this iteration"
    return f"shown {len(shown.examples) or 'the'} examples with feedback; replied {len(shown.reply or ''):,} characters"


def _render_reflect(view: RunView, step: ReplayStep) -> None:
    shown = step.reflect
    if not shown.asked:
        st.markdown(
            "GEPA did not ask the reflection model this iteration: " + markdown_escape(step.decision.reason or "")
        )
        return
    render_shown(view, step.proposal, missing=False)
    if shown.reply:
        st.markdown("**Its full reply**")
        st.code(shown.reply, language=None, wrap_lines=True)
    else:
        st.markdown("**No reply**: " + markdown_escape(step.decision.reason or "the reflection model did not answer"))


def render_shown(view: RunView, proposal: Proposal, *, missing: bool = True) -> None:
    """What the reflection model was shown for ``proposal``: the reflective dataset GEPA built from the
    parent's minibatch run, then the instruction text GEPA sent around it. ``missing`` adds what an
    older recording lacks. Nothing when the model was not asked."""
    if not (proposal.reflective_dataset or proposal.reflection_prompt):
        return
    if missing:
        for note in replay.missing_records(proposal):
            st.caption(markdown_escape(note))
    if proposal.reflective_dataset:
        rows_by_id = {example.id: example.row for example in view.examples}
        st.markdown(
            f"**What the reflection model was shown**: the {len(proposal.reflective_dataset)} examples GEPA "
            "built from the parent's minibatch run, with the scorer's feedback"
        )
        _table(
            [
                {
                    "row": rows_by_id.get(e.example, "") if e.example is not None else "",
                    "input": inputs_text(e.inputs),
                    "output": e.output,
                    "expected": e.expected,
                    "score": _score(e.score),
                    "feedback": e.feedback,
                }
                for e in proposal.reflective_dataset
            ]
        )
    if proposal.reflection_prompt:
        length = proposal.reflection_prompt_chars or len(proposal.reflection_prompt)
        cut = f", cut at {len(proposal.reflection_prompt):,}" if proposal.reflection_prompt_cut else ""
        st.markdown(f"**The instruction text GEPA sent** ({length:,} characters{cut}): these examples in its template")
        st.code(proposal.reflection_prompt, language=None, wrap_lines=True, height=PROMPT_HEIGHT)


def _improve_line(step: ReplayStep) -> str:
    improve = step.improve
    if not improve.template:
        return "no new prompt"
    counts = diff_counts(improve.diff)
    scores = f"; minibatch {_score(improve.parent_total)}/{improve.size} → {_score(improve.new_total)}/{improve.size}"
    return f"{counts['insert']} words added, {counts['delete']} removed" + (
        scores if improve.new_total is not None else ""
    )


def _render_improve(view: RunView, step: ReplayStep) -> None:
    improve = step.improve
    if not improve.template:
        st.markdown("No new prompt this iteration.")
        return
    st.markdown(
        f"**The new prompt against its parent, candidate {step.select.parent}**, word by word: added in bold, "
        "removed struck through"
    )
    with st.container(border=True):
        st.markdown(diff_markdown(improve.diff))
    if improve.new_total is None:
        st.caption("It was not scored on the minibatch.")
        return
    st.markdown(
        f"**On the same minibatch**: the parent scored {_score(improve.parent_total)} of {improve.size}, the new "
        f"prompt {_score(improve.new_total)} of {improve.size}"
    )
    _table(
        [
            {
                "row": e.row,
                "expected": e.expected,
                "parent's output": e.parent_output or "",
                "parent": _score(e.parent_score),
                "new prompt's output": e.new_output or "",
                "new prompt": _score(e.new_score),
            }
            for e in step.evaluate
        ]
    )


_OUTCOME_BOX = {
    "accepted": (st.success, ":material/check_circle:"),
    "rejected": (st.warning, ":material/cancel:"),
    "skipped": (st.info, ":material/skip_next:"),
    "invalid_proposal": (st.warning, ":material/block:"),
    "reflection_failed": (st.error, ":material/error:"),
}


def _decision_line(step: ReplayStep) -> str:
    return step.decision.summary.split(":", 1)[0].lower()


def _render_decision(view: RunView, step: ReplayStep) -> None:
    decision = step.decision
    box, icon = _OUTCOME_BOX.get(decision.outcome, (st.info, ":material/info:"))
    box(markdown_escape(decision.summary), icon=icon)
    if decision.validation_score is None:
        return
    st.metric(
        f"Candidate {decision.candidate} on validation",
        _pct(decision.validation_score),
        delta=f"{decision.validation_score - decision.parent_validation_score:+.1%} against its parent"
        if decision.parent_validation_score is not None
        else None,
    )
