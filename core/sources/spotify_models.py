"""Spotify DTOs and parsers for the endpoints a development-mode app may still use (2026).

Fields Spotify removed for such apps in 2026 (popularity, followers, label) are deliberately absent;
`genres` on artists is kept optional because it may come back empty.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class TokenSet:
    """A user's OAuth tokens. Store encrypted; `expires_at` is Unix seconds (UTC)."""

    access_token: str
    refresh_token: str
    expires_at: float
    scope: str = ""

    def expires_soon(self, *, now: float | None = None, margin_s: float = 60.0) -> bool:
        """True when the access token should be refreshed before use (default: < 60 s left)."""
        return (now if now is not None else time.time()) >= self.expires_at - margin_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenSet:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class SpotifyArtist:
    id: str
    name: str
    genres: tuple[str, ...] = ()
    rank: int = 0  # position in a top list (1-based), 0 elsewhere


@dataclass(frozen=True, slots=True)
class SpotifyTrack:
    id: str
    uri: str
    name: str
    artists: tuple[str, ...]
    album: str | None
    album_id: str | None
    duration_ms: int | None
    isrc: str | None = None
    url: str | None = None
    rank: int = 0

    @property
    def artist(self) -> str:
        """Primary artist (the first credited), which is what Last.fm usually scrobbles."""
        return self.artists[0] if self.artists else ""


@dataclass(frozen=True, slots=True)
class SpotifyPlay:
    track: SpotifyTrack
    played_at: datetime  # UTC

    @property
    def played_ms(self) -> int:
        return int(self.played_at.timestamp() * 1000)


@dataclass(frozen=True)
class RecentlyPlayed:
    """A batch of recently played tracks, oldest first, and the `after` cursor to store (Unix ms)."""

    plays: list[SpotifyPlay]
    after_ms: int | None


@dataclass(frozen=True)
class SavedTracksPage:
    items: list[tuple[SpotifyTrack, datetime]]  # (track, added_at UTC)
    offset: int
    total: int
    next_offset: int | None


@dataclass(frozen=True)
class CreatedPlaylist:
    id: str
    url: str | None
    uri: str | None
    added: int


class SpotifyMalformed(ValueError):
    """A 2xx body that is not the documented shape."""


def parse_time(text: str) -> datetime:
    """Spotify timestamps ("2016-12-13T20:44:04.589Z") -> aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def parse_track(obj: Any, rank: int = 0) -> SpotifyTrack:
    """A track we can store: it needs Spotify's id and a name (a local file has neither an id nor a
    catalogue entry, and a null name would be stored as "None")."""
    try:
        if not isinstance(obj["id"], str) or not isinstance(obj["name"], str):
            raise SpotifyMalformed(f"track without a string id and name: id={obj['id']!r}")
        album = obj.get("album") or {}
        return SpotifyTrack(
            id=obj["id"], uri=obj.get("uri") or f"spotify:track:{obj['id']}", name=obj["name"],
            artists=tuple(a["name"] for a in obj.get("artists") or ()),
            album=album.get("name"), album_id=album.get("id"), duration_ms=obj.get("duration_ms"),
            isrc=(obj.get("external_ids") or {}).get("isrc"),
            url=(obj.get("external_urls") or {}).get("spotify"), rank=rank,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise SpotifyMalformed(f"bad track object: {exc!r}") from None


def parse_artist(obj: Any, rank: int = 0) -> SpotifyArtist:
    try:
        return SpotifyArtist(obj["id"], obj["name"], tuple(obj.get("genres") or ()), rank)
    except (KeyError, TypeError) as exc:
        raise SpotifyMalformed(f"bad artist object: {exc!r}") from None


def parse_recently_played(data: Any, after_ms: int | None) -> RecentlyPlayed:
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise SpotifyMalformed("recently-played without items")
    plays = []
    for item in data["items"]:
        try:
            if isinstance(item["track"], dict) and item["track"].get("is_local") is True:
                continue  # a local file played in the Spotify app: no catalogue id to learn from
            plays.append(SpotifyPlay(parse_track(item["track"]), parse_time(item["played_at"])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # AttributeError: a non-string time
            raise SpotifyMalformed(f"bad play item: {exc!r}") from None
    plays.sort(key=lambda p: p.played_at)
    cursor = after_ms
    if plays:
        cursor = max(cursor or 0, plays[-1].played_ms)
    return RecentlyPlayed(plays, cursor)


def parse_items(data: Any) -> list[Any]:
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise SpotifyMalformed("paging object without items")
    return data["items"]


def parse_saved_tracks(data: Any) -> SavedTracksPage:
    items = []
    for item in parse_items(data):
        try:
            items.append((parse_track(item["track"]), parse_time(item["added_at"])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # AttributeError: a non-string time
            raise SpotifyMalformed(f"bad saved track: {exc!r}") from None
    try:
        offset, total = int(data.get("offset") or 0), int(data.get("total") or 0)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SpotifyMalformed(f"bad paging numbers: {exc!r}") from None
    following = offset + len(items)
    return SavedTracksPage(items, offset, total, following if data.get("next") and items else None)
