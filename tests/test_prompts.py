"""The prompt registry through core.prompts, on a throwaway SQLite store."""

import pytest

from core import prompts
from core.prompts import PromptError, parse_prompt_uri


def test_register_list_and_load_versions(tracking):
    first = prompts.register_version("qa", "Answer: {{question}}", commit_message="plain", tags={"team": "x"})
    second = prompts.register_version("qa", "Answer briefly: {{question}}")
    assert (first.version, second.version) == (1, 2)
    assert [v.version for v in prompts.list_versions("qa")] == [2, 1]
    loaded = prompts.load("prompts:/qa/1")
    assert loaded.template == "Answer: {{question}}" and loaded.commit_message == "plain"
    assert loaded.tags == {"team": "x"}
    assert prompts.load("prompts:/qa@latest").version == 2
    assert second.tags == {}  # a version's tags stay on that version


def test_aliases_move_and_resolve(tracking):
    prompts.register_version("qa", "A: {{question}}")
    prompts.register_version("qa", "B: {{question}}")
    prompts.set_alias("qa", "production", 1)
    assert prompts.load("prompts:/qa@production").version == 1
    prompts.set_alias("qa", "production", 2)
    assert prompts.load("prompts:/qa@production").version == 2
    assert prompts.list_prompts()[0].aliases == {"production": 2}


def test_registered_versions_are_never_changed(tracking):
    prompts.register_version("qa", "A: {{question}}", commit_message="first", tags={"team": "a"})
    before = prompts.get_version("qa", 1)
    prompts.register_version("qa", "B: {{question}}", commit_message="second", tags={"team": "b"})
    prompts.set_alias("qa", "prod", 1)
    prompts.set_alias("qa", "prod", 2)  # an alias moves; the versions stay
    again = prompts.register_version("qa", "A: {{question}}", commit_message="same text again")
    after = prompts.get_version("qa", 1)
    assert (after.template, after.commit_message, dict(after.tags)) == (
        before.template,
        before.commit_message,
        dict(before.tags),
    )
    assert again.version == 3 and prompts.get_version("qa", 2).template == "B: {{question}}"
    assert prompts.load("prompts:/qa@prod").version == 2


def test_bad_templates_are_refused_before_registering(tracking):
    with pytest.raises(PromptError, match="no \\{\\{variable\\}\\}"):
        prompts.register_version("qa", "no variables here")
    with pytest.raises(PromptError, match="is not closed: write"):
        prompts.register_version("qa", "Answer {{question}")
    assert prompts.list_versions("qa") == []


def test_bad_names_and_aliases_are_explained(tracking):
    with pytest.raises(PromptError, match="not a valid prompt name"):
        prompts.register_version("my prompt", "{{q}}")
    prompts.register_version("qa", "{{q}}")
    with pytest.raises(PromptError, match="not a valid alias"):
        prompts.set_alias("qa", "9lives", 1)
    with pytest.raises(PromptError, match="has no version 7"):
        prompts.set_alias("qa", "prod", 7)


def test_unknown_prompt_uri_is_explained(tracking):
    with pytest.raises(PromptError, match="No prompt found at prompts:/nope/1"):
        prompts.load("prompts:/nope/1")
    with pytest.raises(PromptError, match="No prompt found at prompts:/nope@prod"):
        prompts.load("prompts:/nope@prod")


@pytest.mark.parametrize("uri", ["qa", "prompts:/qa", "prompts:/qa/zero", "prompts:/qa/0", "prompt:/qa/1"])
def test_malformed_uris_are_refused(uri):
    with pytest.raises(PromptError):
        parse_prompt_uri(uri)


def test_bundled_baselines_are_registered_once_with_alias(tracking):
    first = prompts.ensure_bundled_prompts()
    again = prompts.ensure_bundled_prompts()
    assert [p.uri for p in first] == [p.uri for p in again] == ["prompts:/short-answer-qa/1", "prompts:/context-qa/1"]
    assert "baseline" in prompts.load("prompts:/short-answer-qa@baseline").aliases


def test_two_runs_registering_the_same_candidate_at_once_make_one_version(tracking, monkeypatch):
    import threading
    import time

    from conftest import fixture_events
    from core.analysis import build_run_view
    from core.events import decode_event
    from core.registration import register_candidate

    prompts.ensure_bundled_prompts()
    view = build_run_view([decode_event(e) for e in fixture_events("run_short_qa_budget300")])
    slow_register = prompts.register_version

    def register_slowly(*args, **kwargs):
        time.sleep(0.5)  # both runs have looked for the text before either has registered it
        return slow_register(*args, **kwargs)

    monkeypatch.setattr(prompts, "register_version", register_slowly)
    done = []
    threads = [threading.Thread(target=lambda: done.append(register_candidate(view, 4))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.existing for r in done) == [False, True]
    assert {r.version.uri for r in done} == {"prompts:/short-answer-qa/2"}
    assert [v.version for v in prompts.list_versions("short-answer-qa")] == [2, 1]
    again = next(r for r in done if r.existing)
    assert again.by_run == view.run_id  # the version's tags name the run that registered it


def version(name: str, number: int, template: str) -> prompts.PromptVersionInfo:
    return prompts.PromptVersionInfo(name=name, version=number, template=template)


def test_check_new_version_refuses_the_latest_text_and_warns_about_dropped_variables_and_other_prompts():
    context = [version("context-qa", 1, "Read {{context}}. Answer {{question}}")]
    short = version("short-answer-qa", 1, "Answer this question: {{question}}")
    assert (
        "already version 1 of context-qa"
        in prompts.check_new_version("context-qa", context[0].template, context).refusal
    )
    dropped = prompts.check_new_version("context-qa", "Answer {{question}}", context)
    assert dropped.refusal is None and "drops {{context}}" in dropped.warnings[0]
    borrowed = prompts.check_new_version("context-qa", short.template, context, [short])
    assert any("version 1 of short-answer-qa, another prompt" in w for w in borrowed.warnings)
    opened = prompts.check_new_version(
        "context-qa", "Read {{context}}: {{question}}", context, opened_from="short-answer-qa"
    )
    assert opened.warnings == (
        "This text was opened from short-answer-qa, but the name is context-qa, another prompt: registering adds "
        "it as a version of context-qa.",
    )
    assert prompts.check_new_version("new-prompt", short.template, [], [short]) == prompts.VersionCheck()
