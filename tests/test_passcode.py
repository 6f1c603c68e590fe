"""The class passcode gate (GEPA_EXPLORER_CLASS_PASSCODE): nothing of the app before it is typed."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from conftest import ROOT


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)


def test_without_a_passcode_set_the_app_opens(explorer_home, monkeypatch):
    monkeypatch.delenv("GEPA_EXPLORER_CLASS_PASSCODE", raising=False)
    at = app().run()
    assert not at.exception
    assert not [i for i in at.text_input if i.key == "app.passcode"]


def test_with_a_passcode_only_the_form_shows_until_it_is_typed(explorer_home, monkeypatch):
    monkeypatch.setenv("GEPA_EXPLORER_CLASS_PASSCODE", "owl-42")
    at = app().run()
    assert not at.exception
    assert [i.key for i in at.text_input] == ["app.passcode"]
    assert not at.sidebar.radio  # no sidebar, no page
    at.text_input(key="app.passcode").input("wrong")
    at.button[0].click().run()
    assert at.error[0].value == "That is not the class passcode."
    assert not at.sidebar.radio
    at.text_input(key="app.passcode").input("owl-42")
    at.button[0].click().run()
    assert not at.exception
    assert at.sidebar.radio(key="sidebar.provider").value == "offline"
