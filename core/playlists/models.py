"""Plain results of the playlist engine, shared by the builder, the exporters and the bot's renderer.

They hold no database or Discord objects, so a playlist read back from its rows months later and one
just built look the same to every consumer (preview embed, XSPF/M3U, Spotify export).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Origin(StrEnum):
    """What a playlist was built from (stored in `playlists.origin`)."""

    RECOMMENDATIONS = "recommendations"
    SEED = "seed"
    BLEND = "blend"


#: Length bounds of /playlist (Spotify takes more, but a preview and a listening session do not).
MIN_LENGTH, MAX_LENGTH, DEFAULT_LENGTH = 5, 100, 25


@dataclass(frozen=True)
class PlaylistTrack:
    """One track of a playlist with the reason it is there.

    `side` says whose taste a blend track comes from: "a" (the asker), "b" (the partner) or "both"
    (shared artists and bridges); None outside blends. It is what blend fairness is measured on.
    """

    track_id: int
    artist: str
    title: str
    reason: str
    album: str | None = None
    duration_ms: int | None = None
    spotify_id: str | None = None
    lastfm_url: str | None = None
    artist_id: int | None = None
    side: str | None = None


@dataclass(frozen=True)
class Fairness:
    """Share of a blend attributable to each person (shared tracks count half to each).

    A blend is fair when both shares are close to 0.5; `share_a + share_b == 1`.
    """

    share_a: float
    share_b: float
    shared: int  # tracks from shared artists or bridges both would like
    only_a: int
    only_b: int

    @property
    def balanced(self) -> bool:
        return abs(self.share_a - 0.5) <= 0.1


@dataclass(frozen=True)
class BuiltPlaylist:
    """A stored playlist: its row id (the export buttons' key), name, description and tracks."""

    id: int
    name: str
    description: str
    origin: Origin
    tracks: tuple[PlaylistTrack, ...]
    seed: str | None = None
    partner_name: str | None = None  # blends: the other member's display name
    fairness: Fairness | None = None
    requested: int = 0  # the length asked for (tracks may be fewer when the catalogue is thin)
    note: str | None = None  # e.g. why the list is shorter than asked
    spotify_linked: bool = False  # whether "Send to Spotify" can work for the owner
    private: bool = False  # show to the asker only (they hide their listening in this server)
    top_artists: tuple[str, ...] = field(default=())
    cover_url: str | None = None  # the first track's album cover that we know (none: no thumbnail)


@dataclass(frozen=True)
class ExportFile:
    filename: str
    data: bytes
    media_type: str


@dataclass(frozen=True)
class SearchLinks:
    artist: str
    title: str
    lastfm: str
    spotify: str


@dataclass(frozen=True)
class FilesExport:
    """What "Download files" sends: XSPF + M3U and search links for the first tracks."""

    name: str
    files: tuple[ExportFile, ...]
    links: tuple[SearchLinks, ...]
    total: int


@dataclass(frozen=True)
class SpotifyExport:
    """Outcome of "Send to Spotify": a URL, or a clear reason and the files to fall back on."""

    ok: bool
    message: str
    url: str | None = None
    added: int = 0
    unresolved: int = 0
    fallback: FilesExport | None = None
