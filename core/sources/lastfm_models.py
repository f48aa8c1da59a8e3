"""Last.fm DTOs and the parsers that build them from `format=json` bodies.

Parsing lives apart from the HTTP client so it can be tested (and benchmarked) on plain dicts: a
1,000,000-scrobble import goes through `parse_recent_tracks` 5,000 times, so it touches each row
once, builds slotted dataclasses and does no validation beyond what storing a play needs.

Last.fm's JSON is a mechanical translation of its XML, with quirks handled here:
- a list with one element is sometimes a bare object (`"track": {...}`), so lists are normalised;
- numbers arrive as strings ("1", "200"), empty mbids as "";
- `recenttracks` rows come in two shapes: plain (`artist: {"#text", "mbid"}`) and `extended=1`
  (`artist: {"name", "mbid", "url", ...}`);
- the now-playing row carries `@attr.nowplaying == "true"` and no `date`: it is never a play.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from core.domain import Kind


class MalformedResponse(ValueError):
    """The body is JSON but not the shape the method documents (treated as transient by the client)."""


class Scrobble(NamedTuple):
    """One play. `played_uts` is kept next to `played_at` because the sync engine keys on it.

    A NamedTuple: a full-history import builds millions of them, and tuples are much cheaper to
    construct than frozen dataclasses.
    """

    artist: str
    artist_mbid: str | None
    album: str | None
    album_mbid: str | None
    track: str
    track_mbid: str | None
    url: str | None
    played_at: datetime  # UTC
    played_uts: int
    loved: bool | None = None  # only known with extended=1


@dataclass(frozen=True, slots=True)
class NowPlaying:
    """The currently playing track (display only; never stored as a play)."""

    artist: str
    album: str | None
    track: str
    url: str | None


@dataclass(frozen=True, slots=True)
class RecentTracksPage:
    rows: list[Scrobble]  # as Last.fm orders them: newest first
    page: int
    per_page: int
    total_pages: int
    total: int
    now_playing: NowPlaying | None = None


@dataclass(frozen=True, slots=True)
class LastfmUser:
    name: str
    playcount: int
    registered: datetime | None
    url: str | None
    country: str | None = None
    realname: str | None = None
    subscriber: bool = False


@dataclass(frozen=True, slots=True)
class TopItem:
    """An entry of user.getTop{Artists,Albums,Tracks}; `artist` is None for artists themselves."""

    kind: Kind
    name: str
    mbid: str | None
    playcount: int
    rank: int
    url: str | None
    artist: str | None = None
    artist_mbid: str | None = None


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    count: int  # Last.fm's relative weight, 0..100


@dataclass(frozen=True, slots=True)
class SimilarArtist:
    name: str
    mbid: str | None
    match: float  # 0..1
    url: str | None


@dataclass(frozen=True, slots=True)
class SimilarArtists:
    """artist.getSimilar's answer: the artist as Last.fm names it (autocorrected) and its neighbours."""

    artist: str | None
    artists: list[SimilarArtist]


@dataclass(frozen=True, slots=True)
class SimilarTrack:
    artist: str
    artist_mbid: str | None
    title: str
    mbid: str | None
    match: float  # 0..1
    url: str | None


@dataclass(frozen=True, slots=True)
class ArtistInfo:
    """artist.getInfo: the artist as Last.fm names it, and its global audience (all of Last.fm)."""

    name: str
    mbid: str | None
    url: str | None
    listeners: int | None  # None when Last.fm gave no usable number
    playcount: int | None


@dataclass(frozen=True, slots=True)
class AlbumInfo:
    """album.getInfo: the album as Last.fm names it and its cover (largest non-empty image)."""

    name: str
    artist: str
    mbid: str | None
    url: str | None
    image_url: str | None
    listeners: int | None


@dataclass(frozen=True, slots=True)
class LastfmSession:
    """Result of the web-auth flow: the account that proved ownership and its session key."""

    name: str
    key: str
    subscriber: bool = False


# --------------------------------------------------------------------------------------------------
# helpers


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    return [value]


def _mbid(value: Any) -> str | None:
    return value or None


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a float infinity
        return default


#: Last.fm's image sizes, smallest first ("" is the unscaled original, listed last by Last.fm).
IMAGE_SIZES = ("small", "medium", "large", "extralarge", "mega", "")
#: Last.fm's grey star shown for every artist since 2019: not a picture of anyone.
PLACEHOLDER_IMAGE = "2a96cbd8b46e442fc41c2b86b821562f"


def largest_image(images: Any) -> str | None:
    """The largest non-empty https image in a Last.fm `image` list; None for none or the placeholder."""
    best: tuple[int, str] | None = None
    for entry in _as_list(images):
        if not isinstance(entry, dict):
            continue
        url = entry.get("#text")
        if not isinstance(url, str) or not url.startswith("https://") or PLACEHOLDER_IMAGE in url:
            continue
        size = entry.get("size", "")
        rank = IMAGE_SIZES.index(size) if size in IMAGE_SIZES[:-1] else len(IMAGE_SIZES) - 2  # "" ~ mega
        if best is None or rank > best[0]:
            best = (rank, url.strip())
    return best[1] if best else None


def _count(value: Any) -> int | None:
    number = _int(value, -1)
    return number if number >= 0 else None


def _section(data: Any, key: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise MalformedResponse(f"expected a {key!r} object")
    return data[key]


def _named(obj: Any) -> tuple[str | None, str | None]:
    """(name, mbid) of an artist/album field in either the plain or the extended shape."""
    if isinstance(obj, dict):
        name = obj.get("#text") or obj.get("name")
        return (name or None), _mbid(obj.get("mbid"))
    if isinstance(obj, str):
        return obj or None, None
    return None, None


# --------------------------------------------------------------------------------------------------
# parsers


def parse_recent_tracks(data: Any) -> RecentTracksPage:
    """user.getRecentTracks -> page of plays, now-playing row split off, rows without date dropped."""
    rt = _section(data, "recenttracks")
    attr = rt.get("@attr") if isinstance(rt.get("@attr"), dict) else {}
    rows: list[Scrobble] = []
    append = rows.append
    now_playing: NowPlaying | None = None
    fromtimestamp = datetime.fromtimestamp
    for it in _as_list(rt.get("track")):
        try:
            artist = it["artist"]
            artist_name = artist.get("#text") or artist.get("name")
            album = it.get("album")
            album_name = album.get("#text") if album else None
            marker = it.get("@attr")
            if marker is not None and marker.get("nowplaying") == "true":
                now_playing = NowPlaying(artist_name, album_name or None, it["name"], it.get("url") or None)
                continue
            date = it.get("date")
            if not date or not artist_name:
                continue  # undated rows cannot be stored as plays
            uts = int(date["uts"])
            name = it["name"]
            if type(name) is not str or type(artist_name) is not str:
                raise TypeError("artist and track names must be strings")
            loved = it.get("loved")
            append(Scrobble(
                artist_name,
                artist.get("mbid") or None,
                album_name or None,
                (album.get("mbid") or None) if album else None,
                name,
                it.get("mbid") or None,
                it.get("url") or None,
                fromtimestamp(uts, UTC),
                uts,
                None if loved is None else loved == "1",
            ))
        except (KeyError, TypeError, AttributeError, ValueError, OverflowError, OSError) as exc:
            # OverflowError/OSError: a `uts` beyond what a datetime can hold
            raise MalformedResponse(f"bad recenttracks row: {exc!r}") from None
    return RecentTracksPage(
        rows=rows,
        page=_int(attr.get("page"), 1),
        per_page=_int(attr.get("perPage"), len(rows)),
        total_pages=_int(attr.get("totalPages"), 0),
        total=_int(attr.get("total"), 0),
        now_playing=now_playing,
    )


def parse_user_info(data: Any) -> LastfmUser:
    user = _section(data, "user")
    registered = user.get("registered")
    unixtime = _int(registered.get("unixtime") if isinstance(registered, dict) else registered, 0)
    if not user.get("name"):
        raise MalformedResponse("user without a name")
    return LastfmUser(
        name=user["name"],
        playcount=_int(user.get("playcount")),
        registered=datetime.fromtimestamp(unixtime, UTC) if unixtime else None,
        url=user.get("url") or None,
        country=(user.get("country") or None) if user.get("country") != "None" else None,
        realname=user.get("realname") or None,
        subscriber=str(user.get("subscriber", "0")) == "1",
    )


_TOP_SHAPES = {
    Kind.ARTIST: ("topartists", "artist"),
    Kind.ALBUM: ("topalbums", "album"),
    Kind.TRACK: ("toptracks", "track"),
}


def parse_top(data: Any, kind: Kind) -> list[TopItem]:
    outer, inner = _TOP_SHAPES[kind]
    section = _section(data, outer)
    items: list[TopItem] = []
    for n, it in enumerate(_as_list(section.get(inner)), start=1):
        if not isinstance(it, dict) or not it.get("name"):
            raise MalformedResponse(f"bad {outer} entry")
        artist, artist_mbid = (None, None) if kind is Kind.ARTIST else _named(it.get("artist"))
        rank = _int((it.get("@attr") or {}).get("rank"), n)
        items.append(TopItem(kind, it["name"], _mbid(it.get("mbid")), _int(it.get("playcount")), rank,
                             it.get("url") or None, artist, artist_mbid))
    return items


def parse_top_tags(data: Any) -> list[Tag]:
    section = _section(data, "toptags")
    return [Tag(t["name"], _int(t.get("count"))) for t in _as_list(section.get("tag"))
            if isinstance(t, dict) and t.get("name")]


def parse_similar_artists(data: Any) -> SimilarArtists:
    section = _section(data, "similarartists")
    attr = section.get("@attr")
    seed = str(attr["artist"]) if isinstance(attr, dict) and attr.get("artist") else None
    out: list[SimilarArtist] = []
    for a in _as_list(section.get("artist")):
        if not isinstance(a, dict) or not a.get("name"):
            raise MalformedResponse("bad similarartists entry")
        out.append(SimilarArtist(a["name"], _mbid(a.get("mbid")), _match(a.get("match")), a.get("url") or None))
    return SimilarArtists(seed, out)


def _match(value: Any) -> float:
    """`match` arrives as "0.87" (artist.getSimilar) or 0.87 (track.getSimilar); junk counts as 0."""
    try:
        match = float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return match if match == match else 0.0  # NaN


def parse_similar_tracks(data: Any) -> list[SimilarTrack]:
    section = _section(data, "similartracks")
    out: list[SimilarTrack] = []
    for t in _as_list(section.get("track")):
        artist = t.get("artist") if isinstance(t, dict) else None
        if not isinstance(t, dict) or not t.get("name") or not isinstance(artist, dict) or not artist.get("name"):
            raise MalformedResponse("bad similartracks entry")
        out.append(SimilarTrack(str(artist["name"]), _mbid(artist.get("mbid")), str(t["name"]), _mbid(t.get("mbid")),
                                _match(t.get("match")), t.get("url") or None))
    return out


def parse_session(data: Any) -> LastfmSession:
    session = _section(data, "session")
    if not session.get("name") or not session.get("key"):
        raise MalformedResponse("session without name/key")
    return LastfmSession(session["name"], session["key"], str(session.get("subscriber", "0")) == "1")


def parse_artist_info(data: Any) -> ArtistInfo:
    """artist.getInfo -> name, mbid and global `stats.listeners` / `stats.playcount` (strings)."""
    artist = _section(data, "artist")
    name = artist.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedResponse("artist.getInfo without a name")
    stats = artist.get("stats") if isinstance(artist.get("stats"), dict) else {}
    return ArtistInfo(name=name, mbid=_mbid(artist.get("mbid")), url=artist.get("url") or None,
                      listeners=_count(stats.get("listeners")), playcount=_count(stats.get("playcount")))


def parse_album_info(data: Any) -> AlbumInfo:
    """album.getInfo -> name, artist and the largest cover image (None when Last.fm has none)."""
    album = _section(data, "album")
    name, artist = album.get("name"), album.get("artist")
    if isinstance(artist, dict):
        artist = artist.get("name")
    if not isinstance(name, str) or not name or not isinstance(artist, str):
        raise MalformedResponse("album.getInfo without a name or artist")
    return AlbumInfo(name=name, artist=artist, mbid=_mbid(album.get("mbid")), url=album.get("url") or None,
                     image_url=largest_image(album.get("image")), listeners=_count(album.get("listeners")))
