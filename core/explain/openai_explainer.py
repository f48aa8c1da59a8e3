"""The `Explainer` for any OpenAI-compatible Chat Completions server (OpenAI, Ollama, vLLM…).

It sends one system prompt (fixed rules) and one user message that is exactly the `Brief` facts
as JSON, asks for a JSON object back, validates its shape and runs the grounding check. Anything
short of a grounded answer raises `ExplainFailed(reason)`: this class never invents a fallback;
`GroundedExplainer` does. The client is built with a short timeout and no retries because a
Discord reply has 3 seconds; the caller also wraps each call in `asyncio.wait_for`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import openai
from openai import AsyncOpenAI

from core.domain import Compatibility, Recommendation
from core.explain import evidence
from core.explain.budget import hash_user
from core.explain.feedback import preferences_from_json
from core.explain.grounding import validate_answer
from core.explain.types import (
    ExplainFailed,
    Explanation,
    FeedbackResult,
    Pair,
    PlaylistBrief,
    UserRef,
    WeeklyBrief,
)

log = logging.getLogger(__name__)

SYSTEM_PROMPT = """You write short, warm explanations for Sonance, a music recommendation bot.
Rules:
- Use ONLY the facts in the JSON evidence in the user message. Never mention an artist, album, song,
  genre, tag, year or number that is not written there. Do not add facts you know from elsewhere.
- Write names exactly as given. Plain English, no markdown, no emoji, no quotes around titles.
- {task}
- Reply with a JSON object only, exactly of this form: {shape}"""

TASKS: dict[str, tuple[str, str]] = {
    "recommendation": (
        "Tell the listener (write 'you') in one or two sentences, at most 280 characters, why the item "
        "fits them, using because_you_listen_to and matching_tags, and AOTY scores when given.",
        '{"text": "..."}',
    ),
    "compatibility": (
        "Tell person_a (write 'you' when person_a is 'you') in at most three short sentences how "
        "compatible they are with person_b in words (the score is shown beside your text: do not repeat "
        "it), what they share, where they differ.",
        '{"text": "..."}',
    ),
    "playlist": (
        "Give the playlist a name of 2 to 5 words and a one-line description of at most 140 characters.",
        '{"name": "...", "description": "..."}',
    ),
    "weekly": (
        "Write the opening line (one sentence, at most 160 characters) of a weekly message that greets "
        "display_name and announces recommendation_count new music picks.",
        '{"text": "..."}',
    ),
    "feedback": (
        "Turn the listener's feedback into preferences. Tags are lower-case words taken from the "
        "feedback or from known_tags. era is a [start_year, end_year] decade range or null; era_bias is "
        '"older", "newer" or null; discovery_delta is -1..1 (positive = more obscure) or null; '
        "discovery is an absolute level 0..1 or null.",
        '{"boost_tags": [], "avoid_tags": [], "era": null, "era_bias": null, '
        '"discovery_delta": null, "discovery": null}',
    ),
}


def build_messages(brief: evidence.Brief) -> list[dict[str, str]]:
    """System rules + the evidence, and nothing else (tests assert this)."""
    task, shape = TASKS[brief.kind]
    user = json.dumps({"task": brief.kind, "evidence": brief.facts}, ensure_ascii=False, sort_keys=True)
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(task=task, shape=shape)},
        {"role": "user", "content": user},
    ]


class OpenAIExplainer:
    """Chat Completions in JSON mode. Raises `ExplainFailed` for anything but a grounded answer."""

    def __init__(self, client: AsyncOpenAI, model: str, *, timeout_s: float = 2.0,
                 salt: bytes = b"sonance-explain", temperature: float = 0.7, max_tokens: int = 200) -> None:
        self._client = client
        self.model = model
        self.timeout_s = timeout_s
        self._salt = salt
        self.temperature = temperature
        self.max_tokens = max_tokens

    @classmethod
    def create(cls, *, api_key: str, base_url: str | None, model: str, timeout_s: float,
               salt: bytes = b"sonance-explain") -> OpenAIExplainer:
        """Build the client with a deadline-sized timeout and no retries (a retry would be late)."""
        client = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)
        return cls(client, model, timeout_s=timeout_s, salt=salt)

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(self, brief: evidence.Brief, *, user_id: UserRef = None) -> Any:
        """One call; returns the parsed JSON object or raises `ExplainFailed`."""
        started = time.monotonic()
        try:
            response = await asyncio.wait_for(
                self._client.chat.completions.create(
                    model=self.model,
                    messages=build_messages(brief),  # type: ignore[arg-type]
                    response_format={"type": "json_object"},
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                ),
                timeout=self.timeout_s,
            )
        except (TimeoutError, openai.APITimeoutError):
            raise ExplainFailed("timeout") from None
        except openai.RateLimitError as exc:
            raise ExplainFailed("rate-limited", retry_after=_retry_after(exc)) from None
        except openai.APIStatusError as exc:
            raise ExplainFailed(f"http {exc.status_code}", retry_after=_retry_after(exc)) from None
        except openai.APIConnectionError:
            raise ExplainFailed("unreachable") from None
        except openai.OpenAIError as exc:
            raise ExplainFailed(f"error: {type(exc).__name__}") from None
        elapsed_ms = int((time.monotonic() - started) * 1000)
        usage = response.usage
        log.info(
            "explain.llm kind=%s model=%s user=%s prompt_tokens=%s completion_tokens=%s total_tokens=%s ms=%d",
            brief.kind, response.model or self.model, hash_user(user_id, self._salt),
            getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None),
            getattr(usage, "total_tokens", None), elapsed_ms,
        )
        if not response.choices:
            raise ExplainFailed("invalid: no choices")
        choice = response.choices[0]
        if choice.finish_reason == "length":
            raise ExplainFailed("invalid: truncated")
        content = choice.message.content or ""
        try:
            return json.loads(content)
        except ValueError:
            raise ExplainFailed("invalid: not JSON") from None

    async def explain(self, brief: evidence.Brief, *, user_id: UserRef = None) -> Explanation:
        return validate_answer(brief, await self.complete(brief, user_id=user_id))

    # -- Explainer protocol ---------------------------------------------------------------------

    async def recommendation(self, rec: Recommendation, *, user_id: UserRef = None) -> Explanation:
        return await self.explain(evidence.recommendation_brief(rec), user_id=user_id)

    async def recommendations(self, recs: Sequence[Recommendation], *, user_id: UserRef = None) -> list[Explanation]:
        return list(await asyncio.gather(*(self.recommendation(r, user_id=user_id) for r in recs)))

    async def compatibility(self, compat: Compatibility, pair: Pair = Pair(), *, user_id: UserRef = None) -> Explanation:
        return await self.explain(evidence.compatibility_brief(compat, pair), user_id=user_id)

    async def playlist(self, brief: PlaylistBrief, *, user_id: UserRef = None) -> Explanation:
        return await self.explain(evidence.playlist_brief(brief), user_id=user_id)

    async def weekly_opener(self, brief: WeeklyBrief, *, user_id: UserRef = None) -> Explanation:
        return await self.explain(evidence.weekly_brief(brief), user_id=user_id)

    async def preferences(self, text: str, *, known_tags: Sequence[str] = (), user_id: UserRef = None) -> FeedbackResult:
        data = await self.complete(evidence.feedback_brief(text, known_tags), user_id=user_id)
        return FeedbackResult(preferences_from_json(data, text, known_tags), "llm")


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """Seconds from `Retry-After` / `retry-after-ms`, so the caller can pause model calls."""
    headers = exc.response.headers if exc.response is not None else {}
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return float(ms) / 1000
        if (s := headers.get("retry-after")) is not None:
            return float(s)
    except ValueError:
        return None
    return None
