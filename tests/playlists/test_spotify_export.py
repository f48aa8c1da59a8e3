"""Spotify export against the local Spotify fake (real wire format) and a real database."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.asker import Asker
from core.config import Settings
from core.db.models import Playlist, Track
from core.db.repositories import AccountRepository, CatalogRepository, UserRepository
from core.db.repositories.playlists import PlaylistRepository
from core.matching import artist_key, track_key
from core.playlists.service import EXPORT_CLAIM_S, PlaylistService
from core.services import Services
from tests.conftest import make_settings
from tests.fakes.spotify_server import SpotifyFake, make_track

DISCORD_ID = 7_100_000_000_000_000_001
N_TRACKS = 150
#: What a finished export of `make_playlist`'s list holds on Spotify, in order.
EXPECTED_URIS = ([f"spotify:track:sp{i:04d}" for i in range(N_TRACKS - 3)]
                 + [f"spotify:track:found{N_TRACKS - 3}", f"spotify:track:found{N_TRACKS - 2}"])


@pytest.fixture
async def spotify_fake() -> AsyncIterator[SpotifyFake]:
    async with SpotifyFake() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, tmp_path: Path, spotify_fake: SpotifyFake) -> Settings:
    return make_settings(database_url, tmp_path, **spotify_fake.settings_overrides())


async def owner(services: Services) -> Asker:
    """The playlist's owner (the member with DISCORD_ID), as the export button resolves them."""
    asker = await services.askers.known(DISCORD_ID, None)
    assert asker is not None
    return asker


async def make_playlist(services: Services, spotify_fake: SpotifyFake, *, expired: bool = True
                        ) -> tuple[int, int, list[int]]:
    """A 150-track playlist owned by a Spotify-linked user: 147 tracks with stored Spotify ids,
    2 only findable by search, 1 Spotify doesn't have. Returns (playlist id, account id, track ids)."""
    await services.start_clients()
    grant = spotify_fake.grant("sp-alice")
    expires = time.time() - 10 if expired else time.time() + 3600
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(DISCORD_ID, "Alice")
        account = await AccountRepository(s, services.cipher).link(
            user.id, "spotify", "sp-alice", access_token=grant["access_token"], refresh_token=grant["refresh_token"],
            expires_at=datetime.fromtimestamp(expires, UTC), scope="playlist-modify-private")
        catalog = CatalogRepository(s)
        names = [f"Band & Co {k}" for k in range(10)]
        artists = await catalog.ensure_artists({"name_key": artist_key(n), "name": n} for n in names)
        rows = []
        for i in range(N_TRACKS):
            artist = names[i % 10]
            title = f"Song <{i}> “quoted”"
            rows.append({"artist_id": artists[artist_key(artist)], "title_key": track_key(artist, title), "title": title,
                         "spotify_id": f"sp{i:04d}" if i < N_TRACKS - 3 else None, "duration_ms": 180_000 + i})
        ids = await catalog.ensure_tracks(rows)
        track_ids = [ids[(r["artist_id"], r["title_key"])] for r in rows]
        playlist = await PlaylistRepository(s).create(
            user_id=user.id, name="Big & <Bold> Mix", origin="recommendations", description="150 tracks",
            items=[(t, "because") for t in track_ids])
        pid, account_id = int(playlist.id), int(account.id)
    for i in (N_TRACKS - 3, N_TRACKS - 2):  # findable by search, not stored
        artist = f"Band & Co {i % 10}"
        spotify_fake.catalogue.append(make_track(f"found{i}", f"Song <{i}> “quoted”", artist))
    return pid, account_id, track_ids


async def test_export_creates_playlist_in_chunks_and_stores_refreshed_tokens_encrypted(
        services: Services, spotify_fake: SpotifyFake) -> None:
    pid, account_id, track_ids = await make_playlist(services, spotify_fake)
    service = PlaylistService.of(services)
    result = await service.export_spotify(await owner(services), pid)
    assert result.ok, result.message
    assert result.added == N_TRACKS - 1 and result.unresolved == 1
    assert "1 track couldn't be found" in result.message
    [created] = spotify_fake.users["sp-alice"].playlists.values()
    assert created["name"] == "Big & <Bold> Mix" and result.url == created["external_urls"]["spotify"]
    assert created["items"][:2] == ["spotify:track:sp0000", "spotify:track:sp0001"]
    assert created["items"][-2:] == [f"spotify:track:found{N_TRACKS - 3}", f"spotify:track:found{N_TRACKS - 2}"]
    adds = [entry for entry in spotify_fake.log if entry[1] == "POST" and entry[2].endswith("/items")]
    assert len(adds) == 2  # 149 URIs: 100 + 49 (the fake refuses more than 100 per request)
    # the expired token was refreshed, and the new one stored encrypted
    assert any(r.get("grant_type") == "refresh_token" for r in spotify_fake.token_requests)
    async with services.session() as s:
        accounts = AccountRepository(s, services.cipher)
        account = await accounts.by_id(account_id)
        assert account is not None
        access, _ = accounts.tokens(account)
        assert access in spotify_fake.access and spotify_fake.access[access][1] > time.time()
        assert access is not None and access.encode() not in (account.access_token_enc or b"")
        row = await s.get(Playlist, pid)
        assert row is not None and row.spotify_playlist_id == created["id"]
        learnt = dict((await s.execute(select(Track.id, Track.spotify_id).where(Track.id.in_(track_ids[-3:])))).all())
    assert learnt[track_ids[-3]] == f"found{N_TRACKS - 3}" and learnt[track_ids[-1]] is None
    # a second click does not create a duplicate playlist
    again = await service.export_spotify(await owner(services), pid)
    assert again.ok and again.url == result.url and len(spotify_fake.users["sp-alice"].playlists) == 1


async def test_dev_mode_403_says_why_and_falls_back_to_files(services: Services, spotify_fake: SpotifyFake) -> None:
    pid, _, _ = await make_playlist(services, spotify_fake, expired=False)
    spotify_fake.users["sp-alice"].allowlisted = False
    result = await PlaylistService.of(services).export_spotify(await owner(services), pid)
    assert not result.ok and "approved users" in result.message and "files instead" in result.message
    assert result.fallback is not None
    xspf = next(f for f in result.fallback.files if f.filename.endswith(".xspf"))
    assert len(ET.fromstring(xspf.data).findall("{http://xspf.org/ns/0/}trackList/{http://xspf.org/ns/0/}track")) == N_TRACKS
    assert not spotify_fake.users["sp-alice"].playlists


async def test_revoked_token_says_relink_and_falls_back(services: Services, spotify_fake: SpotifyFake) -> None:
    pid, _, _ = await make_playlist(services, spotify_fake)
    spotify_fake.revoke("sp-alice")
    result = await PlaylistService.of(services).export_spotify(await owner(services), pid)
    assert not result.ok and "/link spotify" in result.message and result.fallback is not None
    assert not spotify_fake.users["sp-alice"].playlists


async def test_two_presses_at_once_create_one_spotify_playlist(services: Services, spotify_fake: SpotifyFake) -> None:
    """A double click (or two processes) must not create two playlists in the member's library."""
    pid, _, _ = await make_playlist(services, spotify_fake, expired=False)
    service = PlaylistService.of(services)
    first, second = await asyncio.gather(service.export_spotify(await owner(services), pid),
                                         service.export_spotify(await owner(services), pid))
    assert len(spotify_fake.users["sp-alice"].playlists) == 1
    done, busy = (first, second) if first.url else (second, first)
    assert done.ok and done.url
    assert not busy.url and "being sent to Spotify" in busy.message and busy.fallback is None
    again = await service.export_spotify(await owner(services), pid)  # afterwards: the same link
    assert again.ok and again.url == done.url and len(spotify_fake.users["sp-alice"].playlists) == 1


async def test_a_refused_export_can_be_tried_again(services: Services, spotify_fake: SpotifyFake) -> None:
    pid, _, _ = await make_playlist(services, spotify_fake, expired=False)
    spotify_fake.users["sp-alice"].allowlisted = False
    assert not (await PlaylistService.of(services).export_spotify(await owner(services), pid)).ok
    spotify_fake.users["sp-alice"].allowlisted = True  # the owner added them in the dashboard
    retried = await PlaylistService.of(services).export_spotify(await owner(services), pid)
    assert retried.ok and len(spotify_fake.users["sp-alice"].playlists) == 1


async def stored_claim(services: Services, pid: int) -> str | None:
    async with services.session() as s:
        row = await s.get(Playlist, pid)
        assert row is not None
        return row.spotify_playlist_id


async def fail_to_fill(services: Services, spotify_fake: SpotifyFake, pid: int) -> str:
    """An export whose playlist Spotify creates, then refuses the second batch of tracks (a JSON 503):
    the member is told and the created playlist (100 of 149 tracks) is left. Returns its Spotify id."""
    spotify_fake.fail_next("api", status=503, path="/items", skip=1)
    failed = await PlaylistService.of(services).export_spotify(await owner(services), pid)
    assert not failed.ok and failed.fallback is not None
    [(spotify_id, created)] = spotify_fake.users["sp-alice"].playlists.items()
    assert created["items"] == EXPECTED_URIS[:100]
    return spotify_id


@pytest.mark.parametrize(("failure", "says"), [
    pytest.param({"kind": "api", "status": 503, "skip": 1}, "Spotify stopped answering", id="5xx-second-batch"),
    pytest.param({"kind": "http", "status": 502}, "Spotify stopped answering", id="proxy-502"),
    pytest.param({"kind": "429", "retry_after": 0.01, "count": 4}, "in a minute", id="429-storm"),
    pytest.param({"kind": "429", "retry_after": 300}, "in 5 minutes", id="429-long-retry-after"),
    pytest.param({"kind": "api", "status": 403}, "approved users", id="403"),
])
async def test_a_retry_after_the_tracks_failed_finishes_the_same_spotify_playlist(
        services: Services, spotify_fake: SpotifyFake, failure: dict[str, Any], says: str) -> None:
    """Created on Spotify but not filled: the member hears that, and pressing again (even twice at
    once) fills that playlist instead of leaving it behind and creating a second one."""
    pid, _, _ = await make_playlist(services, spotify_fake, expired=False)
    alice = spotify_fake.users["sp-alice"]
    spotify_fake.fail_next(path="/items", **failure)
    service = PlaylistService.of(services)
    first = await service.export_spotify(await owner(services), pid)
    assert not first.ok and not first.url and first.fallback is not None
    assert "Big & <Bold> Mix" in first.message and says in first.message
    assert "same playlist" in first.message and "lost" not in first.message
    assert alice.created == 1
    spotify_fake.failures.clear()  # Spotify is back
    one, two = await asyncio.gather(service.export_spotify(await owner(services), pid),
                                    service.export_spotify(await owner(services), pid))
    done, busy = (one, two) if one.ok else (two, one)
    assert done.ok and done.added == N_TRACKS - 1 and "being sent to Spotify" in busy.message
    [(spotify_id, playlist)] = alice.playlists.items()
    assert alice.created == 1 and playlist["items"] == EXPECTED_URIS  # the same one, no track twice
    assert done.url == f"https://open.spotify.com/playlist/{spotify_id}"
    assert await stored_claim(services, pid) == spotify_id
    again = await service.export_spotify(await owner(services), pid)
    assert again.ok and again.url == done.url and alice.created == 1


async def test_a_retry_after_the_unfinished_playlist_was_deleted_creates_a_new_one(
        services: Services, spotify_fake: SpotifyFake) -> None:
    pid, _, _ = await make_playlist(services, spotify_fake, expired=False)
    spotify_fake.delete_playlist("sp-alice", await fail_to_fill(services, spotify_fake, pid))
    retried = await PlaylistService.of(services).export_spotify(await owner(services), pid)
    alice = spotify_fake.users["sp-alice"]
    assert retried.ok and alice.created == 2
    [(spotify_id, playlist)] = alice.playlists.items()
    assert playlist["items"] == EXPECTED_URIS and retried.url == playlist["external_urls"]["spotify"]
    assert await stored_claim(services, pid) == spotify_id


@pytest.mark.parametrize("change", ["relink", "unlink-then-link"])
async def test_after_a_relink_to_another_spotify_account_the_retry_makes_its_own_playlist(
        services: Services, spotify_fake: SpotifyFake, change: str) -> None:
    """The unfinished playlist belongs to the old account, which the new one may not write to (403):
    a re-link gives the claim back, so the retry creates the playlist in the new account's library
    instead of asking the member, on every press, to sort out a refusal they cannot fix."""
    pid, _, _ = await make_playlist(services, spotify_fake, expired=False)
    old_id = await fail_to_fill(services, spotify_fake, pid)
    grant = spotify_fake.grant("sp-bob")
    async with services.session() as s:
        user = await UserRepository(s).get_or_create_discord(DISCORD_ID)
        accounts = AccountRepository(s, services.cipher)
        if change == "unlink-then-link":
            await accounts.unlink(user.id, "spotify")
        await accounts.link(user.id, "spotify", "sp-bob", access_token=grant["access_token"],
                            refresh_token=grant["refresh_token"], expires_at=datetime.fromtimestamp(time.time() + 3600, UTC),
                            scope="playlist-modify-private")
    assert await stored_claim(services, pid) is None

    retried = await PlaylistService.of(services).export_spotify(await owner(services), pid)
    bob = spotify_fake.users["sp-bob"]
    assert retried.ok, retried.message
    [(spotify_id, playlist)] = bob.playlists.items()
    assert bob.created == 1 and playlist["items"] == EXPECTED_URIS and spotify_id != old_id
    assert spotify_fake.users["sp-alice"].playlists[old_id]["items"] == EXPECTED_URIS[:100]  # not written


async def test_writing_to_another_users_playlist_is_refused_as_spotify_does(spotify_fake: SpotifyFake) -> None:
    """The fake answers 403, not 404, for a playlist that exists but is not the caller's."""
    import aiohttp

    alice, bob = spotify_fake.grant("sp-alice"), spotify_fake.grant("sp-bob")
    async with aiohttp.ClientSession() as http:
        base = spotify_fake.settings_overrides()["SPOTIFY_API_BASE"].rstrip("/")
        async with http.post(f"{base}/me/playlists", json={"name": "mine"},
                             headers={"Authorization": f"Bearer {alice['access_token']}"}) as made:
            playlist_id = (await made.json())["id"]
        async with http.post(f"{base}/playlists/{playlist_id}/items", json={"uris": ["spotify:track:x"]},
                             headers={"Authorization": f"Bearer {bob['access_token']}"}) as refused:
            assert refused.status == 403 and (await refused.json())["error"]["status"] == 403


async def test_a_lapsed_claim_is_taken_over_and_finishes_the_playlist_its_export_created(
        services: Services, spotify_fake: SpotifyFake) -> None:
    """A process died while adding tracks: its claim (remembering the created playlist) blocks other
    exports until EXPORT_CLAIM_S passed, then the next export fills that playlist. The claim is
    written in its stored format ("pending:<unix seconds>:<nonce>:<spotify id>"), which every running
    process must read alike."""
    pid, _, _ = await make_playlist(services, spotify_fake, expired=False)
    spotify_id = await fail_to_fill(services, spotify_fake, pid)
    service = PlaylistService.of(services)

    async def held_since(taken_at: int) -> None:
        async with services.session() as s:
            assert await PlaylistRepository(s).set_spotify_playlist_id(
                pid, f"pending:{taken_at}:deadbeef0000:{spotify_id}", expected=await stored_claim(services, pid))

    await held_since(int(time.time()) - 60)
    busy = await service.export_spotify(await owner(services), pid)
    assert not busy.ok and "being sent to Spotify" in busy.message
    await held_since(int(time.time()) - EXPORT_CLAIM_S - 1)
    taken = await service.export_spotify(await owner(services), pid)
    alice = spotify_fake.users["sp-alice"]
    assert taken.ok and alice.created == 1 and alice.playlists[spotify_id]["items"] == EXPECTED_URIS
    assert await stored_claim(services, pid) == spotify_id


async def test_an_export_cancelled_while_adding_tracks_is_finished_by_the_retry(
        services: Services, spotify_fake: SpotifyFake) -> None:
    """The member's request gave up while Spotify was still adding tracks (which then landed anyway):
    the retry replaces the playlist's items, so nothing is doubled and no second playlist appears."""
    pid, _, _ = await make_playlist(services, spotify_fake, expired=False)
    spotify_fake.fail_next("slow", delay=0.5, path="/items")
    task = asyncio.create_task(PlaylistService.of(services).export_spotify(await owner(services), pid))
    for _ in range(200):
        if any(path.endswith("/items") for _, _, path, _ in spotify_fake.log):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.7)  # the batch Spotify was processing lands after all
    alice = spotify_fake.users["sp-alice"]
    [(spotify_id, playlist)] = alice.playlists.items()
    assert playlist["items"] == EXPECTED_URIS[:100]
    retried = await PlaylistService.of(services).export_spotify(await owner(services), pid)
    assert retried.ok and alice.created == 1 and alice.playlists[spotify_id]["items"] == EXPECTED_URIS
