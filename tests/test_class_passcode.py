"""The class passcode: with GEPA_EXPLORER_CLASS_PASSCODE set, the app asks for it once per browser
session before any page; without it there is no gate."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from core.access import PASSCODE_VARIABLE, class_passcode, passcode_matches

PASSCODE = "blue-heron-42"


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)


def page_text(at: AppTest) -> str:
    kinds = ("title", "markdown", "caption", "info", "error", "warning", "success", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def enter(at: AppTest, typed: str) -> AppTest:
    at.text_input(key="gate.passcode").input(typed)
    return at.button(key="gate.enter").click().run()


@pytest.fixture
def class_app(explorer_home, monkeypatch) -> AppTest:
    monkeypatch.setenv(PASSCODE_VARIABLE, PASSCODE)
    at = app().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_passcode_is_read_from_the_environment_and_a_blank_one_is_no_passcode():
    assert class_passcode({PASSCODE_VARIABLE: " blue-heron-42 "}) == PASSCODE
    assert class_passcode({PASSCODE_VARIABLE: "  "}) is None and class_passcode({}) is None


def test_only_the_passcode_matches_spaces_around_it_aside():
    assert passcode_matches(" blue-heron-42\n", PASSCODE)
    assert not passcode_matches("blue-heron-4", PASSCODE) and not passcode_matches("", PASSCODE)
    assert not passcode_matches("Blue-Heron-42", PASSCODE)
    assert passcode_matches("héron ✓", "héron ✓")  # any text, not only ASCII


def test_no_page_content_before_the_passcode(class_app):
    at = class_app
    assert [t.value for t in at.title] == ["Class passcode"]
    assert at.text_input(key="gate.passcode").proto.type == at.text_input(key="gate.passcode").proto.PASSWORD
    assert "GEPA (Genetic-Pareto)" not in page_text(at)  # the Welcome page's text
    assert not at.sidebar.text_input and not at.sidebar.radio  # no sidebar: no name, store or models
    assert not [b for b in at.button if b.key == "welcome.start"]


def test_a_wrong_passcode_is_one_line_and_shows_nothing_more(class_app):
    at = enter(class_app, "red-heron-42")
    assert not at.exception
    assert [e.value for e in at.error] == ["That is not the class passcode."]
    assert [t.value for t in at.title] == ["Class passcode"] and not at.sidebar.text_input


def test_the_right_passcode_shows_the_welcome_page_and_is_asked_once_per_session(class_app):
    at = enter(class_app, PASSCODE)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "GEPA Explorer" and at.button(key="welcome.start")
    assert at.sidebar.text_input(key="participant") and not at.error
    at.switch_page("app_pages/class_view.py").run()  # the same session: no second ask
    assert at.title[0].value == "Class"


def test_a_new_session_asks_again(class_app):
    enter(class_app, PASSCODE)
    assert [t.value for t in app().run().title] == ["Class passcode"]


def test_without_a_passcode_there_is_no_gate(explorer_home, monkeypatch):
    monkeypatch.delenv(PASSCODE_VARIABLE, raising=False)
    at = app().run()
    assert at.title[0].value == "GEPA Explorer" and not [t for t in at.text_input if t.key == "gate.passcode"]
