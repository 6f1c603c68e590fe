"""Optimize: choose data, prompt, scorer, budget and patience; run GEPA in its own process and watch it."""

from __future__ import annotations

import os

import streamlit as st

from core.budget import DEFAULT_BUDGET, DEFAULT_PATIENCE, plan_budget
from core.config import OptimizationConfig
from core.datasets import Splits
from core.errors import InputError
from core.scorers import (
    ALL_NORMALIZATIONS,
    DEFAULT_NORMALIZATION,
    SCORER_KINDS,
    SCORER_LABELS,
    ScorerSpec,
    preview,
    sample_outputs,
)
from core.templates import template_variables
from ui import data, dataset_picker, run_panel, settings, shell, splits, status

RUN_PARAM = "run"
DEFAULTS = {
    "optimize.budget": DEFAULT_BUDGET,
    "optimize.patience": DEFAULT_PATIENCE,
    "optimize.minibatch": 3,
    "optimize.seed": 0,
    "optimize.concurrency": 8,
}
# Every choice of the set-up, kept for the session (ui.settings): a run, or a visit to another page,
# draws none of these widgets, and Streamlit would forget them.
SETTINGS = (
    "optimize.dataset",
    "optimize.test_mode",
    "optimize.test_share",
    "optimize.split",
    "optimize.fraction",
    "optimize.all_on_test",
    "optimize.prompt",
    "optimize.prompt_for",
    "optimize.scorer",
    *(f"optimize.norm.{step}" for step in ALL_NORMALIZATIONS),
    "optimize.selection",
    *DEFAULTS,
)


def render_prompt_choice(uri: str, dataset, bundled) -> str | None:
    """The prompt version to optimize, among those whose variables the dataset has."""
    baselines = data.bundled_prompts(uri)
    fitting = []
    for summary in data.cached_prompts(uri):
        for version in data.cached_versions(uri, summary.name, with_aliases=False):
            if set(template_variables(version.template)) <= set(dataset.fields):
                fitting.append(version)
    if not fitting:
        st.error(
            f"No registered prompt fits this dataset (its fields: {', '.join(dataset.fields)}). "
            "Register one on the Prompts page."
        )
        return None
    uris = [v.uri for v in fitting]
    default = next((b.uri for b in baselines if bundled and b.name == bundled.prompt_name), uris[0])
    # A new dataset starts from its own baseline; otherwise the choice stays, while it still fits.
    state = st.session_state
    if state.get("optimize.prompt_for") != dataset.source or state.get("optimize.prompt") not in uris:
        state["optimize.prompt"] = default
    st.session_state["optimize.prompt_for"] = dataset.source
    chosen = st.selectbox("Prompt to optimize", uris, key="optimize.prompt")
    st.code(next(v.template for v in fitting if v.uri == chosen), language=None, wrap_lines=True)
    return chosen


def render_scorer(dataset) -> ScorerSpec:
    kind = st.radio("Scorer", SCORER_KINDS, format_func=SCORER_LABELS.get, horizontal=True, key="optimize.scorer")
    for step in ALL_NORMALIZATIONS:
        st.session_state.setdefault(f"optimize.norm.{step}", step in DEFAULT_NORMALIZATION)
    with st.container(horizontal=True, gap="medium"):  # as wide as their labels, wrapping when narrow
        steps = tuple(step for step in ALL_NORMALIZATIONS if st.checkbox(f"ignore {step}", key=f"optimize.norm.{step}"))
    spec = ScorerSpec(kind, steps)
    with st.expander(f"What counts as a match with {spec.label}?", expanded=False):
        expected = [e.expected for e in dataset.examples[:2]]
        pairs = [(output, answer) for answer in expected for output in sample_outputs(answer)]
        tried = st.text_input(
            "Try a model output", key="optimize.try", placeholder=f"e.g. The answer is {expected[0]}."
        )
        if tried:
            pairs.insert(0, (tried, expected[0]))
        rows = preview(spec, pairs)
        for row in rows:
            row["match"] = "✓" if row["score"] == 1.0 else ("≈" if row["score"] > 0 else "✗")
        st.dataframe(rows, hide_index=True, width="stretch")
    return spec


def render_budget(splits: Splits, *, all_on_test: bool) -> tuple[int, int, dict]:
    for key, default in DEFAULTS.items():
        st.session_state.setdefault(key, default)
    budget_col, patience_col = st.columns(2)
    budget = budget_col.number_input("Budget (metric calls)", 1, 100_000, step=10, key="optimize.budget")
    patience = patience_col.number_input(
        "Patience (0 = off)",
        0,
        1000,
        key="optimize.patience",
        help="Stop after this many iterations in a row without a better validation score; 0 never stops early.",
    )
    with st.expander("Advanced"):
        minibatch = st.number_input(
            "Reflection minibatch size",
            1,
            20,
            key="optimize.minibatch",
            help="How many training examples the reflection model reads for each proposal (GEPA's default "
            "is 3). Each proposal costs twice this many metric calls.",
        )
        selection = st.radio(
            "Parent selection",
            ["pareto", "current_best"],
            horizontal=True,
            key="optimize.selection",
            help="Which candidate each iteration improves. **pareto**: one of the Pareto front, drawn at "
            "random with more weight for those best on more examples, so specialists get improved too. "
            "**current_best**: always the candidate with the best validation score.",
        )
        seed = st.number_input(
            "Seed",
            0,
            1_000_000,
            key="optimize.seed",
            help="Seeds GEPA's random choices (minibatches, parents). The same seed, settings and model give "
            "the same run; the train, validation and test rows do not depend on it.",
        )
        concurrency = st.number_input(
            "Model calls at once",
            1,
            64,
            key="optimize.concurrency",
            help="How many model calls run in parallel while a batch is scored: faster against a real "
            "endpoint, up to its rate limit. It does not change what is scored.",
        )
    plan = plan_budget(
        int(budget),
        len(splits.validation),
        int(minibatch),
        test_size=len(splits.test_ids),
        every_candidate_on_test=all_on_test,
    )
    {"ok": st.info, "warn": st.warning, "refuse": st.error}[plan.level](plan.message)
    advanced = {
        "minibatch_size": int(minibatch),
        "selection": selection,
        "seed": int(seed),
        "concurrency": int(concurrency),
        "plan_ok": plan.level != "refuse",
    }
    return int(budget), int(patience), advanced


def render_setup(context: shell.AppContext) -> None:
    uri = context.tracking_uri
    st.subheader("1 · Data")
    offline = context.models is not None and context.models.is_offline
    picked = dataset_picker.render_dataset_picker("optimize", simulated=offline)
    if picked is None:
        return
    dataset, bundled = picked
    with st.expander(f"{len(dataset)} rows", expanded=False):
        dataset_picker.render_rows(dataset)
    split = splits.render_splits(dataset, bundled, offline=offline)
    if split is None:
        return
    st.subheader("2 · Prompt")
    prompt_uri = render_prompt_choice(uri, dataset, bundled)
    st.subheader("3 · Scorer")
    spec = render_scorer(dataset)
    st.subheader("4 · Budget and patience")
    all_on_test = split.fields.get("score_candidates_on_test", offline)
    budget, patience, advanced = render_budget(split.splits, all_on_test=bool(all_on_test))
    ready = prompt_uri is not None and context.models is not None and advanced.pop("plan_ok")
    if st.button("Run optimization", type="primary", disabled=not ready, key="optimize.run"):
        try:
            config = OptimizationConfig(
                dataset_path=str(dataset.source),
                prompt_uri=prompt_uri,
                scorer=spec,
                budget=budget,
                patience=patience,
                models=context.models,
                tracking_uri=uri,
                **split.fields,
                **advanced,
            )
        except InputError as error:
            st.error(shell.one_line(error))
            return
        start(config)


def start(config: OptimizationConfig) -> None:
    from core.runs import start_run

    try:
        handle = start_run(config)
    except InputError as error:  # the queue cannot be reached, or a key cannot travel encrypted
        st.error(shell.one_line(error))
        return
    st.session_state["optimize.run_ref"] = handle.run_dir.name
    st.session_state.pop("optimize.watching", None)
    st.query_params[RUN_PARAM] = handle.run_dir.name
    st.rerun()


def default_config(context: shell.AppContext) -> OptimizationConfig:
    return OptimizationConfig(models=context.models, tracking_uri=context.tracking_uri)


def settings_of_run(view) -> dict:
    """The set-up's widget values that repeat the run ``view`` (its recorded settings)."""
    from core.datasets import bundled_dataset_at, default_dataset

    config = view.started.config
    scorer = view.scorer
    values = {
        "optimize.budget": int(config.get("budget") or view.budget or DEFAULT_BUDGET),
        "optimize.patience": int(config.get("patience") or 0),
        "optimize.minibatch": view.minibatch_size,
        "optimize.selection": config.get("selection") or "pareto",
        "optimize.seed": view.seed,
        "optimize.concurrency": int(config.get("concurrency") or DEFAULTS["optimize.concurrency"]),
        "optimize.scorer": scorer.kind,
        **{f"optimize.norm.{step}": step in scorer.normalization for step in ALL_NORMALIZATIONS},
    }
    path = config.get("dataset_path") or str(default_dataset().path)
    bundled = bundled_dataset_at(path)
    if bundled is not None:
        values |= {"optimize.dataset": bundled.key, "optimize.prompt_for": str(bundled.path)}
    elif os.path.isfile(path):
        values |= {"optimize.dataset": "upload", "optimize.prompt_for": path}
        values["optimize.uploaded"] = {"file": os.path.basename(path), "path": path}
    values["optimize.prompt"] = view.baseline.uri
    return values | splits.settings_of(config, declared=bool(bundled and bundled.split))


def set_up_new_run(opened) -> None:
    """Leave the run shown for a new set-up that starts from its settings; a run still going stays in
    view above the set-up (:func:`render_run_left`)."""
    view = opened.view if opened is not None else None
    if view is not None:
        settings.put("optimize", settings_of_run(view))
    if opened is not None and opened.is_live:
        st.session_state["optimize.watching"] = st.session_state.get("optimize.run_ref")
    st.session_state.pop("optimize.run_ref", None)
    st.query_params.pop(RUN_PARAM, None)


def render_run_left(context: shell.AppContext) -> None:
    """While a new run is set up, the run left running: its progress line and a link back to it."""
    ref = st.session_state.get("optimize.watching")
    if ref:
        run_panel.render_left_run(ref)


def main() -> None:
    context = shell.app_context()
    st.title("Optimize")
    settings.keep("optimize", SETTINGS)
    if not status.store_ready(context):
        return
    if st.session_state.pop("optimize.autostart", False) and context.models is not None:
        start(default_config(context))
    ref = st.query_params.get(RUN_PARAM) or st.session_state.get("optimize.run_ref")
    if ref:
        # Kept in both: the session finds it after a visit to another page (which drops the query),
        # the address after a reload or in another tab.
        st.session_state["optimize.run_ref"] = ref
        st.query_params[RUN_PARAM] = ref
        opened = run_panel.render(context, ref)
        if st.button(
            "Set up a new run",
            key="optimize.new",
            help="Opens the settings with this run's choices; a run still going goes on.",
        ):
            set_up_new_run(opened)
            st.rerun()
        if opened is not None and opened.is_live:
            return
        st.divider()
    else:
        render_run_left(context)
    try:
        render_setup(context)
    except Exception as error:  # noqa: BLE001 - never a traceback on the page
        st.error(f"Something went wrong preparing the run: {shell.one_line(error)}")


main()
