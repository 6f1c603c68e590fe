"""The offline demo model served as a real OpenAI-compatible endpoint on 127.0.0.1.

``POST /v1/chat/completions`` and ``GET /v1/models`` speak the protocol the ``openai`` client and
litellm expect, so the app exercises exactly the client path it uses with a real provider. A run's
task and reflection models reach the same endpoint in their own process through
:class:`OfflineTransport` (the ``openai`` client's requests and parsing unchanged, no socket); the
judge, which goes through MLflow and litellm, uses the HTTP server.
Latency and failures can be injected (a fixed delay, a seeded error rate, or a scripted list of
faults for tests: ``429``, ``500``, ``400``, ``timeout``, ``garbage``).

Every reply carries a plausible ``usage``: tokens estimated from words by :mod:`core.tokens` (about
4 tokens per 3 words, plus OpenAI's chat framing), not zero and not a real tokenizer's count. The
endpoint keeps what it served (:class:`ServedTotals`, per kind of request: task, reflection, judge),
so tests can check that a client meters exactly what it was sent. A request carrying MLflow's judge
prompt gets the simulated judge's verdict (see :mod:`core.offline_model.behaviour`).
"""

import asyncio
import collections
import itertools
import json
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from core.offline_model.behaviour import (
    MODEL_NAME,
    answer_prompt,
    is_judge_request,
    is_reflection_request,
    judge_reply,
    reflect,
)
from core.tokens import chat_prompt_tokens, message_text, text_tokens

FAULT_KINDS = ("429", "500", "400", "timeout", "garbage")


@dataclass(frozen=True)
class OfflineConfig:
    """How the endpoint behaves. ``fault_plan`` faults are served first, one per request, in order."""

    delay_ms: float = 0.0
    error_rate: float = 0.0
    seed: int = 0
    fault_plan: Sequence[str] = field(default=())
    api_key: str | None = None
    timeout_fault_seconds: float = 30.0
    retry_after_seconds: float = 0.05

    def __post_init__(self) -> None:
        if self.delay_ms < 0:
            raise ValueError("The delay must be 0 ms or more.")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("The error rate must be between 0 and 1 (for example 0.1 for 10%).")
        unknown = [f for f in self.fault_plan if f not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"Unknown fault '{unknown[0]}': choose from {', '.join(FAULT_KINDS)}.")


def _error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(text for text in (message_text(m.get("content")) for m in messages) if text)


RequestKind = Literal["task", "reflection", "judge"]
REQUEST_KINDS: tuple[RequestKind, ...] = ("task", "reflection", "judge")


def request_kind(messages: list[dict[str, Any]]) -> RequestKind:
    """Which of the offline model's jobs a chat request asks for, recognised by its prompt: MLflow's
    judge system prompt, GEPA's reflection prompt, or anything else (a task)."""
    prompt = _prompt_text(messages)
    if is_judge_request(prompt):
        return "judge"
    return "reflection" if is_reflection_request(prompt) else "task"


def reply_to(messages: list[dict[str, Any]]) -> str:
    """What the offline model answers to a chat request: a task answer, a reflection or a verdict."""
    prompt = _prompt_text(messages)
    kind = request_kind(messages)
    if kind == "judge":
        return judge_reply(prompt)
    return reflect(prompt) if kind == "reflection" else answer_prompt(prompt)


@dataclass(frozen=True)
class Served:
    """What the endpoint answered for one kind of request: replies and the usage it reported."""

    responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ServedTotals:
    """Thread-safe totals of the successful replies an endpoint served, per kind of request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._served: dict[str, Served] = {kind: Served() for kind in REQUEST_KINDS}

    def add(self, kind: str, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            old = self._served.get(kind, Served())
            self._served[kind] = Served(
                old.responses + 1, old.prompt_tokens + prompt_tokens, old.completion_tokens + completion_tokens
            )

    def snapshot(self) -> dict[str, Served]:
        with self._lock:
            return dict(self._served)


@dataclass(frozen=True)
class Reply:
    """One answer of the endpoint: a status, a JSON payload (or raw ``text``), extra headers, and how
    long to stall first (the ``timeout`` fault: longer than any client waits)."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    stall_seconds: float = 0.0
    # Counted as served only once delivered after the stall (a client that gave up never got it).
    pending: tuple[str, int, int] | None = None


class OfflineEndpoint:
    """The endpoint's behaviour, without a network: what it answers to each request, its injected
    latency and faults, and what it served. Thread-safe. Served over HTTP by :func:`create_app`, and in
    this process by :class:`OfflineTransport` (the same replies, faults and totals, no socket)."""

    def __init__(self, config: OfflineConfig | None = None, served: ServedTotals | None = None):
        self.config = config or OfflineConfig()
        self.served = served if served is not None else ServedTotals()
        self._lock = threading.Lock()
        self._plan = iter(self.config.fault_plan)
        self._counter = itertools.count(1)
        self._seen: collections.Counter[str] = collections.Counter()

    def next_fault(self, messages: list[dict[str, Any]]) -> str | None:
        """The planned fault, else a random one drawn from (seed, request, how often it was sent): the
        same requests meet the same faults whatever order concurrent calls arrive in."""
        config = self.config
        with self._lock:
            planned = next(self._plan, None)
            if planned is not None:
                return planned
            if not config.error_rate:
                return None
            key = json.dumps(messages, sort_keys=True)
            self._seen[key] += 1
            draw = random.Random(f"{config.seed}:{self._seen[key]}:{key}")
        if draw.random() < config.error_rate:
            return draw.choice(("429", "500"))
        return None

    def unauthorized(self, authorization: str | None) -> Reply | None:
        if self.config.api_key is None or (authorization or "") == f"Bearer {self.config.api_key}":
            return None
        return Reply(401, _error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))

    def models(self, authorization: str | None, model_id: str | None = None) -> Reply:
        if (denied := self.unauthorized(authorization)) is not None:
            return denied
        if model_id is None:
            return Reply(200, {"object": "list", "data": [_model_card()]})
        return Reply(200, _model_card()) if model_id == MODEL_NAME else Reply(404, _unknown_model(model_id))

    def chat(self, body: bytes, authorization: str | None) -> Reply:
        """``POST /v1/chat/completions``, after the configured delay (which the caller sleeps: see
        :attr:`OfflineConfig.delay_ms`)."""
        if (denied := self.unauthorized(authorization)) is not None:
            return denied
        try:
            request = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return Reply(400, _error_body("The request body is not valid JSON.", "invalid_request_error"))
        if not isinstance(request, dict) or request.get("model") != MODEL_NAME:
            name = request.get("model") if isinstance(request, dict) else None
            return Reply(404, _unknown_model(str(name)))
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            return Reply(400, _error_body("'messages' must be a non-empty list.", "invalid_request_error"))
        if request.get("stream"):
            message = "The offline demo model does not stream; send stream=false."
            return Reply(400, _error_body(message, "invalid_request_error"))
        fault = self.next_fault(messages)
        if fault == "429":
            return Reply(
                429,
                _error_body("Rate limit reached (simulated).", "rate_limit_error", "rate_limit_exceeded"),
                {"retry-after": f"{self.config.retry_after_seconds:g}"},
            )
        if fault == "500":
            return Reply(500, _error_body("Internal error (simulated).", "server_error"))
        if fault == "400":
            message = "This request exceeds the model's context length (simulated)."
            return Reply(400, _error_body(message, "invalid_request_error", "context_length_exceeded"))
        stall = self.config.timeout_fault_seconds if fault == "timeout" else 0.0
        if fault == "garbage":
            return Reply(200, text="<html>upstream proxy error</html>")
        text = reply_to(messages)
        prompt_tokens = chat_prompt_tokens(messages)
        completion_tokens = max(1, text_tokens(text))
        served = (request_kind(messages), prompt_tokens, completion_tokens)
        if not stall:
            self.served.add(*served)
        payload = {
            "id": f"chatcmpl-offline-{next(self._counter)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL_NAME,
            "system_fingerprint": "offline-demo",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return Reply(200, payload, stall_seconds=stall, pending=served if stall else None)

    def delivered(self, reply: Reply) -> Reply:
        """``reply`` once the stall is over and it is sent: a stalled reply is counted as served now."""
        if reply.pending is not None:
            self.served.add(*reply.pending)
        return reply


def create_app(config: OfflineConfig | None = None, served: ServedTotals | None = None, *, endpoint=None):
    """Build the ASGI app (-> fastapi.FastAPI) over ``endpoint`` (or a new :class:`OfflineEndpoint`).
    Imported lazily: FastAPI is only needed when the endpoint runs. What it serves is added to
    ``served`` (also ``app.state.served``)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    endpoint = endpoint or OfflineEndpoint(config, served)
    app = FastAPI(title="GEPA Explorer offline demo model (simulated, not a language model)")
    app.state.served = endpoint.served

    def respond(reply: Reply):
        if reply.text is not None:
            return Response(reply.text, reply.status, headers=reply.headers, media_type="application/json")
        return JSONResponse(reply.payload, reply.status, headers=reply.headers or None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": MODEL_NAME, "simulated": "true"}

    @app.get("/v1/models")
    async def models(request: Request):
        return respond(endpoint.models(request.headers.get("authorization")))

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str, request: Request):
        return respond(endpoint.models(request.headers.get("authorization"), model_id))

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.body()
        if endpoint.config.delay_ms:
            await asyncio.sleep(endpoint.config.delay_ms / 1000)
        reply = await run_in_threadpool(endpoint.chat, body, request.headers.get("authorization"))
        if reply.stall_seconds:
            await asyncio.sleep(reply.stall_seconds)
        return respond(endpoint.delivered(reply))

    return app


class OfflineTransport(httpx.BaseTransport):
    """An ``httpx`` transport that answers the ``openai`` client from an :class:`OfflineEndpoint` in
    this process: the client builds, sends (as bytes) and parses every request exactly as over the
    network, with the endpoint's delay, faults and usage, but without a socket, an event loop or a
    thread hop per call (about 5 times less time per call measured: benchmarks/offline_transport.py).
    A ``timeout`` fault waits out the client's read timeout and raises ``httpx.ReadTimeout``."""

    def __init__(self, endpoint: OfflineEndpoint):
        self.endpoint = endpoint

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        authorization = request.headers.get("authorization")
        if request.method == "POST" and path.endswith("/chat/completions"):
            if self.endpoint.config.delay_ms:
                time.sleep(self.endpoint.config.delay_ms / 1000)
            reply = self.endpoint.chat(request.read(), authorization)
        elif request.method == "GET" and path.endswith("/models"):
            reply = self.endpoint.models(authorization)
        elif request.method == "GET" and "/models/" in path:
            reply = self.endpoint.models(authorization, path.rsplit("/", 1)[1])
        else:
            reply = Reply(404, _error_body(f"No route {request.method} {path}.", "invalid_request_error"))
        if reply.stall_seconds:
            limit = (request.extensions.get("timeout") or {}).get("read")
            if limit is not None and limit < reply.stall_seconds:
                time.sleep(limit)
                raise httpx.ReadTimeout("The offline demo model did not answer in time (simulated).", request=request)
            time.sleep(reply.stall_seconds)
            reply = self.endpoint.delivered(reply)
        headers = {"content-type": "application/json", **reply.headers}
        content = reply.text if reply.text is not None else json.dumps(reply.payload)
        return httpx.Response(reply.status, headers=headers, content=content.encode(), request=request)


def _model_card() -> dict[str, Any]:
    return {"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "gepa-explorer (simulated)"}


def _unknown_model(name: str) -> dict[str, Any]:
    return _error_body(
        f"The model '{name}' does not exist. The offline demo serves '{MODEL_NAME}'.",
        "invalid_request_error",
        "model_not_found",
    )


class OfflineServer:
    """The endpoint running in a background thread of this process, on a free loopback port."""

    def __init__(self, config: OfflineConfig | None = None, port: int = 0):
        self.config = config or OfflineConfig()
        self.endpoint = OfflineEndpoint(self.config)
        self.served = self.endpoint.served
        self._requested_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("The offline server is not running.")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 20.0) -> "OfflineServer":
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._requested_port))
        self.port = sock.getsockname()[1]
        uv_config = uvicorn.Config(
            create_app(endpoint=self.endpoint),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="offline-model", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The offline demo model did not start.")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "OfflineServer":
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def transport(self) -> OfflineTransport:
        """An in-process transport to this endpoint (the same faults, delay and served totals)."""
        return OfflineTransport(self.endpoint)


_shared: dict[tuple[float, float], OfflineServer] = {}
_shared_lock = threading.Lock()


def shared_offline_server(delay_ms: float = 0.0, error_rate: float = 0.0) -> OfflineServer:
    """One endpoint per process and setting, started on first use and left running until the process
    ends. The error rate's faults are drawn from a fixed seed and each request's content, so a run stays
    repeatable."""
    key = (float(delay_ms), float(error_rate))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = OfflineServer(OfflineConfig(delay_ms=delay_ms, error_rate=error_rate)).start()
        return _shared[key]


def serve_forever(port: int, config: OfflineConfig | None = None) -> None:
    """Run the endpoint in the foreground (``python -m core serve-offline``) until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config), host="127.0.0.1", port=port, log_level="warning", access_log=False)
