"""Prompts: browse the registry, write and check a template, register versions, move aliases, diff."""

from __future__ import annotations

import streamlit as st

from core import prompts
from core.templates import check_template, diff_counts, diff_markdown, markdown_escape, render, word_diff
from ui import data, dataset_picker, shell, status


def render_browser(uri: str) -> str | None:
    """The registry's prompts and the chosen prompt's versions; returns the chosen prompt name."""
    summaries = data.cached_prompts(uri)
    if not summaries:
        st.info("The registry is empty: write a template below and register it.")
        return None
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
    name = st.selectbox("Open a prompt", [s.name for s in summaries], key="prompts.open")
    versions = data.cached_versions(uri, name)
    if not versions:
        return name
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
        st.session_state["prompts.template"] = chosen.template
        st.session_state["prompts.name"] = chosen.name
        st.rerun()
    return name


def render_editor(uri: str, opened: str | None) -> None:
    st.session_state.setdefault("prompts.template", "Answer this question: {{question}}")
    st.session_state.setdefault("prompts.name", opened or "my-prompt")
    left, right = st.columns([3, 2])
    with left:
        template = st.text_area("Template", key="prompts.template", height=180)
    with right:
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
        st.caption(f"Preview on row {example.row} of {dataset.name}:")
        st.code(render(template, example.inputs), language=None, wrap_lines=True)
    render_register_form(uri, template, ok=check.ok)


def done(form: str, message: str) -> None:
    """After a registry change: rerun so every list on the page shows it; ``form`` then says so."""
    data.clear_registry_cache()
    st.session_state[f"prompts.done.{form}"] = message
    st.rerun()


def render_done(form: str) -> None:
    if message := st.session_state.pop(f"prompts.done.{form}", None):
        st.success(markdown_escape(message), icon=":material/check_circle:")


def render_register_form(uri: str, template: str, *, ok: bool) -> None:
    with st.form("prompts.register_form", border=True):
        name = st.text_input("Prompt name", key="prompts.name")
        message = st.text_input("Commit message", key="prompts.message", placeholder="What changed and why")
        tags = st.text_area("Tags (one key=value per line)", key="prompts.tags", height=80)
        submitted = st.form_submit_button("Register new version", type="primary", disabled=not ok)
    render_done("register")
    if submitted:
        try:
            version = prompts.register_version(
                name, template, commit_message=message, tags=prompts.parse_tags(tags), tracking_uri=uri
            )
        except prompts.PromptError as error:
            st.error(shell.one_line(error))
            return
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
    try:
        data.bundled_prompts(uri)
        opened = render_browser(uri)
    except Exception as error:  # noqa: BLE001 - the store is unusable; say so in one line
        st.error(f"The MLflow store cannot be read: {shell.one_line(error)}")
        return
    st.header("Write and check a template")
    render_editor(uri, opened)
    if opened:
        st.header(f"Versions of {opened}")
        diff_tab, alias_tab = st.tabs(["Compare versions", "Aliases"])
        with diff_tab:
            render_diff(uri, opened)
        with alias_tab:
            render_aliases(uri, opened)


main()
