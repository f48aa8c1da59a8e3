"""The real `openai.AsyncOpenAI` client against the local fake server: happy path, every failure
mode falling back to the template within the deadline, cache, budget, privacy of the prompt."""

from __future__ import annotations

import json
import logging
import socket
import time

from core.cache import InProcessCache, cache_key
from core.explain import GroundedExplainer, PlaylistBrief, WeeklyBrief, build_explainer
from core.explain.types import Pair
from tests.explain.conftest import album_rec, artist_rec, compat_result, settings_for
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    answer,
    evidence_of,
    invalid_json,
    rate_limited,
    server_error,
    slow,
    truncated,
)

DEADLINE_S = 3.0
USER = 123456789012345678  # a Discord-like snowflake


async def test_grounded_answer_is_used(explainer: GroundedExplainer, openai_server: FakeOpenAIServer) -> None:
    e = await explainer.recommendation(artist_rec(), user_id=USER)
    assert e.source == "llm", e
    assert e.text == "You spend a lot of time with My Bloody Valentine, so Slowdive is a natural fit."
    assert len(openai_server.requests) == 1


async def test_request_shape_and_only_evidence_is_sent(explainer: GroundedExplainer,
                                                       openai_server: FakeOpenAIServer) -> None:
    await explainer.recommendation(album_rec(), user_id=USER)
    req = openai_server.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["Authorization"] == "Bearer test-key"
    body = req.body
    assert body["model"] == "fake-model"
    assert body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    sent = evidence_of(body)
    assert sent == {
        "task": "recommendation",
        "evidence": {
            "item": {"kind": "album", "name": "Souvlaki", "artist": "Slowdive"},
            "because_you_listen_to": ["Loveless", "Nowhere"],
            "matching_tags": ["shoegaze", "dream pop"],
            "aoty": {"critic_score": 86, "critic_reviews": 21, "user_score": 87.9, "user_ratings": 5400,
                     "must_hear": True, "genres": ["Shoegaze", "Dream Pop"]},
            "main_signal": "similar sound and tags",
        },
    }
    # no user id, no item id, no score internals anywhere in the request
    assert str(USER) not in req.raw and "user" not in body and "0.88" not in req.raw


async def test_compatibility_sends_display_names_only(explainer: GroundedExplainer,
                                                      openai_server: FakeOpenAIServer) -> None:
    e = await explainer.compatibility(compat_result(), Pair(None, "Sam"), user_id=USER)
    assert e.source == "llm" and "78/100" in e.text
    ev = evidence_of(openai_server.requests[0].body)["evidence"]
    assert ev["person_a"] == "you" and ev["person_b"] == "Sam"
    assert str(USER) not in openai_server.requests[0].raw


async def test_playlist_and_weekly_via_llm(explainer: GroundedExplainer) -> None:
    p = await explainer.playlist(PlaylistBrief("rainy day", ("Slowdive",), ("shoegaze",), 25))
    assert (p.source, p.name, p.text) == ("llm", "Shoegaze Hours", "25 tracks of shoegaze.")
    w = await explainer.weekly_opener(WeeklyBrief("Ana", 8, ("shoegaze",)))
    assert (w.source, w.text) == ("llm", "Hey Ana, 8 new picks are here.")


async def test_no_key_means_no_request(openai_server: FakeOpenAIServer, cache: InProcessCache) -> None:
    e = build_explainer(settings_for(openai_server.base_url, key=None), cache)
    assert not e.uses_llm
    r = await e.recommendation(artist_rec(), user_id=USER)
    c = await e.compatibility(compat_result())
    f = await e.preferences("less metal, more 90s shoegaze")
    assert (r.source, r.reason, c.source, f.source) == ("template", "no-llm", "template", "template")
    assert f.preferences.boost_tags == ("shoegaze",)
    assert openai_server.requests == []


async def test_slow_server_falls_back_within_deadline(openai_server: FakeOpenAIServer, cache: InProcessCache) -> None:
    openai_server.default = slow({"text": "too late"}, delay_s=10)
    e = build_explainer(settings_for(openai_server.base_url), cache)
    t0 = time.perf_counter()
    r = await e.recommendation(artist_rec(), user_id=USER)
    elapsed = time.perf_counter() - t0
    await e.aclose()
    assert r.source == "template" and r.reason == "timeout"
    assert 1.9 <= elapsed < DEADLINE_S, elapsed
    print(f"\nslow-server fallback: {elapsed:.3f}s")


async def test_unreachable_port_falls_back_fast(cache: InProcessCache) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: connection refused
    e = build_explainer(settings_for(f"http://127.0.0.1:{port}/v1"), cache)
    t0 = time.perf_counter()
    r = await e.recommendation(artist_rec(), user_id=USER)
    elapsed = time.perf_counter() - t0
    await e.aclose()
    assert r.source == "template" and r.reason == "unreachable"
    assert elapsed < 1.0, elapsed
    print(f"\nunreachable fallback: {elapsed:.3f}s")


async def test_rate_limit_honours_retry_after(explainer: GroundedExplainer, openai_server: FakeOpenAIServer) -> None:
    openai_server.script(rate_limited(retry_after=30))
    first = await explainer.recommendation(artist_rec(), user_id=USER)
    second = await explainer.recommendation(album_rec(), user_id=USER)
    assert (first.source, first.reason) == ("template", "rate-limited")
    assert (second.source, second.reason) == ("template", "cooling-down")
    assert len(openai_server.requests) == 1  # no retry, no second call during Retry-After


async def test_server_error_and_invalid_json_and_truncation(explainer: GroundedExplainer,
                                                           openai_server: FakeOpenAIServer) -> None:
    openai_server.script(server_error(), invalid_json(), truncated({"text": "You spend a lot of time"}))
    reasons = [(await explainer.weekly_opener(WeeklyBrief(f"User{i}", 3, ("jazz",)))).reason for i in range(3)]
    assert reasons == ["http 500", "invalid: not JSON", "invalid: truncated"]
    assert len(openai_server.requests) == 3


async def test_repeated_failures_pause_the_model(explainer: GroundedExplainer, openai_server: FakeOpenAIServer) -> None:
    openai_server.script(server_error(), server_error(), server_error())
    for i in range(4):
        await explainer.weekly_opener(WeeklyBrief(f"User{i}", 3))
    assert len(openai_server.requests) == 3  # the 4th was not sent: cooling down


async def test_invented_artist_is_rejected(explainer: GroundedExplainer, openai_server: FakeOpenAIServer) -> None:
    openai_server.script(answer({"text": "Since you love My Bloody Valentine, you'll adore Slowdive and Radiohead."}))
    e = await explainer.recommendation(artist_rec(), user_id=USER)
    assert e.source == "template"
    assert e.reason is not None and e.reason.startswith("ungrounded") and "Radiohead" in e.reason
    assert "Radiohead" not in e.text


async def test_invented_number_and_genre_are_rejected(explainer: GroundedExplainer,
                                                      openai_server: FakeOpenAIServer) -> None:
    openai_server.script(answer({"text": "Critics give Souvlaki by Slowdive a 92/100."}),
                         answer({"text": "Souvlaki by Slowdive blends shoegaze with jazz."}))
    a = await explainer.recommendation(album_rec(), user_id=USER)
    await explainer._cache.delete_namespace("explain")  # type: ignore[union-attr]
    b = await explainer.recommendation(album_rec(), user_id=USER)
    assert a.source == b.source == "template"
    assert "92" in (a.reason or "") and "jazz" in (b.reason or "")


async def test_cache_hit_skips_the_model(explainer: GroundedExplainer, openai_server: FakeOpenAIServer) -> None:
    first = await explainer.recommendation(artist_rec(), user_id=USER)
    await explainer.aclose()  # let the background cache write finish
    second = await explainer.recommendation(artist_rec(), user_id=999)
    assert (first.source, second.source) == ("llm", "cache")
    assert second.text == first.text
    assert len(openai_server.requests) == 1


async def test_daily_budget_is_enforced(openai_server: FakeOpenAIServer, cache: InProcessCache) -> None:
    e = build_explainer(settings_for(openai_server.base_url, budget=2), cache)
    out = [await e.weekly_opener(WeeklyBrief(f"User{i}", i + 1), user_id=USER) for i in range(3)]
    other = await e.weekly_opener(WeeklyBrief("Other", 1), user_id=42)
    await e.aclose()
    assert [x.source for x in out] == ["llm", "llm", "template"]
    assert out[2].reason == "budget"
    assert other.source == "llm"  # budgets are per user
    assert len(openai_server.requests) == 3


async def test_usage_is_logged_with_hashed_user(explainer: GroundedExplainer, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="core.explain"):
        await explainer.recommendation(artist_rec(), user_id=USER)
    lines = [r.getMessage() for r in caplog.records if "explain.llm" in r.getMessage()]
    assert lines and "total_tokens=" in lines[0] and "prompt_tokens=" in lines[0]
    assert str(USER) not in caplog.text


async def test_list_is_asked_concurrently_and_falls_back_per_item(explainer: GroundedExplainer,
                                                                  openai_server: FakeOpenAIServer) -> None:
    openai_server.script(answer({"text": "Radiohead all the way."}))  # first request: ungrounded
    recs = [artist_rec("Slowdive", 1), artist_rec("Ride", 3), artist_rec("Lush", 4)]
    t0 = time.perf_counter()
    out = await explainer.recommendations(recs, user_id=USER)
    assert time.perf_counter() - t0 < DEADLINE_S
    assert sorted(x.source for x in out) == ["llm", "llm", "template"]


async def test_feedback_via_llm_is_validated(explainer: GroundedExplainer, openai_server: FakeOpenAIServer) -> None:
    good = {"boost_tags": ["shoegaze"], "avoid_tags": ["metal"], "era": [1990, 1999], "era_bias": None,
            "discovery_delta": None, "discovery": None}
    invented = {**good, "boost_tags": ["dream pop"]}  # not in the user's words
    openai_server.script(answer(good), answer(invented), answer({**good, "era": "90s"}))
    a = await explainer.preferences("less metal, more 90s shoegaze", user_id=USER)
    b = await explainer.preferences("less metal, more 90s shoegaze please", user_id=USER)
    c = await explainer.preferences("less metal, more 90s shoegaze!", user_id=USER)
    assert a.source == "llm" and a.preferences.era == (1990, 1999) and a.preferences.avoid_tags == ("metal",)
    assert b.source == "template" and "ungrounded" in (b.reason or "")
    assert b.preferences.boost_tags == ("shoegaze",)  # keyword parser
    assert c.source == "template" and (c.reason or "").startswith("invalid")
    sent = evidence_of(openai_server.requests[0].body)
    assert sent == {"task": "feedback", "evidence": {"feedback": "less metal, more 90s shoegaze"}}


async def test_wrong_key_is_a_fallback_not_an_error(openai_server: FakeOpenAIServer, cache: InProcessCache) -> None:
    e = build_explainer(settings_for(openai_server.base_url, key="wrong"), cache)
    r = await e.recommendation(artist_rec())
    await e.aclose()
    assert (r.source, r.reason) == ("template", "http 401")
    assert json.loads(openai_server.requests[0].raw)["model"] == "fake-model"


class HangingCache(InProcessCache):
    """A cache whose reads stall (a wedged Redis): the reply must still be on time."""

    async def get(self, namespace: str, key: str) -> object:
        import asyncio

        await asyncio.sleep(10)
        return None


async def test_a_stalled_cache_cannot_make_the_reply_late(openai_server: FakeOpenAIServer) -> None:
    e = build_explainer(settings_for(openai_server.base_url, timeout_s=0.5), HangingCache())
    t0 = time.perf_counter()
    r = await e.recommendation(artist_rec(), user_id=USER)
    assert time.perf_counter() - t0 < 1.0
    assert (r.source, r.reason) == ("template", "timeout")
    await e.aclose()


async def test_the_composite_is_an_explainer(explainer: GroundedExplainer) -> None:
    from core.explain import Explainer, OpenAIExplainer

    assert isinstance(explainer, Explainer)
    assert isinstance(explainer._llm, OpenAIExplainer) and isinstance(explainer._llm, Explainer)


async def test_a_wrong_key_warns_once_pauses_and_shows_in_the_status(
        openai_server: FakeOpenAIServer, cache: InProcessCache, caplog) -> None:  # type: ignore[no-untyped-def]
    """A 401 (wrong OPENAI_API_KEY) will not heal by itself: one WARNING, not one log line per call,
    no further requests while paused, and the state /healthz shows says why."""
    e = build_explainer(settings_for(openai_server.base_url, key="wrong"), cache)
    assert e.status() == "ok"
    with caplog.at_level(logging.DEBUG, logger="core.explain"):
        first = await e.recommendations([artist_rec("A", 1), artist_rec("B", 2), artist_rec("C", 3)], user_id=USER)
        for _ in range(5):
            later = await e.recommendation(artist_rec(), user_id=USER)
    await e.aclose()
    assert {r.source for r in first} == {"template"} and later.source == "template"
    assert len(openai_server.requests) == 3, "paused after the first refusal: no call per reply"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "explain.llm refused with http 401 (check OPENAI_API_KEY); using templates and retrying in 300 s"]
    assert not [r for r in caplog.records if r.levelno == logging.INFO and "fallback" in r.getMessage()]
    assert e.status() == "failing: http 401"


async def test_the_status_recovers_when_the_model_answers_again(openai_server: FakeOpenAIServer,
                                                               cache: InProcessCache) -> None:
    now = [0.0]
    e = build_explainer(settings_for(openai_server.base_url, key="wrong"), cache)
    e._clock = lambda: now[0]  # the pause is minutes long: move the clock instead of waiting
    await e.recommendation(artist_rec(), user_id=USER)
    assert e.status() == "failing: http 401"
    openai_server.api_key = "wrong"  # the operator fixed the key (here: the server accepts it)
    now[0] += 301
    r = await e.recommendation(artist_rec(), user_id=USER)
    await e.aclose()
    assert r.source == "llm" and e.status() == "ok"


async def test_template_only_status_is_off(cache: InProcessCache) -> None:
    e = build_explainer(settings_for(None, key=None), cache)
    assert e.status() == "off"
    await e.aclose()


async def test_answers_naming_people_or_quoting_them_are_never_cached(
        explainer: GroundedExplainer, openai_server: FakeOpenAIServer) -> None:
    """The shared answer cache is keyed by evidence, not by user, so /forget cannot find an entry in
    it: anything carrying a display name or a member's own words must stay out of it (the compat
    result is cached per pair elsewhere, and /forget clears that)."""
    await explainer.compatibility(compat_result(), Pair(None, "Sam"), user_id=USER)
    await explainer.weekly_opener(WeeklyBrief("Ana", 8, ("shoegaze",)), user_id=USER)
    await explainer.preferences("less metal, more of the 90s please", known_tags=("metal",), user_id=USER)
    await explainer.recommendation(artist_rec(), user_id=USER)  # facts about music only: cached
    await explainer.aclose()  # let background cache writes finish
    stored = explainer._cache._data  # type: ignore[union-attr]
    texts = [json.dumps(v, default=str) for v in stored.values()]
    assert not any("Sam" in t or "Ana" in t or "90s" in t or "78/100" in t for t in texts), texts
    assert sum(k.startswith(cache_key("explain", "")) for k in stored) == 1
