"""Plain dataclasses passed between layers (engine -> bot, engine -> explainer).

They carry no behaviour and no database or Discord objects, so the recommender, the compatibility
scorer, the explainer and the renderers can agree on shapes without importing each other.
Fields may be added; existing names are a contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

#: How users know the services behind our source and provider ids ("lastfm" is a log, metrics and
#: database key, not a name).
SOURCE_NAMES = {"lastfm": "Last.fm", "spotify": "Spotify", "aoty": "Album of the Year"}


class Kind(StrEnum):
    """Granularity of an item."""

    ARTIST = "artist"
    ALBUM = "album"
    TRACK = "track"


@dataclass(frozen=True)
class Weighted:
    """A named thing with a weight: an evidence item or tag, a shared artist…"""

    name: str
    weight: float


@dataclass(frozen=True)
class AotyFacts:
    """albumoftheyear.org facts about an album, as shown to users and given to the explainer."""

    critic_score: float | None = None
    critic_count: int | None = None
    user_score: float | None = None
    user_count: int | None = None
    url: str | None = None
    must_hear: bool = False
    genres: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """Why an item was recommended: the user's own items and tags that drove it, with weights.

    `sources` tells which model components contributed (e.g. {"cf": 0.6, "content": 0.3}).
    """

    items: tuple[Weighted, ...] = ()
    tags: tuple[Weighted, ...] = ()
    sources: dict[str, float] = field(default_factory=dict)
    aoty: AotyFacts | None = None
    popularity: float | None = None  # share of the model's users who know the item, 0..1 (ranking only)
    #: Global listeners of the item's artist on Last.fm (artist.getInfo): the only base for telling
    #: a listener how popular something is. None = unknown, and then nothing is claimed.
    lastfm_listeners: int | None = None
    note: str | None = None  # e.g. "cold start: based on popular artists"
    similar_to: tuple[Weighted, ...] = ()  # the user's items this one is similar to on Last.fm


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its score and evidence."""

    kind: Kind
    item_id: int  # database row id (or dataset id in offline tools)
    name: str
    score: float
    evidence: Evidence
    artist: str | None = None  # for albums and tracks
    image_url: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class SharedArtist:
    name: str
    plays_a: float
    plays_b: float
    weight: float  # contribution to the score


@dataclass(frozen=True)
class Bridge:
    """An artist one user loves that the other is most likely to love next."""

    name: str
    from_user: str  # "a" or "b": whose favourite it is
    likelihood: float


#: Below this confidence (`core.compat.scoring.user_confidence`, of the thinner history of a pair) a
#: compatibility score is an "early read": /compat's Confidence field, its card and its summary say
#: so, and /leaderboard and /matches mark the pair the same way. One constant, because a pair that
#: /compat calls an early read must not top a board with no caveat (the surfaces used to disagree).
EARLY_READ_CONFIDENCE = 0.5


def is_early_read(confidence: float) -> bool:
    """Whether a score with this confidence (0..1) is an early read (see `EARLY_READ_CONFIDENCE`)."""
    return confidence < EARLY_READ_CONFIDENCE


@dataclass(frozen=True)
class Compatibility:
    """A symmetric 0-100 taste compatibility with the breakdown that explains it."""

    score: float  # 0..100, calibrated (percentile among known pairs)
    label: str  # "opposites" … "kindred spirits"
    raw: float  # the uncalibrated similarity
    confidence: float  # 0..1, low when a history is thin
    shared_artists: tuple[SharedArtist, ...] = ()
    shared_tags: tuple[Weighted, ...] = ()
    bridges: tuple[Bridge, ...] = ()
    differences_a: tuple[Weighted, ...] = ()  # what A loves that B does not
    differences_b: tuple[Weighted, ...] = ()
    components: dict[str, float] = field(default_factory=dict)  # overlap / tags / latent parts
    different_tags_a: tuple[Weighted, ...] = ()  # tags far more present in A's profile than B's
    different_tags_b: tuple[Weighted, ...] = ()
