"""`GroundedExplainer`: what callers use. A model sentence when it is fast, affordable and grounded;
the template otherwise; and always within the deadline.

Order of a call: (no model configured → template) → (model cooling down after 429 / repeated
failures → template) → cache by evidence digest → per-user daily budget → model call under a hard
`asyncio.timeout` → shape + grounding check → cache the answer in the background → return. Every
step that can fail or stall is inside the timeout or guarded, so the worst case is the timeout plus
the template's microseconds. The returned `Explanation.source`/`reason` say which path was taken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

from core.domain import Compatibility, Recommendation
from core.explain.budget import CallBudget, hash_user
from core.explain.evidence import (
    Brief,
    compatibility_brief,
    feedback_brief,
    playlist_brief,
    recommendation_brief,
    weekly_brief,
)
from core.explain.feedback import preferences_from_json
from core.explain.grounding import validate_answer
from core.explain.template import TemplateExplainer
from core.explain.types import (
    ExplainFailed,
    Explanation,
    FeedbackResult,
    Pair,
    PlaylistBrief,
    Source,
    UserRef,
    WeeklyBrief,
)

if TYPE_CHECKING:
    from core.cache import Cache
    from core.explain.openai_explainer import OpenAIExplainer

log = logging.getLogger(__name__)

CACHE_NAMESPACE = "explain"
T = TypeVar("T")

#: failures that say "the service is unwell" (count towards the cool-down), as opposed to a bad answer
_SERVICE_FAILURES = ("timeout", "unreachable", "http 5", "rate-limited", "error:")

#: A 4xx other than 429 (a wrong key, a model that does not exist, no credit) will not heal by
#: itself: pause the model this long (doubling while it persists, up to the maximum) and say so once.
CLIENT_ERROR_PAUSE_S = 300.0
CLIENT_ERROR_PAUSE_MAX_S = 3600.0
_HINTS = {"http 401": "check OPENAI_API_KEY", "http 403": "the key may not use this model",
          "http 404": "check OPENAI_MODEL and OPENAI_BASE_URL"}


def _is_client_error(reason: str) -> bool:
    return reason.startswith("http 4") and reason != "http 429"


class GroundedExplainer:
    """The composite explainer (see module docstring). Build it with `build_explainer(settings, cache)`.

    `llm` None means template-only: nothing ever leaves the process. `connect` builds the model
    client later, in `start()`: the services build the explainer once, before any event loop or
    HTTP client exists, and until the bot starts its clients every answer comes from the template
    (`status()` says "starting").
    """

    def __init__(
        self,
        llm: OpenAIExplainer | None,
        template: TemplateExplainer,
        cache: Cache | None,
        budget: CallBudget | None,
        *,
        timeout_s: float = 2.0,
        cache_ttl_s: float = 30 * 86_400,
        salt: bytes = b"sonance-explain",
        failure_threshold: int = 3,
        failure_cooldown_s: float = 30.0,
        default_retry_after_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        connect: Callable[[], OpenAIExplainer] | None = None,
    ) -> None:
        self._llm = llm
        self._connect = connect
        self._template = template
        self._cache = cache
        self._budget = budget
        self.timeout_s = timeout_s
        self.cache_ttl_s = cache_ttl_s
        self._salt = salt
        self._failure_threshold = failure_threshold
        self._failure_cooldown_s = failure_cooldown_s
        self._default_retry_after_s = default_retry_after_s
        self._clock = clock
        self._cooldown_until = 0.0
        self._failures = 0
        #: Why the model is refused, while a 4xx persists (None: healthy); shown by /healthz.
        self.failing: str | None = None
        self._client_pause_s = CLIENT_ERROR_PAUSE_S
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def uses_llm(self) -> bool:
        return self._llm is not None

    @property
    def budget(self) -> CallBudget | None:
        return self._budget

    def start(self) -> None:
        """Build the deferred model client (once; nothing to do when there is none or it exists)."""
        if self._llm is None and self._connect is not None:
            self._llm, self._connect = self._connect(), None

    def status(self) -> str:
        """For /healthz: "ok", "off" (templates only, by configuration), "starting" (a model is
        configured and its client not built yet) or "failing: <reason>"."""
        if self._llm is None:
            return "starting" if self._connect is not None else "off"
        return "ok" if self.failing is None else f"failing: {self.failing}"

    async def forget_user(self, user_id: UserRef) -> int:
        """/forget: drop the user's call-budget counters. Returns the shared cache keys deleted."""
        return 0 if self._budget is None else await self._budget.forget(user_id)

    def _client_error(self, reason: str) -> None:
        """A 4xx: one WARNING when it starts (not one per call), then a growing pause."""
        if self.failing != reason:
            hint = _HINTS.get(reason, "the model server refused the request")
            log.warning("explain.llm refused with %s (%s); using templates and retrying in %.0f s",
                        reason, hint, self._client_pause_s)
            self.failing = reason
        elif self._clock() >= self._cooldown_until:  # a retry after the pause (not a concurrent call)
            self._client_pause_s = min(self._client_pause_s * 2, CLIENT_ERROR_PAUSE_MAX_S)
            log.debug("explain.llm still refused with %s; next try in %.0f s", reason, self._client_pause_s)
        self._cooldown_until = max(self._cooldown_until, self._clock() + self._client_pause_s)

    async def aclose(self) -> None:
        """Finish background cache writes and close the model client."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        aclose = getattr(self._llm, "aclose", None)
        if aclose is not None:
            await aclose()

    # -- the one flow -----------------------------------------------------------------------------

    async def _via_model(
        self,
        brief: Brief,
        produce: Callable[[], Awaitable[dict[str, Any]]],
        validate: Callable[[Any], T],
        user_id: UserRef,
    ) -> tuple[T | None, Source | None, str]:
        """(result, source, reason); result None means "use the template", reason says why."""
        if self._llm is None:
            return None, None, "no-llm"
        if self._clock() < self._cooldown_until:
            return None, None, "cooling-down"
        try:
            async with asyncio.timeout(self.timeout_s):
                cached = await self._cache_get(brief)
                if cached is not None:
                    try:
                        return validate(cached), "cache", "cached"
                    except ExplainFailed:
                        pass  # an answer cached under older rules: ask again
                if self._budget is not None and not await self._budget.try_spend(user_id):
                    return None, None, "budget"
                payload = await produce()
        except TimeoutError:
            reason = "timeout"
        except ExplainFailed as exc:
            reason = exc.reason
            if _is_client_error(reason):
                self._client_error(reason)
            elif exc.retry_after is not None or reason == "rate-limited":
                self._cool_down(exc.retry_after or self._default_retry_after_s, reason)
        except Exception as exc:  # a bug or an unexpected client error must not cost the reply
            log.warning("explain.llm unexpected %s for kind=%s", type(exc).__name__, brief.kind, exc_info=True)
            reason = f"error: {type(exc).__name__}"
        else:
            try:
                result = validate(payload)
            except ExplainFailed as exc:
                return None, None, exc.reason
            self._failures = 0
            if self.failing is not None:
                log.info("explain.llm answers again; %s is over", self.failing)
                self.failing, self._client_pause_s = None, CLIENT_ERROR_PAUSE_S
            self._remember(brief, payload)
            return result, "llm", "grounded"
        if reason.startswith(_SERVICE_FAILURES):
            self._failures += 1
            if self._failures >= self._failure_threshold:
                self._cool_down(self._failure_cooldown_s, f"{self._failures} failures")
        return None, None, reason

    def _cool_down(self, seconds: float, why: str) -> None:
        seconds = max(0.0, min(seconds, 300.0))
        self._cooldown_until = max(self._cooldown_until, self._clock() + seconds)
        self._failures = 0
        log.warning("explain.llm paused for %.0fs (%s); using templates", seconds, why)

    async def _cache_get(self, brief: Brief) -> Any | None:
        if self._cache is None or not brief.shareable:
            return None
        try:
            return await self._cache.get(CACHE_NAMESPACE, brief.digest)
        except Exception:
            log.warning("explain cache read failed", exc_info=True)
            return None

    def _remember(self, brief: Brief, payload: dict[str, Any]) -> None:
        """Cache in the background: the reply must not wait for a cache write."""
        if self._cache is None or not brief.shareable:
            return
        cache = self._cache

        async def write() -> None:
            try:
                await asyncio.wait_for(cache.set(CACHE_NAMESPACE, brief.digest, payload, self.cache_ttl_s), 1.0)
            except Exception:
                log.warning("explain cache write failed", exc_info=True)

        task = asyncio.get_running_loop().create_task(write())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _log_fallback(self, kind: str, reason: str, user_id: UserRef) -> None:
        if reason != "no-llm" and not (self.failing and reason in (self.failing, "cooling-down")):
            log.info("explain.fallback kind=%s reason=%s user=%s", kind, reason, hash_user(user_id, self._salt))

    async def _text(self, brief: Brief, user_id: UserRef, *, pair: Pair | None = None,
                    key: object = None) -> Explanation:
        async def produce() -> dict[str, Any]:
            # The model is handed the brief built here: it is the same evidence, built once.
            e = await self._llm.explain(brief, user_id=user_id)  # type: ignore[union-attr]
            return {"name": e.name, "description": e.text} if brief.kind == "playlist" else {"text": e.text}

        result, source, reason = await self._via_model(brief, produce, lambda d: validate_answer(brief, d), user_id)
        if result is not None and source is not None:
            return Explanation(result.text, source, reason, name=result.name, kind=brief.kind)
        self._log_fallback(brief.kind, reason, user_id)
        return self._template.render(brief, key=key, pair=pair, reason=reason)

    # -- Explainer protocol ---------------------------------------------------------------------

    async def recommendation(self, rec: Recommendation, *, user_id: UserRef = None) -> Explanation:
        """Why this item for this user (one or two sentences)."""
        return await self._text(recommendation_brief(rec), user_id, key=TemplateExplainer.rec_key(rec))

    async def recommendations(self, recs: Sequence[Recommendation], *, user_id: UserRef = None) -> list[Explanation]:
        """A list, asked concurrently; template fallbacks vary their sentence shapes across the list."""
        llm = self._llm
        if llm is None:
            # No model configured: the same template list, without building a brief per item and a
            # task per item only to hear "no-llm" back (this runs on every /recommend).
            return self._template.render_list(recs, ["no-llm"] * len(recs))
        attempts = await asyncio.gather(*(
            self._via_model(
                brief,
                (lambda b=brief: _text_payload(llm.explain(b, user_id=user_id))),
                (lambda d, b=brief: validate_answer(b, d)),
                user_id,
            )
            for brief in map(recommendation_brief, recs)
        ))
        reasons = [reason for _, _, reason in attempts]
        out = self._template.render_list(recs, reasons)
        for i, (result, source, reason) in enumerate(attempts):
            if result is not None and source is not None:
                out[i] = Explanation(result.text, source, reason, kind="recommendation")
            else:
                self._log_fallback("recommendation", reason, user_id)
        return out

    async def compatibility(self, compat: Compatibility, pair: Pair = Pair(), *, user_id: UserRef = None) -> Explanation:
        """What two people share and where they differ. `pair` holds display names only."""
        return await self._text(compatibility_brief(compat, pair), user_id, pair=pair)

    async def playlist(self, brief: PlaylistBrief, *, user_id: UserRef = None) -> Explanation:
        """A playlist's `name` and one-line description (`text`)."""
        return await self._text(playlist_brief(brief), user_id)

    async def weekly_opener(self, brief: WeeklyBrief, *, user_id: UserRef = None) -> Explanation:
        """The first line of the weekly recommendations DM."""
        return await self._text(weekly_brief(brief), user_id)

    async def preferences(self, text: str, *, known_tags: Sequence[str] = (), user_id: UserRef = None) -> FeedbackResult:
        """Free-text feedback -> `Preferences` (model when configured and valid, keyword parser otherwise)."""
        brief = feedback_brief(text, known_tags)
        llm = self._llm

        async def produce() -> dict[str, Any]:
            answer = await llm.complete(brief, user_id=user_id)  # type: ignore[union-attr]
            data = asdict(preferences_from_json(answer, text, known_tags))
            data["era"] = list(data["era"]) if data["era"] else None
            data["boost_tags"], data["avoid_tags"] = list(data["boost_tags"]), list(data["avoid_tags"])
            return data

        result, source, reason = await self._via_model(
            brief, produce, lambda d: preferences_from_json(d, text, known_tags), user_id)
        if result is not None and source is not None:
            return FeedbackResult(result, source, reason)
        self._log_fallback("feedback", reason, user_id)
        fallback = await self._template.preferences(text, known_tags=known_tags)
        return FeedbackResult(fallback.preferences, "template", reason)


async def _text_payload(pending: Awaitable[Explanation]) -> dict[str, Any]:
    return {"text": (await pending).text}
