"""Optimize: choose data, prompt, scorer, budget and patience; run GEPA in its own process and watch it."""

from __future__ import annotations

import os

import streamlit as st

from core.budget import DEFAULT_BUDGET, DEFAULT_PATIENCE, plan_budget
from core.config import OptimizationConfig
from core.datasets import Splits
from core.errors import InputError
from core.models import OFFLINE_MODEL_NAME
from core.scorers import (
    ALL_NORMALIZATIONS,
    ALL_SCORER_KINDS,
    DEFAULT_NORMALIZATION,
    SCORER_LABELS,
    ScorerSpec,
    preview,
    sample_outputs,
    simulated_judge_preview,
)
from core.templates import markdown_escape, template_variables
from ui import costs, data, dataset_picker, groups, run_panel, settings, shell, splits, status

RUN_PARAM = "run"
GROUP_PARAM = "group"  # the Results page opens a group's view at ?group=<group id> too
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
    "optimize.judge_model",
    "optimize.repeats",
    *(f"optimize.norm.{step}" for step in ALL_NORMALIZATIONS),
    "optimize.selection",
    *DEFAULTS,
)


def render_prompt_choice(uri: str, dataset, bundled):
    """The prompt version to optimize, among those whose variables the dataset has (None: none fits)."""
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
    version = next(v for v in fitting if v.uri == chosen)
    st.code(version.template, language=None, wrap_lines=True)
    return version


JUDGE_TRADE_OFF = (
    'A judge accepts answers worded differently ("twelve" for "12", a full sentence), which exact match '
    "rejects; but every example scored inside the loop is one more model call, so it costs more and takes "
    "longer (the estimate below says how much)."
)


def render_scorer(dataset, models) -> ScorerSpec:
    kind = st.radio("Scorer", ALL_SCORER_KINDS, format_func=SCORER_LABELS.get, horizontal=True, key="optimize.scorer")
    judge_model = render_judge_model(models) if kind == "llm_judge" else None
    for step in ALL_NORMALIZATIONS:
        st.session_state.setdefault(f"optimize.norm.{step}", step in DEFAULT_NORMALIZATION)
    with st.container(horizontal=True, gap="medium"):  # as wide as their labels, wrapping when narrow
        steps = tuple(step for step in ALL_NORMALIZATIONS if st.checkbox(f"ignore {step}", key=f"optimize.norm.{step}"))
    if kind == "llm_judge":
        st.caption("With the judge, these apply to the exact match it is compared with after the run.")
    spec = ScorerSpec(kind, steps, judge_model)
    simulated = models is not None and models.is_offline
    label = "the simulated judge" if spec.needs_model and simulated else spec.label
    with st.expander(f"What counts as a match with {label}?", expanded=False):
        render_match_preview(spec, dataset, simulated=simulated)
    return spec


def render_judge_model(models) -> str | None:
    """The judge model's name (None: the task model). The offline demo has one judge, the simulated one."""
    st.caption(markdown_escape(JUDGE_TRADE_OFF))
    if models is None:
        return None
    if models.is_offline:
        st.text_input(
            "Judge model",
            value=f"{OFFLINE_MODEL_NAME} (simulated judge)",
            disabled=True,
            help="The offline demo model judges with deterministic rules (a simulated judge, not a language "
            "model). Choose OpenAI or an OpenAI-compatible endpoint in the sidebar for a real judge.",
        )
        return None
    st.session_state.setdefault("optimize.judge_model", "")
    name = st.text_input(
        "Judge model",
        key="optimize.judge_model",
        placeholder=models.task_model,
        help=f"A model on the same endpoint. Empty: the task model ({models.task_model}).",
    )
    return name.strip() or None


def render_match_preview(spec: ScorerSpec, dataset, *, simulated: bool) -> None:
    expected = [e.expected for e in dataset.examples[:2]]
    pairs = [(output, answer) for answer in expected for output in sample_outputs(answer)]
    if spec.needs_model:
        pairs += [(f"I'm not sure, but maybe {answer}", answer) for answer in expected[:1]]
    tried = st.text_input("Try a model output", key="optimize.try", placeholder=f"e.g. The answer is {expected[0]}.")
    if tried:
        pairs.insert(0, (tried, expected[0]))
    if spec.needs_model and not simulated:
        st.info(
            f"A real judge ({markdown_escape(spec.judge_model or 'the task model')}) can only say by being called, "
            "which costs a call per row: its verdicts show in the per-example view after the run.",
            icon=":material/info:",
        )
        return
    if spec.needs_model:
        rows = simulated_judge_preview(pairs, spec.normalization)
        st.caption("The simulated judge's rules, applied here without a call; exact match beside it for comparison.")
    else:
        rows = preview(spec, pairs)
    for row in rows:
        row["match"] = "✓" if row["score"] == 1.0 else ("≈" if row["score"] > 0 else "✗")
    st.dataframe(rows, hide_index=True, width="stretch")


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
    prompt = render_prompt_choice(uri, dataset, bundled)
    st.subheader("3 · Scorer")
    spec = render_scorer(dataset, context.models)
    st.subheader("4 · Budget and patience")
    all_on_test = split.fields.get("score_candidates_on_test", offline)
    budget, patience, advanced = render_budget(split.splits, all_on_test=bool(all_on_test))
    estimate_slot = st.container()  # filled last: the estimate waits for a model call, the button does not
    plan_ok = advanced.pop("plan_ok")
    config, problem = None, None
    if prompt is not None and context.models is not None:
        try:
            config = OptimizationConfig(
                dataset_path=str(dataset.source),
                prompt_uri=prompt.uri,
                scorer=spec,
                budget=budget,
                patience=patience,
                models=context.models,
                tracking_uri=uri,
                participant=context.participant,
                **context.price_fields(),
                **split.fields,
                **advanced,
            )
        except InputError as error:
            problem = shell.one_line(error)
    if problem:
        st.error(problem)
    repeats = groups.render_seed_choice()
    if st.button("Run optimization", type="primary", disabled=config is None or not plan_ok, key="optimize.run"):
        start(config, repeats=repeats)
    if config is not None and plan_ok:
        with estimate_slot:
            costs.render_pre_run_estimate(config, split.splits, prompt.template)


def start(config: OptimizationConfig, *, repeats: int = 1) -> None:
    """Start the run (or, with ``repeats`` above 1, one run per seed from the chosen one on) and show it."""
    st.session_state.pop("optimize.watching", None)
    if repeats > 1:
        from core.groups import new_group_id, start_group

        group = new_group_id()
        handles = start_group(config, [config.seed + n for n in range(repeats)], group=group)
        st.session_state["optimize.group"] = {"id": group, "refs": [h.run_dir.name for h in handles]}
        st.session_state.pop("optimize.run_ref", None)
        st.query_params.pop(RUN_PARAM, None)
        st.query_params[GROUP_PARAM] = group
        st.rerun()
    from core.runs import start_run

    try:
        handle = start_run(config)
    except InputError as error:  # the queue cannot be reached, or a key cannot travel encrypted
        st.error(shell.one_line(error))
        return
    st.session_state["optimize.run_ref"] = handle.run_dir.name
    st.session_state.pop("optimize.group", None)
    st.query_params.pop(GROUP_PARAM, None)
    st.query_params[RUN_PARAM] = handle.run_dir.name
    st.rerun()


def default_config(context: shell.AppContext) -> OptimizationConfig:
    return OptimizationConfig(
        models=context.models,
        tracking_uri=context.tracking_uri,
        participant=context.participant,
        **context.price_fields(),
    )


def settings_of_run(view, *, repeats: int = 1) -> dict:
    """The set-up's widget values that repeat the run ``view`` (its recorded settings), ``repeats``
    times over seeds."""
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
        "optimize.judge_model": (config.get("scorer") or {}).get("judge_model") or "",
        "optimize.repeats": repeats if repeats in groups.SEED_CHOICES else 1,
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


def group_refs(context: shell.AppContext, group: str) -> list[str]:
    """The runs of ``group``: their folders when this session started it, else found in the store."""
    kept = st.session_state.get("optimize.group")
    if kept and kept.get("id") == group:
        return list(kept["refs"])
    return [info.run_id for info in data.cached_runs(context.tracking_uri) if info.group == group]


def render_group(context: shell.AppContext, group: str) -> list:
    """A repeat over seeds: one live line per run while any goes, then the group's summary. Returns the
    runs as found (empty when there are none)."""
    from core.runs import RunNotFound

    refs = group_refs(context, group)
    opened = []
    for ref in refs:
        try:
            opened.append(data.open_run(ref, context.tracking_uri))
        except RunNotFound:
            continue
    if not opened:
        st.warning(f"No run of the repeat {markdown_escape(group)} was found in this store.")
        return []
    st.subheader(f"The same settings over {len(refs)} seeds")
    st.page_link(
        shell.RESULTS,
        label="The group on Results: every seed's scores, mean and spread",
        icon=":material/insights:",
        query_params={GROUP_PARAM: group},
    )
    if any(run.is_live for run in opened):
        if st.button("Stop all", key="optimize.stop_group", help="Ends every run after its current iteration."):
            for run in opened:
                if run.is_live and run.handle is not None:
                    run.handle.cancel()
        st.session_state.pop("optimize.group_listed", None)
        groups.render_group_live(context, refs)
        return opened
    if st.session_state.get("optimize.group_listed") != group:
        data.cached_runs.clear()  # the list may predate the runs' ends
        st.session_state["optimize.group_listed"] = group
    groups.render_group_summary(context.tracking_uri, data.cached_runs(context.tracking_uri), group)
    return opened


def set_up_new_run_from_group(opened: list) -> None:
    """Leave the group shown for a new set-up with its settings, repeated as often."""
    views = sorted((run.view for run in opened if run.view is not None), key=lambda view: view.seed)
    if views:
        settings.put("optimize", settings_of_run(views[0], repeats=len(opened)))
    st.session_state.pop("optimize.group", None)
    st.query_params.pop(GROUP_PARAM, None)


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
    elif group := st.query_params.get(GROUP_PARAM) or (st.session_state.get("optimize.group") or {}).get("id"):
        st.query_params[GROUP_PARAM] = group
        runs = render_group(context, group)
        if st.button("Set up a new run", key="optimize.new_group", help="Opens the settings of these runs."):
            set_up_new_run_from_group(runs)
            st.rerun()
        if any(run.is_live for run in runs):
            return
        st.divider()
    else:
        render_run_left(context)
    try:
        render_setup(context)
    except Exception as error:  # noqa: BLE001 - never a traceback on the page
        st.error(f"Something went wrong preparing the run: {shell.one_line(error)}")


main()
