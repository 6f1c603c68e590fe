"""Prompts: browse the registry, write and check a template, register versions, move aliases, diff."""

from __future__ import annotations

import hashlib

import streamlit as st

from core import prompts
from core.datasets import bundled_datasets, default_dataset
from core.templates import check_template, diff_counts, diff_markdown, markdown_escape, render, word_diff
from ui import data, dataset_picker, settings, shell, status

EDITOR = ("prompts.name", "prompts.template", "prompts.message", "prompts.tags")


def render_browser(uri: str) -> tuple[str | None, list]:
    """The registry's prompts and the chosen prompt's versions; returns the chosen prompt's name and
    every prompt's summary."""
    summaries = data.cached_prompts(uri)
    if not summaries:
        st.info("The registry is empty: write a template below and register it.")
        return None, []
    st.dataframe(
        [
            {
                "prompt": s.name,
                "latest version": s.latest_version,
                "aliases": ", ".join(f"@{a} → v{v}" for a, v in sorted(s.aliases.items())),
            }
            for s in summaries
        ],
        hide_index=True,
        width="stretch",
    )
    names = [s.name for s in summaries]
    state = st.session_state
    if (registered := state.pop("prompts.open_next", None)) in names:
        state["prompts.open"] = registered
    if state.get("prompts.open") not in names:
        default = default_dataset().prompt_name
        state["prompts.open"] = default if default in names else names[0]
    name = st.selectbox(
        "Open a prompt",
        names,
        key="prompts.open",
        on_change=open_in_editor,
        args=(uri,),
        help="Shows its versions below; the editor opens its latest version unless it holds your changes.",
    )
    versions = data.cached_versions(uri, name)
    if not versions:
        return name, summaries
    chosen = st.selectbox(
        "Version",
        versions,
        format_func=lambda v: (
            f"v{v.version}"
            + (f"  @{', @'.join(v.aliases)}" if v.aliases else "")
            + (f" — {v.commit_message}" if v.commit_message else "")
        ),
        key="prompts.version",
    )
    st.code(chosen.template, language=None, wrap_lines=True)
    st.caption(markdown_escape(f"{chosen.uri}" + (f" · tags: {dict(chosen.tags)}" if chosen.tags else "")))
    if st.button("Edit a copy of this version", key="prompts.edit_copy"):
        load_into_editor(chosen)
        st.rerun()
    return name, summaries


def load_into_editor(version) -> None:
    """Put a version in the editor: its name and its text together, so they belong to one prompt."""
    state = st.session_state
    state["prompts.template"] = version.template
    state["prompts.name"] = version.name
    state["prompts.origin"] = version.name
    state["prompts.loaded_text"] = version.template
    bundled = next((b for b in bundled_datasets() if b.prompt_name == version.name), None)
    if bundled is not None:
        state["prompts.dataset"] = bundled.key  # check it against the data it was made for


def open_in_editor(uri: str) -> None:
    """On opening another prompt: the editor follows with its latest version, unless it holds
    changes not registered yet (those stay)."""
    state = st.session_state
    if state.get("prompts.template") != state.get("prompts.loaded_text"):
        return
    versions = data.cached_versions(uri, state["prompts.open"])
    if versions:
        load_into_editor(versions[0])


def render_editor(uri: str, opened: str | None, summaries: list) -> None:
    state = st.session_state
    if "prompts.template" not in state:
        versions = data.cached_versions(uri, opened) if opened else []
        if versions:
            load_into_editor(versions[0])
        else:
            state["prompts.template"] = state["prompts.loaded_text"] = "Answer this question: {{question}}"
            state["prompts.name"] = "my-prompt"
    name = st.text_input(
        "Prompt name",
        key="prompts.name",
        help="The prompt this text becomes a new version of (a new prompt if no prompt has this name).",
    )
    template = st.text_area("Template", key="prompts.template", height=160)
    picked = dataset_picker.render_dataset_picker("prompts")
    dataset = picked[0] if picked else None
    check = check_template(template, dataset.fields if dataset else None)
    variables = ", ".join("{{" + v + "}}" for v in check.variables) or "none yet"
    st.markdown(f"**Variables found:** {markdown_escape(variables)}")
    for problem in check.problems:
        st.error(markdown_escape(problem))
    if check.unused:
        st.warning(f"The dataset also has {markdown_escape(', '.join(check.unused))}, which this template never uses.")
    if dataset is not None and check.ok:
        example = dataset.examples[0]
        st.caption(f"Preview on row {example.row} of {markdown_escape(dataset.name)}:")
        st.code(render(template, example.inputs), language=None, wrap_lines=True)
    render_register(uri, name, template, summaries, ok=check.ok)


def done(form: str, message: str) -> None:
    """After a registry change: rerun so every list on the page shows it; ``form`` then says so."""
    data.clear_registry_cache()
    st.session_state[f"prompts.done.{form}"] = message
    st.rerun()


def render_done(form: str) -> None:
    if message := st.session_state.pop(f"prompts.done.{form}", None):
        st.success(markdown_escape(message), icon=":material/check_circle:")


def render_register(uri: str, name: str, template: str, summaries: list, *, ok: bool) -> None:
    """Commit message, tags and the one button that registers (no form: Enter in a field only
    confirms what was typed). A text the prompt's latest version already has is refused; one that
    needs a second look (core.prompts.check_new_version) waits for a confirmation."""
    with st.container(border=True):
        st.text_input("Commit message", key="prompts.message", placeholder="What changed and why")
        st.text_area("Tags (one key=value per line)", key="prompts.tags", height=80)
        try:
            clean = prompts.validate_prompt_name(name)
        except prompts.PromptError as error:
            st.error(shell.one_line(error))
            clean = None
        check = prompts.VersionCheck()
        if clean is not None and ok:  # a template with problems is said above, and not registered
            versions = data.cached_versions(uri, clean, with_aliases=False)
            others = [
                v for s in summaries if s.name != clean for v in data.cached_versions(uri, s.name, with_aliases=False)
            ]
            origin = st.session_state.get("prompts.origin")
            check = prompts.check_new_version(clean, template, versions, others, opened_from=origin)
        if check.refusal:  # not an error: an unchanged opened version says this too
            st.info(markdown_escape(check.refusal), icon=":material/content_copy:")
        for warning in check.warnings:
            st.warning(markdown_escape(warning), icon=":material/warning:")
        confirmed = True
        if check.warnings and not check.refusal:
            # A confirmation is for the warnings it was given for: new warnings need a new one.
            digest = hashlib.sha256("\n".join(check.warnings).encode()).hexdigest()[:10]
            confirmed = st.checkbox("I have read this: register it anyway", key=f"prompts.confirm.{digest}")
        clicked = st.button(
            "Register new version",
            type="primary",
            key="prompts.register",
            disabled=not ok or clean is None or check.refusal is not None or not confirmed,
        )
        render_done("register")
    if not clicked:
        return
    state = st.session_state
    try:
        version = prompts.register_typed_version(
            clean,
            template,
            commit_message=state.get("prompts.message"),
            tags=prompts.parse_tags(state.get("prompts.tags") or ""),
            tracking_uri=uri,
        )
    except prompts.PromptError as error:
        st.error(shell.one_line(error))
        return
    state["prompts.origin"], state["prompts.loaded_text"], state["prompts.open_next"] = clean, template, clean
    done("register", f"Registered {version.uri}. Earlier versions are unchanged.")


def render_aliases(uri: str, name: str) -> None:
    versions = data.cached_versions(uri, name)
    if not versions:
        return
    with st.form("prompts.alias_form", border=True):
        st.markdown(f"**Move an alias of `{name}`**")
        alias = st.text_input("Alias", value="production", key="prompts.alias")
        version = st.selectbox("to version", [v.version for v in versions], key="prompts.alias_version")
        moved = st.form_submit_button("Move alias")
    render_done("alias")
    if moved:
        try:
            prompts.set_alias(name, alias, int(version), tracking_uri=uri)
        except prompts.PromptError as error:
            st.error(shell.one_line(error))
            return
        done("alias", f"prompts:/{name}@{alias} now points at version {version}.")


def render_diff(uri: str, name: str) -> None:
    versions = data.cached_versions(uri, name)
    if len(versions) < 2:
        st.caption("Register a second version to compare versions word by word.")
        return
    by_number = {v.version: v for v in versions}
    baseline = next((v.version for v in versions if prompts.BASELINE_ALIAS in v.aliases), versions[-1].version)
    old_col, new_col = st.columns(2)
    old = old_col.selectbox("From", list(by_number), index=list(by_number).index(baseline), key="prompts.diff_old")
    new = new_col.selectbox("To", list(by_number), index=0, key="prompts.diff_new")
    segments = word_diff(by_number[old].template, by_number[new].template)
    counts = diff_counts(segments)
    st.caption(f"v{old} → v{new}: {counts['insert']} words added (bold), {counts['delete']} removed (struck through)")
    with st.container(border=True):
        st.markdown(diff_markdown(segments))


def main() -> None:
    context = shell.app_context()
    uri = context.tracking_uri
    st.title("Prompts")
    if not status.store_ready(context):
        return
    settings.keep("prompts", EDITOR)
    try:
        data.bundled_prompts(uri)
        opened, summaries = render_browser(uri)
    except Exception as error:  # noqa: BLE001 - the store is unusable; say so in one line
        st.error(f"The MLflow store cannot be read: {shell.one_line(error)}")
        return
    st.header("Write and check a template")
    render_editor(uri, opened, summaries)
    if opened:
        st.header(f"Versions of {opened}")
        diff_tab, alias_tab = st.tabs(["Compare versions", "Aliases"])
        with diff_tab:
            render_diff(uri, opened)
        with alias_tab:
            render_aliases(uri, opened)


main()
