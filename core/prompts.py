"""The MLflow Prompt Registry, in the user's terms: prompts, versions, aliases.

Registered versions are immutable; this module only ever adds versions and moves aliases.
Every function takes an optional ``tracking_uri``; without it MLflow's process-wide URI is used
(set by :func:`core.store.configure_mlflow`). The app always passes one, so sessions pointing at
different stores never share global state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core import tags
from core.errors import InputError
from core.templates import check_template, lost_variables

PROMPT_NAME_RULE = re.compile(r"^[a-zA-Z0-9_.-]+$")
ALIAS_RULE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]*$")
_URI = re.compile(r"^prompts:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))$")
BASELINE_ALIAS = "baseline"


class PromptError(InputError, ValueError):
    """A prompt that cannot be found or registered; the message says what to do."""


@dataclass(frozen=True)
class PromptVersionInfo:
    """One registered version, detached from MLflow's entity (safe to cache and compare)."""

    name: str
    version: int
    template: str
    commit_message: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    created_ms: int | None = None

    @property
    def uri(self) -> str:
        return f"prompts:/{self.name}/{self.version}"


@dataclass(frozen=True)
class PromptSummary:
    name: str
    latest_version: int | None
    aliases: Mapping[str, int]
    description: str | None = None


def parse_prompt_uri(uri: str) -> tuple[str, int | None, str | None]:
    """``prompts:/name/3`` -> (name, 3, None); ``prompts:/name@alias`` -> (name, None, alias)."""
    match = _URI.match(uri.strip())
    if not match:
        raise PromptError(f"'{uri}' is not a prompt URI: write prompts:/NAME/VERSION or prompts:/NAME@ALIAS.")
    version = match.group("version")
    if version is not None:
        if not version.isdigit() or int(version) < 1:
            raise PromptError(f"'{uri}': the version must be a whole number from 1 (for example prompts:/qa/2).")
        return match.group("name"), int(version), None
    return match.group("name"), None, match.group("alias")


def _info(version: Any) -> PromptVersionInfo:
    template = version.template
    if not isinstance(template, str):
        import json

        template = json.dumps(template)
    return PromptVersionInfo(
        name=version.name,
        version=int(version.version),
        template=template,
        commit_message=version.commit_message,
        tags={k: v for k, v in (version.tags or {}).items() if not k.startswith("mlflow.")},
        aliases=tuple(sorted(version.aliases or ())),
        created_ms=version.creation_timestamp,
    )


def _client(tracking_uri: str | None = None):
    import mlflow

    if tracking_uri is None:
        return mlflow.MlflowClient()
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


_MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def _missing(error: BaseException, tracking_uri: str | None) -> bool:
    """True when the registry answered "no such prompt, version or alias"; a failure of the store
    itself (busy, unreachable, broken) is raised as :class:`~core.store.StoreError` instead."""
    if getattr(error, "error_code", None) in _MISSING_CODES:
        return True
    import mlflow

    from core.store import StoreError, describe_store_error

    raise StoreError(describe_store_error(error, tracking_uri or mlflow.get_tracking_uri())) from None


def validate_prompt_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise PromptError("The prompt needs a name (letters, digits, '-', '_' or '.').")
    if not PROMPT_NAME_RULE.match(name):
        raise PromptError(f"'{name}' is not a valid prompt name: use only letters, digits, '-', '_' and '.'.")
    return name


def register_version(
    name: str,
    template: str,
    *,
    commit_message: str | None = None,
    tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
) -> PromptVersionInfo:
    """Add a version of prompt ``name`` (creating the prompt if new). Checks the template first.

    ``tags`` go on the new version only. (MLflow's ``register_prompt`` also copies them onto the
    prompt itself, where concurrent registrations collide.) Two processes registering at the same
    moment can race for a version number; that is retried.
    """
    import random
    import time

    from mlflow.exceptions import MlflowException

    from core.store import retry_store

    name = validate_prompt_name(name)
    check = check_template(template)
    if not check.ok:
        raise PromptError(check.problems[0])
    client = _client(tracking_uri)
    for attempt in range(4):
        try:
            version = retry_store(
                lambda: client.register_prompt(name=name, template=template, commit_message=commit_message or None)
            )
            break
        except MlflowException as error:
            # Another process created the prompt, or took the version number, at the same moment.
            racing = (
                "UNIQUE constraint" in str(error)
                or "IntegrityError" in str(error)
                or getattr(error, "error_code", None) == "RESOURCE_ALREADY_EXISTS"
            )
            if not racing or attempt == 3:
                raise
            time.sleep(0.1 + random.random() * 0.3)
    for key, value in (tags or {}).items():
        retry_store(lambda key=key, value=value: client.set_prompt_version_tag(name, version.version, key, value))
    return get_version(name, int(version.version), tracking_uri=tracking_uri)


def get_version(name: str, version: int, *, tracking_uri: str | None = None) -> PromptVersionInfo:
    from mlflow.exceptions import MlflowException

    from core.store import retry_store

    try:
        found = retry_store(lambda: _client(tracking_uri).get_prompt_version(name, version))
    except MlflowException as error:
        _missing(error, tracking_uri)
        found = None
    if found is None:
        raise PromptError(f"Prompt '{name}' has no version {version}.")
    return _info(found)


def load(uri: str, *, tracking_uri: str | None = None) -> PromptVersionInfo:
    """The version a URI points at, resolving aliases (never cached: aliases move)."""
    from mlflow.exceptions import MlflowException

    from core.store import retry_store

    name, version, alias = parse_prompt_uri(uri)
    client = _client(tracking_uri)
    if alias == "latest":
        versions = list_versions(name, tracking_uri=tracking_uri)
        if not versions:
            raise PromptError(f"There is no prompt named '{name}' in the registry.")
        return versions[0]
    try:
        if alias is not None:
            found = retry_store(lambda: client.get_prompt_version_by_alias(name, alias))
        else:
            found = retry_store(lambda: client.get_prompt_version(name, version))
    except MlflowException as error:
        _missing(error, tracking_uri)
        raise PromptError(_not_found(uri, name, error)) from None
    if found is None:
        raise PromptError(_not_found(uri, name, None))
    return _info(found)


def _not_found(uri: str, name: str, error: BaseException | None) -> str:
    detail = f" ({' '.join(str(error).split())[:160]})" if error else ""
    return f"No prompt found at {uri}{detail}: check the name, version or alias on the Prompts page."


def list_prompts(*, tracking_uri: str | None = None) -> list[PromptSummary]:
    """Every prompt in the registry, by name, with its latest version and aliases."""
    client = _client(tracking_uri)
    summaries = []
    token = None
    while True:
        page = client.search_prompts(max_results=200, page_token=token)
        for prompt in page:
            versions = list_versions(prompt.name, tracking_uri=tracking_uri)
            aliases = {alias: v.version for v in versions for alias in v.aliases}
            summaries.append(
                PromptSummary(
                    name=prompt.name,
                    latest_version=versions[0].version if versions else None,
                    aliases=aliases,
                    description=getattr(prompt, "description", None),
                )
            )
        token = page.token
        if not token:
            break
    return sorted(summaries, key=lambda s: s.name.lower())


def list_versions(name: str, *, with_aliases: bool = True, tracking_uri: str | None = None) -> list[PromptVersionInfo]:
    """All versions of ``name``, newest first; empty when the prompt does not exist.

    The registry's version search leaves aliases out, so with ``with_aliases`` each version is
    fetched on its own (one query each).
    """
    from mlflow.exceptions import MlflowException

    from core.store import retry_store

    client = _client(tracking_uri)
    found = []
    token = None
    try:
        while True:
            page = retry_store(
                lambda token=token: client.search_prompt_versions(name, max_results=200, page_token=token)
            )
            found.extend(page)
            token = getattr(page, "token", None)
            if not token:
                break
        if with_aliases:
            found = [retry_store(lambda v=v: client.get_prompt_version(name, v.version)) for v in found]
    except MlflowException as error:
        _missing(error, tracking_uri)
        return []
    return sorted((_info(v) for v in found), key=lambda v: -v.version)


def set_alias(name: str, alias: str, version: int, *, tracking_uri: str | None = None) -> None:
    """Point ``prompts:/name@alias`` at ``version`` (moving it if it pointed elsewhere)."""
    alias = alias.strip()
    if not ALIAS_RULE.match(alias) or alias == "latest":
        raise PromptError(
            f"'{alias}' is not a valid alias: start with a letter, then letters, digits, '-' or '_' "
            "('latest' is reserved)."
        )
    from core.store import retry_store

    get_version(name, version, tracking_uri=tracking_uri)  # a clear error for a version that does not exist
    retry_store(lambda: _client(tracking_uri).set_prompt_alias(name=name, alias=alias, version=version))


def find_version_with_template(
    name: str, template: str, *, tracking_uri: str | None = None
) -> PromptVersionInfo | None:
    """The newest version of ``name`` whose template is exactly ``template``."""
    versions = list_versions(name, with_aliases=False, tracking_uri=tracking_uri)
    return next((v for v in versions if v.template == template), None)


def find_or_register(
    name: str,
    template: str,
    *,
    commit_message: str | None = None,
    tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
) -> tuple[PromptVersionInfo, bool]:
    """The version of ``name`` whose text is exactly ``template`` (and True), or a new version of it
    (and False). One process of this machine at a time per prompt (:func:`core.store.registry_lock`),
    so two sessions or runs registering the same text at once make one version, never two."""
    from core.store import registry_lock

    with registry_lock(_registry_uri(tracking_uri), name):
        existing = find_version_with_template(name, template, tracking_uri=tracking_uri)
        if existing is not None:
            return existing, True
        version = register_version(name, template, commit_message=commit_message, tags=tags, tracking_uri=tracking_uri)
        return version, False


@dataclass(frozen=True)
class VersionCheck:
    """What stands between a typed template and a new version of a prompt: ``refusal`` (it may not
    be registered at all) or ``warnings`` (it may, once someone has read and confirmed them)."""

    refusal: str | None = None
    warnings: tuple[str, ...] = ()


def check_new_version(
    name: str,
    template: str,
    versions: Sequence[PromptVersionInfo],
    others: Sequence[PromptVersionInfo] = (),
    *,
    opened_from: str | None = None,
) -> VersionCheck:
    """Whether ``template`` should become a new version of prompt ``name`` (pure: the caller reads
    the registry).

    Args:
        versions: the versions of ``name`` (any order; empty for a new prompt).
        others: versions of other prompts, to notice a text that is one of theirs.
        opened_from: the prompt whose version the text was opened from, when it was.

    Refused: the text of ``name``'s latest version (the registry would hold two identical versions).
    Warned: a text that drops a ``{{variable}}`` of that latest version (datasets and runs made for it
    would no longer fill it in); a text that is another prompt's version, or was opened from another
    prompt, under the name of an existing prompt.
    """
    latest = max(versions, key=lambda v: v.version, default=None)
    if latest is not None and latest.template == template:
        return VersionCheck(
            refusal=f"This text is already version {latest.version} of {name}, its latest: change it to register "
            "a new version (the registry would hold two identical versions)."
        )
    warnings = []
    if latest is not None and (lost := lost_variables(latest.template, template)):
        dropped = ", ".join("{{" + v + "}}" for v in lost)
        warnings.append(
            f"This version drops {dropped}, which version {latest.version} of {name} uses: datasets and runs "
            "made for it would no longer fill it in."
        )
    same = next((v for v in others if v.name != name and v.template == template), None)
    if latest is not None and same is not None:
        warnings.append(
            f"This text is version {same.version} of {same.name}, another prompt: registering it adds it to "
            f"{name} as well."
        )
    elif latest is not None and opened_from and opened_from != name:
        warnings.append(
            f"This text was opened from {opened_from}, but the name is {name}, another prompt: registering "
            f"adds it as a version of {name}."
        )
    return VersionCheck(warnings=tuple(warnings))


def register_typed_version(
    name: str,
    template: str,
    *,
    commit_message: str | None = None,
    tags: Mapping[str, str] | None = None,
    tracking_uri: str | None = None,
) -> PromptVersionInfo:
    """Register a version someone typed (the Prompts page), refusing the text of the prompt's latest
    version (:func:`check_new_version`'s refusal), checked again under the prompt's registry lock so
    two sessions clicking at once cannot both add it.

    Raises:
        PromptError: refused, or an unusable name or template.
    """
    from core.store import registry_lock

    name = validate_prompt_name(name)
    with registry_lock(_registry_uri(tracking_uri), name):
        versions = list_versions(name, with_aliases=False, tracking_uri=tracking_uri)
        if refusal := check_new_version(name, template, versions).refusal:
            raise PromptError(refusal)
        return register_version(name, template, commit_message=commit_message, tags=tags, tracking_uri=tracking_uri)


def _registry_uri(tracking_uri: str | None) -> str:
    if tracking_uri is not None:
        return tracking_uri
    import mlflow

    return mlflow.get_tracking_uri()


def ensure_baseline(
    name: str, template: str, *, commit_message: str, tracking_uri: str | None = None
) -> PromptVersionInfo:
    """Register ``template`` as ``name`` unless a version already holds it; point ``@baseline`` at it
    when the prompt has no baseline yet."""
    version, _ = find_or_register(
        name,
        template,
        commit_message=commit_message,
        tags={tags.SOURCE: "bundled baseline"},
        tracking_uri=tracking_uri,
    )
    if not any(BASELINE_ALIAS in v.aliases for v in list_versions(name, tracking_uri=tracking_uri)):
        set_alias(name, BASELINE_ALIAS, version.version, tracking_uri=tracking_uri)
    return get_version(name, version.version, tracking_uri=tracking_uri)


def ensure_bundled_prompts(*, tracking_uri: str | None = None) -> list[PromptVersionInfo]:
    """Register the bundled baseline of each sample dataset the first time a store is used."""
    from core.datasets import bundled_datasets

    return [
        ensure_baseline(
            bundled.prompt_name,
            bundled.baseline_template,
            commit_message=f"Bundled plain baseline for the {bundled.title} sample dataset",
            tracking_uri=tracking_uri,
        )
        for bundled in bundled_datasets()
    ]


def parse_tags(text: str) -> dict[str, str]:
    """``key=value`` lines (blank lines ignored) as a dict; ``PromptError`` names a bad line."""
    tags: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise PromptError(f"Tag line {number} '{line.strip()}' is not key=value.")
        tags[key.strip()] = value.strip()
    return tags
