"""Spotify's token endpoint through `SpotifyAuth`, against the local Accounts fake: what is retried,
what is refused at once, and what a token response may leave out."""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from core.errors import AccountProblem, SourceUnavailable
from core.sources.spotify import SCOPES, SpotifyAuth, TokenSet
from tests.fakes.spotify_server import SpotifyFake
from tests.sources.conftest import FAST_RETRY, make_settings


@pytest.fixture
def auth(spotify_fake: SpotifyFake, http: aiohttp.ClientSession) -> SpotifyAuth:
    return SpotifyAuth(make_settings(**spotify_fake.settings_overrides()), http, retry=FAST_RETRY, timeout_s=1.0)


def granted(fake: SpotifyFake, user: str = "alice") -> TokenSet:
    info = fake.grant(user, scope="user-top-read")
    return TokenSet(info["access_token"], info["refresh_token"], time.time() + 3600, info["scope"])


def test_authorize_url_carries_the_documented_parameters(auth: SpotifyAuth, spotify_fake: SpotifyFake) -> None:
    parts = urlsplit(auth.authorize_url("st4te"))
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{spotify_fake.base_url}/authorize"
    assert parse_qs(parts.query) == {"client_id": ["test-client"], "response_type": ["code"],
                                     "redirect_uri": [spotify_fake.redirect_uri], "scope": [SCOPES],
                                     "state": ["st4te"]}


async def test_the_granted_scope_is_kept_not_the_requested_one(auth: SpotifyAuth, spotify_fake: SpotifyFake) -> None:
    code = spotify_fake.issue_code("alice", scope="user-read-recently-played")  # the user granted less
    tokens = await auth.exchange_code(code)
    assert tokens.scope == "user-read-recently-played"
    assert spotify_fake.token_requests[-1] == {"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": spotify_fake.redirect_uri}


async def test_refresh_keeps_or_rotates_the_refresh_token(auth: SpotifyAuth, spotify_fake: SpotifyFake) -> None:
    old = granted(spotify_fake)
    kept = await auth.refresh(old)
    assert kept.access_token != old.access_token and kept.refresh_token == old.refresh_token
    assert kept.scope == "user-top-read" and kept.expires_at > time.time() + 3000

    spotify_fake.rotate_refresh_tokens = True
    rotated = await auth.refresh(kept)
    assert rotated.refresh_token not in ("", old.refresh_token)
    assert spotify_fake.token_requests[-1] == {"grant_type": "refresh_token", "refresh_token": old.refresh_token}


async def test_token_endpoint_5xx_is_retried(auth: SpotifyAuth, spotify_fake: SpotifyFake) -> None:
    old = granted(spotify_fake)
    spotify_fake.fail_next("http", status=503, path="/api/token")
    fresh = await auth.refresh(old)
    assert fresh.access_token in spotify_fake.access
    assert len(spotify_fake.token_requests) == 2


async def test_token_endpoint_429_waits_for_retry_after(auth: SpotifyAuth, spotify_fake: SpotifyFake) -> None:
    old = granted(spotify_fake)
    spotify_fake.fail_next("429", retry_after=0.3, path="/api/token")
    start = time.monotonic()
    fresh = await auth.refresh(old)
    assert time.monotonic() - start >= 0.3
    assert fresh.access_token in spotify_fake.access


async def test_malformed_token_answer_is_retried_then_gives_up(auth: SpotifyAuth, spotify_fake: SpotifyFake) -> None:
    old = granted(spotify_fake)
    spotify_fake.fail_next("malformed", path="/api/token")
    assert (await auth.refresh(old)).access_token in spotify_fake.access
    spotify_fake.fail_next("malformed", path="/api/token", count=FAST_RETRY.attempts)
    with pytest.raises(SourceUnavailable) as err:
        await auth.refresh(old)
    assert "malformed" in (err.value.detail or "")


async def test_wrong_client_secret_is_not_retried(spotify_fake: SpotifyFake, http: aiohttp.ClientSession) -> None:
    settings = make_settings(**{**spotify_fake.settings_overrides(), "SPOTIFY_CLIENT_SECRET": "wrong"})
    auth = SpotifyAuth(settings, http, retry=FAST_RETRY)
    with pytest.raises(SourceUnavailable) as err:
        await auth.refresh(granted(spotify_fake))
    assert "invalid_client" in (err.value.detail or "")
    assert len(spotify_fake.token_requests) == 1


async def test_revoked_refresh_token_and_missing_refresh_token(auth: SpotifyAuth, spotify_fake: SpotifyFake) -> None:
    old = granted(spotify_fake)
    spotify_fake.revoke("alice")
    with pytest.raises(AccountProblem) as err:
        await auth.refresh(old)
    assert err.value.reason == "spotify_token_revoked" and len(spotify_fake.token_requests) == 1
    with pytest.raises(AccountProblem) as err:
        await auth.refresh(TokenSet("a", "", 0.0))
    assert err.value.reason == "spotify_token_revoked" and len(spotify_fake.token_requests) == 1  # not asked


async def test_fake_token_endpoint_refuses_a_json_body(spotify_fake: SpotifyFake, http: aiohttp.ClientSession) -> None:
    """Spotify reads only a form-encoded body; the fake must not accept what Spotify would refuse."""
    basic = "Basic " + base64.b64encode(b"test-client:test-secret").decode()
    async with http.post(f"{spotify_fake.base_url}/api/token", headers={"Authorization": basic},
                         json={"grant_type": "refresh_token", "refresh_token": "x"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "unsupported_grant_type"
