"""A local, scriptable OpenAI-compatible server for tests (POST /v1/chat/completions only).

It speaks the real wire format so the real `openai.AsyncOpenAI` client is exercised: a
`chat.completion` object with choices and usage on success, and OpenAI's error envelope
`{"error": {"message", "type", "code"}}` with the documented status codes and headers (429 with
`Retry-After`). Each request is recorded (headers and JSON body) so a test can assert what left
the process, or that nothing did.

Behaviours are queued with `server.script(...)`; when the queue is empty `server.default` answers
(by default a grounded echo of the evidence in the prompt). Helpers build the usual behaviours:
`answer`, `slow`, `rate_limited`, `server_error`, `invalid_json`, `truncated`.

    async with FakeOpenAIServer() as server:
        server.script(rate_limited(retry_after=7))
        client = AsyncOpenAI(api_key=server.api_key, base_url=server.base_url, max_retries=0)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """One scripted response. `content` is the assistant message text (None for errors)."""

    content: str | None = None
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    finish_reason: str = "stop"


Responder = Callable[[dict[str, Any]], Reply]


def answer(obj: Any, *, delay_s: float = 0.0) -> Reply:
    """A normal JSON-mode answer (the assistant content is `obj` serialised)."""
    return Reply(content=json.dumps(obj), delay_s=delay_s)


def slow(obj: Any, delay_s: float = 10.0) -> Reply:
    """A correct answer that arrives after `delay_s` (longer than any explain timeout)."""
    return answer(obj, delay_s=delay_s)


def rate_limited(retry_after: float | None = 20) -> Reply:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Reply(
        status=429,
        headers=headers,
        error={
            "message": "Rate limit reached for requests per min (RPM). Please try again later.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    )


def server_error() -> Reply:
    return Reply(
        status=500,
        error={
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    )


def invalid_json() -> Reply:
    """JSON mode ignored by a sloppy compatible server: prose instead of an object."""
    return Reply(content="Sure! Here is why you might like it: it's great.")


def truncated(obj: Any) -> Reply:
    return Reply(content=json.dumps(obj)[:20], finish_reason="length")


def evidence_of(body: dict[str, Any]) -> dict[str, Any]:
    """The `{"task", "evidence"}` object our explainer sends as the user message."""
    user = next(m for m in body["messages"] if m["role"] == "user")
    return json.loads(user["content"])


def grounded_echo(body: dict[str, Any]) -> Reply:
    """Default behaviour: a plausible answer that only uses names from the evidence it was sent."""
    try:
        sent = evidence_of(body)
    except (StopIteration, ValueError, KeyError):
        return answer({"text": "Here you go."})
    task, ev = sent.get("task"), sent.get("evidence", {})
    if task == "recommendation":
        item = ev["item"]["name"]
        because = ev.get("because_you_listen_to") or ev.get("matching_tags") or ["your favourites"]
        return answer({"text": f"You spend a lot of time with {because[0]}, so {item} is a natural fit."})
    if task == "compatibility":
        shared = ev.get("shared_artists") or ev.get("shared_tags") or ["a few things"]
        return answer({"text": f"A {ev.get('score_out_of_100')}/100 match: you both love {shared[0]}."})
    if task == "playlist":
        tag = (ev.get("top_tags") or ["golden"])[0]
        return answer({"name": f"{tag.title()} Hours", "description": f"{ev.get('track_count', 20)} tracks of {tag}."})
    if task == "weekly":
        return answer({"text": f"Hey {ev['display_name']}, {ev['recommendation_count']} new picks are here."})
    if task == "feedback":
        return answer({"boost_tags": [], "avoid_tags": [], "era": None, "era_bias": None,
                       "discovery_delta": None, "discovery": None})
    return answer({"text": "Here you go."})


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    raw: str


class FakeOpenAIServer:
    """aiohttp server on 127.0.0.1 (random free port) implementing Chat Completions."""

    def __init__(self, *, api_key: str = "test-key", model: str = "fake-model") -> None:
        self.api_key = api_key
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.queue: deque[Reply | Responder] = deque()
        self.default: Reply | Responder = grounded_echo
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- scripting --------------------------------------------------------------------------

    def script(self, *replies: Reply | Responder) -> None:
        """Queue behaviours, used in order by the next requests."""
        self.queue.extend(replies)

    @property
    def base_url(self) -> str:
        assert self.port is not None, "server not started"
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        # handler_cancellation: a client that gives up (timeout) cancels the slow handler
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets if site._server else ()  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the endpoint -----------------------------------------------------------------------

    @staticmethod
    def _error(status: int, message: str, type_: str, code: str | None,
               headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": {"message": message, "type": type_, "param": None, "code": code}},
                                 status=status, headers=headers)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(RecordedRequest(request.path, dict(request.headers), body, raw))

        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if not isinstance(body, dict) or "model" not in body or not isinstance(body.get("messages"), list):
            return self._error(400, "We could not parse the JSON body of your request.",
                               "invalid_request_error", None)

        behaviour = self.queue.popleft() if self.queue else self.default
        reply = behaviour(body) if callable(behaviour) else behaviour
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.error is not None:
            return web.json_response({"error": reply.error}, status=reply.status, headers=reply.headers)

        content = reply.content or ""
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4 + 1
        completion_tokens = len(content) // 4 + 1
        return web.json_response(
            {
                "id": f"chatcmpl-fake{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "system_fingerprint": "fp_fake",
            },
            status=reply.status,
            headers=reply.headers,
        )
