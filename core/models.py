"""Task and reflection models: configuration, clients, retries, reachability checks.

Both the task model and GEPA's reflection model are called with the ``openai`` client, at the same
base URL. (GEPA's own default calls the reflection model through litellm; every provider here speaks
OpenAI's protocol, and importing litellm costs a run process about 4 s and 120 MB, so runs do not.)
Providers: the built-in offline demo (simulated), OpenAI, or any OpenAI-compatible endpoint (Ollama,
vLLM, llama.cpp server, LM Studio) given by its base URL.

Failures are classified once, here: transient ones (429 honouring Retry-After, 5xx, timeouts,
connection resets, unparseable bodies) are retried with exponential backoff; permanent ones (401,
403, unknown model) raise :class:`ModelAccessError` with one line saying what to fix.
API keys are never part of a config's public form and are scrubbed from every error message.

Every successful response is metered: its prompt and completion tokens (as the endpoint reported
them in ``usage``) and its latency go to a :class:`UsageMeter` under the role that made the call
(task, reflection or judge), preflight checks included. Share one meter between the models of a run
to get the run's tally; prices turn it into money (:mod:`core.pricing`).
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from core.errors import ConfigError, InputError
from core.offline_model.behaviour import MODEL_NAME as OFFLINE_MODEL_NAME

Provider = Literal["offline", "openai"]
PROVIDERS: tuple[Provider, ...] = ("offline", "openai")
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_OPENAI_REFLECTION_MODEL = "gpt-4o"
NO_KEY_PLACEHOLDER = "not-needed"  # the openai client insists on a key; local servers ignore it

T = TypeVar("T")

Role = Literal["task", "reflection", "judge"]
ROLES: tuple[Role, ...] = ("task", "reflection", "judge")


ProviderChoice = Literal["offline", "openai", "compatible"]
PROVIDER_CHOICES: dict[ProviderChoice, str] = {
    "offline": "Offline demo model (simulated)",
    "openai": "OpenAI",
    "compatible": "OpenAI-compatible endpoint",
}


class ModelError(InputError):
    """A model call that failed; ``str()`` is one line a user can act on."""


class ModelAccessError(ModelError):
    """Permanent: the key was refused, access denied or the model is unknown. Retrying cannot help."""


class ModelCallError(ModelError):
    """Transient failures that outlasted every retry, or a response that could not be used."""


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def public_url(url: str | None) -> str | None:
    """A URL without user name, password or query values (some gateways take keys there), safe to log."""
    if not url:
        return url
    parts = urlsplit(url)
    if not (parts.username or parts.password or parts.query):
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    query = "&".join(f"{pair.split('=', 1)[0]}=***" for pair in parts.query.split("&") if pair)
    return urlunsplit((parts.scheme, host, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class ModelConfig:
    """Which models a run uses. The API key is held here but never shown, logged or serialised.

    ``provider="openai"`` with a ``base_url`` is any OpenAI-compatible endpoint.
    """

    provider: Provider = "offline"
    model: str | None = None
    reflection_model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)
    timeout_seconds: float = 60.0
    max_retries: int = 4
    simulated_delay_ms: float = 0.0
    simulated_error_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ConfigError(f"Unknown provider '{self.provider}': choose offline or openai.")
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(
                    f"The base URL '{public_url(self.base_url)}' is not an http(s) URL: "
                    "write it like http://127.0.0.1:11434/v1."
                )
        if self.timeout_seconds <= 0:
            raise ConfigError("The model timeout must be more than 0 seconds.")
        if not 0 <= self.simulated_delay_ms <= 10_000:
            raise ConfigError("The simulated delay must be between 0 and 10,000 ms.")
        if not 0 <= self.simulated_error_rate <= 0.9:
            raise ConfigError("The simulated error rate must be between 0 and 0.9 (for example 0.1 for 10%).")
        if self.max_retries < 0:
            raise ConfigError("Retries must be 0 or more.")
        if self.is_offline and self.base_url is not None:
            raise ConfigError(
                "A base URL is for an OpenAI-compatible endpoint, not the offline demo model: choose the "
                "openai provider (--provider openai --base-url URL) to use it."
            )
        if self.is_offline and any(v not in (None, OFFLINE_MODEL_NAME) for v in (self.model, self.reflection_model)):
            raise ConfigError(
                f"The offline demo model is only '{OFFLINE_MODEL_NAME}': to use another model, choose the openai "
                "provider (with --base-url for Ollama, vLLM or llama.cpp)."
            )
        if not self.is_offline and (self.simulated_delay_ms or self.simulated_error_rate):
            raise ConfigError("The simulated delay and error rate only apply to the offline demo model.")
        if self.provider == "openai" and self.base_url is None and not self.api_key:
            raise ConfigError(
                "OpenAI needs an API key: set OPENAI_API_KEY (or type it in the sidebar), "
                "or choose the offline demo model."
            )
        for label, value in (("model", self.model), ("reflection model", self.reflection_model)):
            if value is not None and not value.strip():
                raise ConfigError(f"The {label} name is empty.")

    @classmethod
    def from_env(cls, provider: Provider = "offline", **overrides: Any) -> ModelConfig:
        """Read ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` for the openai provider."""
        if provider == "openai":
            overrides.setdefault("api_key", os.environ.get("OPENAI_API_KEY") or None)
            overrides.setdefault("base_url", os.environ.get("OPENAI_BASE_URL") or None)
        return cls(provider=provider, **overrides)

    @property
    def is_offline(self) -> bool:
        return self.provider == "offline"

    @property
    def task_model(self) -> str:
        if self.model:
            return self.model
        return OFFLINE_MODEL_NAME if self.is_offline else DEFAULT_OPENAI_MODEL

    @property
    def reflection_model_name(self) -> str:
        if self.reflection_model:
            return self.reflection_model
        if self.is_offline:
            return OFFLINE_MODEL_NAME
        # On a custom endpoint the task model is the one model we know exists.
        return self.task_model if self.base_url else DEFAULT_OPENAI_REFLECTION_MODEL

    @property
    def label(self) -> str:
        if self.is_offline:
            return "Offline demo model (simulated, not a language model)"
        if self.base_url:
            return f"OpenAI-compatible endpoint at {public_url(self.base_url)}"
        return "OpenAI"

    def public_dict(self) -> dict[str, Any]:
        """Everything about the models that is safe to log: never the key."""
        public = {
            "provider": self.provider,
            "task_model": self.task_model,
            "reflection_model": self.reflection_model_name,
            "base_url": public_url(self.base_url),
            "simulated": self.is_offline,
        }
        if self.is_offline:
            public |= {"simulated_delay_ms": self.simulated_delay_ms, "simulated_error_rate": self.simulated_error_rate}
        return public


@dataclass(frozen=True)
class Endpoint:
    """A resolved place to send requests. ``api_key`` is never logged."""

    base_url: str
    api_key: str = field(repr=False)
    # The offline demo model answers the openai client in this process (an httpx transport, no
    # socket); ``base_url`` still serves it over HTTP, for the judge's path through MLflow and litellm.
    transport: Any = field(default=None, repr=False, compare=False)

    def client(self, timeout: float) -> Any:
        """An ``openai.OpenAI`` client for this endpoint, without the client's own retries (ours are
        counted, classified and honour Retry-After)."""
        import openai

        http_client = None
        if self.transport is not None:
            import httpx

            http_client = httpx.Client(transport=self.transport, timeout=timeout)
        return openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key, max_retries=0, timeout=timeout, http_client=http_client
        )


def resolve_endpoint(config: ModelConfig) -> Endpoint:
    """Where requests go; for the offline provider this starts the in-process endpoint once."""
    if config.is_offline:
        from core.offline_model.server import shared_offline_server

        server = shared_offline_server(config.simulated_delay_ms, config.simulated_error_rate)
        return Endpoint(server.base_url, NO_KEY_PLACEHOLDER, server.transport())
    base_url = config.base_url or "https://api.openai.com/v1"
    return Endpoint(base_url, config.api_key or NO_KEY_PLACEHOLDER)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; ``Retry-After`` from the server wins, up to ``max_wait``."""

    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_wait: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        return min(self.max_delay, self.base_delay * 2**attempt) * (0.5 + rng.random() / 2)


@dataclass
class CallStats:
    """Thread-safe counts of calls, retries and failures for one model."""

    calls: int = 0
    retries: int = 0
    failures: int = 0
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, *, retries: int = 0, error: str | None = None) -> None:
        with self._lock:
            self.calls += 1
            self.retries += retries
            if error is not None:
                self.failures += 1
                self.last_error = error

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "retries": self.retries,
                "failures": self.failures,
                "last_error": self.last_error,
            }


@dataclass(frozen=True)
class Usage:
    """What the successful responses of one role cost: tokens as the endpoint reported them, and
    seconds from request to parsed reply (of the attempt that succeeded; retries are in
    :class:`CallStats`). ``unreported`` counts responses without ``usage``: their tokens are
    unknown, not zero."""

    responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    unreported: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def seconds_per_response(self) -> float | None:
        return self.seconds / self.responses if self.responses else None

    @property
    def completion_tokens_per_response(self) -> float | None:
        reported = self.responses - self.unreported
        return self.completion_tokens / reported if reported > 0 else None

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.responses + other.responses,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.seconds + other.seconds,
            self.unreported + other.unreported,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "responses": self.responses,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 6),
            "unreported": self.unreported,
        }


class UsageMeter:
    """Thread-safe tally of :class:`Usage` per role (task, reflection, judge)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: dict[Role, Usage] = {role: Usage() for role in ROLES}

    def record(self, role: Role, *, prompt_tokens: int | None, completion_tokens: int | None, seconds: float) -> None:
        """One successful response. Token counts of None (the response had no usage) are counted
        as unreported."""
        if role not in ROLES:
            raise ValueError(f"Unknown role '{role}': choose one of {', '.join(ROLES)}.")
        reported = prompt_tokens is not None and completion_tokens is not None
        one = Usage(
            1,
            int(prompt_tokens or 0) if reported else 0,
            int(completion_tokens or 0) if reported else 0,
            max(seconds, 0.0),
            0 if reported else 1,
        )
        with self._lock:
            self._usage[role] = self._usage[role] + one

    def add(self, other: UsageMeter) -> None:
        """Add everything ``other`` recorded to this meter."""
        for role, usage in other.snapshot().items():
            with self._lock:
                self._usage[role] = self._usage[role] + usage

    def usage(self, role: Role) -> Usage:
        with self._lock:
            return self._usage[role]

    def snapshot(self) -> dict[Role, Usage]:
        with self._lock:
            return dict(self._usage)

    def total(self) -> Usage:
        total = Usage()
        for usage in self.snapshot().values():
            total = total + usage
        return total

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {role: usage.to_dict() for role, usage in self.snapshot().items()}


def reported_usage(response: Any) -> tuple[int | None, int | None]:
    """(prompt tokens, completion tokens) of a chat completion from the ``openai`` client or
    litellm; (None, None) when the response carries no usage."""
    usage = getattr(response, "usage", None)
    if usage is None and isinstance(response, dict):
        usage = response.get("usage")
    if usage is None:
        return None, None
    if isinstance(usage, dict):
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    else:
        prompt, completion = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None, None
    return prompt, completion


@dataclass(frozen=True)
class _Failure:
    permanent: bool  # stops the run: every later call would fail the same way
    message: str
    retry_after: float | None = None
    retry: bool = True  # False: this request fails as it is (a 400), but other requests may not


def classify_error(error: BaseException, *, who: str, model: str, base_url: str) -> _Failure:
    """Sort an exception from the openai client or litellm into permanent or transient."""
    status = getattr(error, "status_code", None)
    response = getattr(error, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
    where = public_url(base_url)
    if status in (401, 403):
        verb = "refused the API key" if status == 401 else "denied access"
        return _Failure(True, f"The {who} endpoint {where} {verb} ({status}): check the API key and its permissions.")
    if status == 404:
        return _Failure(
            True,
            f"The {who} endpoint {where} does not know the model '{model}' (404): "
            "check the model name and the base URL.",
        )
    if status == 429:
        return _Failure(False, f"rate limited (429) by {where}", _retry_after(response))
    if status is not None and status >= 500:
        return _Failure(False, f"server error ({status}) from {where}")
    if status is not None and status < 400:
        # A success status on an error: the body could not be used (litellm reports 200 for unreadable JSON).
        return _Failure(False, f"the response from {where} could not be read ({_short(error)[:80]})")
    if status in (408, 409, 425):
        return _Failure(False, f"the request could not be served yet ({status}) by {where}")
    if status is not None:
        # 400, 413, 422...: this request as it is (too long, filtered) - sending it again will not help.
        return _Failure(False, f"request rejected ({status}) by {where}: {_short(error)}", retry=False)
    name = type(error).__name__
    text = _short(error)
    if "Timeout" in name or "timed out" in text.lower():
        return _Failure(False, f"no answer from {where} within the timeout")
    if "Connection" in name or "connect" in text.lower():
        return _Failure(False, f"could not connect to {where}: is the server running and the URL right?")
    if isinstance(error, ValueError):  # includes JSONDecodeError: a body that is not a chat completion
        return _Failure(False, f"the response from {where} could not be read ({text[:80]})")
    return _Failure(False, f"{name} from {where}: {text}")


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def call_with_retries(
    call: Callable[[], T],
    *,
    who: str,
    model: str,
    base_url: str,
    policy: RetryPolicy,
    stats: CallStats | None = None,
    secrets: tuple[str | None, ...] = (),
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; retry transient failures; raise :class:`ModelAccessError` or :class:`ModelCallError`."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            result = call()
        except Exception as error:  # noqa: BLE001 - every client error is classified below
            failure = classify_error(error, who=who, model=model, base_url=base_url)
            message = redact(failure.message, *secrets)
            if failure.permanent:
                if stats is not None:
                    stats.record(retries=attempt, error=message)
                raise ModelAccessError(message) from None
            if attempt >= policy.max_retries or not failure.retry:
                final = f"The {who} call failed after {attempt + 1} attempt(s): {message}"
                final += "" if final.endswith((".", "?", "!", ")")) else "."
                if stats is not None:
                    stats.record(retries=attempt, error=final)
                raise ModelCallError(final) from None
            sleep(policy.delay(attempt, failure.retry_after, rng))
            attempt += 1
            continue
        if stats is not None:
            stats.record(retries=attempt)
        return result


def _content(completion: Any) -> str:
    """The reply text of a chat completion; a body without one counts as unparseable."""
    try:
        content = completion.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        raise ConfigError("the response has no message content")
    return content


class TaskModel:
    """The model that answers dataset examples, through the ``openai`` client. Thread-safe.

    Each successful response is recorded in ``meter`` under ``role`` (``"task"``; the preflight
    check uses this client for the other roles too)."""

    def __init__(
        self,
        config: ModelConfig,
        endpoint: Endpoint,
        policy: RetryPolicy | None = None,
        *,
        meter: UsageMeter | None = None,
        role: Role = "task",
    ):

        self.config = config
        self.endpoint = endpoint
        self.policy = policy or RetryPolicy(max_retries=config.max_retries)
        self.stats = CallStats()
        self.meter = meter if meter is not None else UsageMeter()
        self.role = role
        self._client = endpoint.client(config.timeout_seconds)

    def complete(self, prompt: str) -> str:
        def call() -> str:
            started = time.perf_counter()
            completion = self._client.chat.completions.create(
                model=self.config.task_model, messages=[{"role": "user", "content": prompt}]
            )
            text = _content(completion)
            prompt_tokens, completion_tokens = reported_usage(completion)
            self.meter.record(
                self.role,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                seconds=time.perf_counter() - started,
            )
            return text

        return call_with_retries(
            call,
            who="task model",
            model=self.config.task_model,
            base_url=self.endpoint.base_url,
            policy=self.policy,
            stats=self.stats,
            secrets=(self.endpoint.api_key, self.config.api_key),
        )


class ReflectionModel:
    """GEPA's reflection language model, called with the ``openai`` client (as the task model is) with
    our retries and counts. Thread-safe.

    Conforms to GEPA's ``LanguageModel`` protocol: ``(prompt or messages) -> str``.
    """

    def __init__(
        self,
        config: ModelConfig,
        endpoint: Endpoint,
        policy: RetryPolicy | None = None,
        *,
        meter: UsageMeter | None = None,
    ):

        self.config = config
        self.endpoint = endpoint
        self.policy = policy or RetryPolicy(max_retries=config.max_retries)
        self.stats = CallStats()
        self.meter = meter if meter is not None else UsageMeter()
        self._client = endpoint.client(config.timeout_seconds)

    def __call__(self, prompt: str | list[dict[str, Any]]) -> str:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt

        def call() -> str:
            started = time.perf_counter()
            completion = self._client.chat.completions.create(
                model=self.config.reflection_model_name,
                messages=messages,  # type: ignore[arg-type]
            )
            text = _content(completion)
            prompt_tokens, completion_tokens = reported_usage(completion)
            self.meter.record(
                "reflection",
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                seconds=time.perf_counter() - started,
            )
            return text

        return call_with_retries(
            call,
            who="reflection model",
            model=self.config.reflection_model_name,
            base_url=self.endpoint.base_url,
            policy=self.policy,
            stats=self.stats,
            secrets=(self.endpoint.api_key, self.config.api_key),
        )


@dataclass(frozen=True)
class ModelCheck:
    """The outcome of one cheap call to a model; ``usage`` is what that call cost (None if it failed)."""

    role: str
    model: str
    ok: bool
    message: str
    seconds: float
    usage: Usage | None = None


PROBE_PROMPT = "Reply with the single word OK."


def check_model(
    config: ModelConfig,
    *,
    role: Role,
    policy: RetryPolicy | None = None,
    meter: UsageMeter | None = None,
    model: str | None = None,
    prompt: str = PROBE_PROMPT,
) -> ModelCheck:
    """One short chat call that proves the endpoint answers, the key is accepted and the model exists.

    The reflection model is checked through :class:`ReflectionModel`, the path GEPA will use; the task
    and judge models through :class:`TaskModel` (the judge's full path, through MLflow, is
    :func:`core.judges.check_judge`); all with the ``openai`` client. ``model`` names the model to probe
    (default: the role's model; for the judge, the task model). The call's usage is returned and,
    with ``meter``, recorded there under ``role``. Pass a real rendered example as ``prompt`` to see
    how long the model's replies are (:func:`core.estimate.estimate_run` wants that).
    """
    started = time.perf_counter()
    endpoint = resolve_endpoint(config)
    # A few quick retries whatever the run's own setting: one unlucky 429 must not fail a check.
    policy = policy or RetryPolicy(max_retries=2, base_delay=0.2, max_delay=1.0, max_wait=5.0)
    name = model or (config.reflection_model_name if role == "reflection" else config.task_model)
    probe_meter = UsageMeter()
    try:
        if role == "reflection":
            probe_config = (
                config if name == config.reflection_model_name else dataclasses.replace(config, reflection_model=name)
            )
            ReflectionModel(probe_config, endpoint, policy, meter=probe_meter)(prompt)
        else:
            probe_config = config if name == config.task_model else dataclasses.replace(config, model=name)
            TaskModel(probe_config, endpoint, policy, meter=probe_meter, role=role).complete(prompt)
    except ModelError as error:
        return ModelCheck(role, name, False, str(error), time.perf_counter() - started)
    if meter is not None:
        meter.add(probe_meter)
    usage = probe_meter.usage(role)
    return ModelCheck(role, name, True, f"{name} answers", time.perf_counter() - started, usage)


def model_config_for(
    choice: ProviderChoice,
    *,
    base_url: str | None = None,
    model: str | None = None,
    reflection_model: str | None = None,
    api_key: str | None = None,
    simulated_delay_ms: float = 0.0,
    simulated_error_rate: float = 0.0,
) -> ModelConfig:
    """The :class:`ModelConfig` for one of the app's three provider choices; ``ConfigError`` says what
    is missing (an OpenAI key, a base URL, a model name for a custom endpoint)."""
    clean = {
        k: (v.strip() or None) if isinstance(v, str) else v
        for k, v in {
            "base_url": base_url,
            "model": model,
            "reflection_model": reflection_model,
            "api_key": api_key,
        }.items()
    }
    if choice == "offline":
        return ModelConfig("offline", simulated_delay_ms=simulated_delay_ms, simulated_error_rate=simulated_error_rate)
    if choice == "openai":
        return ModelConfig(
            "openai", model=clean["model"], reflection_model=clean["reflection_model"], api_key=clean["api_key"]
        )
    if not clean["base_url"]:
        raise ConfigError("Give the endpoint's base URL, for example http://127.0.0.1:11434/v1 for Ollama.")
    if not clean["model"]:
        raise ConfigError("Give the model name the endpoint serves (for Ollama, for example llama3.1).")
    return ModelConfig(
        "openai",
        model=clean["model"],
        reflection_model=clean["reflection_model"],
        base_url=clean["base_url"],
        api_key=clean["api_key"],
    )
