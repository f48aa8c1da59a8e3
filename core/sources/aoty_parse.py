"""Parsers for albumoftheyear.org pages (album page, album search results, album lists).

AOTY has no API, so the page structure documented in shared/fixtures/aoty/README.md is the contract.
Parsing is strict about identity and lenient about facts:
- REQUIRED: album title and artist (JSON-LD `MusicAlbum` first, then `.albumHeadline`, then og:title).
  Without them the page is not an album page we understand (a challenge page, a redesign, an error
  page), and `AotyParseError` is raised. An "album" with no name is never returned.
- OPTIONAL: scores, counts, genres, tags, tracklist, similar albums. An album with no critic reviews
  yet legitimately has no critic score, so a missing fact is `None` / empty, never a guess.

`AotyParseError` subclasses `SourceUnavailable("aoty")`: to a user, an unreadable page and a
refused request are the same thing ("AOTY is unavailable"), while logs get the precise reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag

from core.domain import AotyFacts
from core.errors import SourceUnavailable

_INT = re.compile(r"\d[\d,]*")
_LENGTH = re.compile(r"^(?:(\d+):)?(\d+):(\d{2})$")


class AotyParseError(SourceUnavailable):
    """The page is not a readable album/search page (structure changed, error page, ...)."""

    def __init__(self, detail: str, url: str | None = None) -> None:
        self.url = url
        super().__init__("aoty", detail=f"{detail} ({url})" if url else detail)


@dataclass(frozen=True)
class AotyTrack:
    disc: int
    number: int
    title: str
    length_s: int | None = None
    rating: int | None = None  # AOTY user rating 0..100
    rating_count: int | None = None
    featured: tuple[str, ...] = ()
    url: str | None = None


@dataclass(frozen=True)
class AotyAlbumRef:
    """An album as listed elsewhere (search results, "You May Also Like", must-hear lists)."""

    url: str
    title: str | None
    artist: str | None
    type: str | None = None  # e.g. "2014 • Single" in search results, "2013" in discographies
    must_hear: bool = False
    critic_score: int | None = None  # only list pages show scores
    user_score: int | None = None


@dataclass(frozen=True)
class AotyAlbum:
    url: str
    title: str
    artist: str
    fetched_at: datetime  # UTC; the cache layer decides freshness (settings.aoty_cache_days)
    critic_score: float | None = None  # unrounded when the page has it (title="70.3794")
    critic_count: int | None = None
    user_score: float | None = None
    user_count: int | None = None
    release_date: str | None = None  # ISO date from JSON-LD
    image_url: str | None = None
    genres: tuple[str, ...] = ()  # primary genres
    secondary_genres: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tracks: tuple[AotyTrack, ...] = ()
    must_hear: bool = False
    similar: tuple[AotyAlbumRef, ...] = field(default=())

    def facts(self) -> AotyFacts:
        """The subset shown to users and to the explainer (core.domain.AotyFacts)."""
        return AotyFacts(critic_score=self.critic_score, critic_count=self.critic_count,
                         user_score=self.user_score, user_count=self.user_count, url=self.url,
                         must_hear=self.must_hear, genres=self.genres + self.secondary_genres)


# ----------------------------------------------------------------------------------------- helpers


def _soup(html: str | bytes) -> BeautifulSoup:
    return BeautifulSoup(html, "lxml")


def _text(node: Tag | None) -> str | None:
    if node is None:
        return None
    text = " ".join(node.get_text(" ", strip=True).split())
    return text or None


def _name(value: Any) -> str | None:
    """A title/artist as found (JSON-LD may hold any JSON type): a non-blank string, else None."""
    return value.strip() or None if isinstance(value, str) else None


def _int(text: str | None) -> int | None:
    if not text:
        return None
    m = _INT.search(text)
    return int(m.group(0).replace(",", "")) if m else None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "NR") else None
    except ValueError:
        return None


def _length(text: str | None) -> int | None:
    m = _LENGTH.match(text.strip()) if text else None
    if not m:
        return None
    hours, minutes, seconds = int(m.group(1) or 0), int(m.group(2)), int(m.group(3))
    return hours * 3600 + minutes * 60 + seconds


def _json_ld_album(soup: BeautifulSoup) -> dict[str, Any] | None:
    for script in soup.select('script[type="application/ld+json"]'):
        try:
            data = json.loads(script.string or "")
        except ValueError:
            continue
        for obj in data if isinstance(data, list) else [data]:
            if isinstance(obj, dict) and obj.get("@type") == "MusicAlbum":
                return obj
    return None


def is_challenge_page(html: str) -> bool:
    """Cloudflare interstitials ("Just a moment...") sometimes arrive with a 200/503 status."""
    head = html[:4000].lower()
    return "<title>just a moment" in head or "cf-challenge" in head or "challenge-platform" in head


# ------------------------------------------------------------------------------------------ blocks


def parse_album_blocks(container: BeautifulSoup | Tag, base_url: str) -> list[AotyAlbumRef]:
    """`.albumBlock` items (search results, lists, "You May Also Like"); parts may be missing."""
    refs: list[AotyAlbumRef] = []
    for block in container.select(".albumBlock"):
        link = block.select_one(".image a[href]") or block.select_one('a[href^="/album/"]')
        if link is None:
            continue
        ratings: dict[str, int | None] = {}
        for row in block.select(".ratingRow"):
            label = (_text(row.select_one(".ratingText")) or "").lower()
            value = _int(_text(row.select_one(".rating")))
            if "critic" in label:
                ratings["critic"] = value
            elif "user" in label:
                ratings["user"] = value
        image = block.select_one(".image")
        refs.append(AotyAlbumRef(
            url=urljoin(base_url, str(link["href"])),
            title=_text(block.select_one(".albumTitle")),
            artist=_text(block.select_one(".artistTitle")),
            type=_text(block.select_one(".type")),
            must_hear=bool(image is not None and "mustHear" in (image.get("class") or [])),
            critic_score=ratings.get("critic"),
            user_score=ratings.get("user"),
        ))
    return refs


def parse_search_albums(html: str | bytes, base_url: str) -> list[AotyAlbumRef]:
    """`/search/albums/?q=` results, in the site's order. A page without the results heading is an error."""
    soup = _soup(html)
    if soup.select_one("h1.headline") is None and not soup.select(".albumBlock"):
        raise AotyParseError("not a search results page")
    return parse_album_blocks(soup, base_url)


def parse_album_list(html: str | bytes, base_url: str) -> list[AotyAlbumRef]:
    """List pages such as `/must-hear/2026/` (blocks carry scores and the must-hear star)."""
    return parse_album_blocks(_soup(html), base_url)


# ------------------------------------------------------------------------------------------- album


def _detail_rows(soup: BeautifulSoup) -> dict[str, Tag]:
    rows: dict[str, Tag] = {}
    for row in soup.select(".albumTopBox.info .detailRow"):
        spans = row.find_all("span", recursive=False)
        if not spans:
            continue
        name = (_text(spans[-1]) or "").lstrip("/").strip().lower()
        if name:
            rows.setdefault(name, row)
    return rows


def _section_by_heading(soup: BeautifulSoup, heading: str) -> Tag | None:
    for h in soup.select(".section .sectionHeading"):
        if (_text(h) or "").lower().startswith(heading.lower()):
            parent = h.parent
            return parent if isinstance(parent, Tag) else None
    return None


def _tracks(soup: BeautifulSoup, base_url: str) -> tuple[AotyTrack, ...]:
    tracks: list[AotyTrack] = []
    tables = soup.select(".trackListTable")
    for disc, table in enumerate(tables, start=1):
        for row in table.select("tr"):
            title_cell = row.select_one("td.trackTitle")
            if title_cell is None:
                continue
            link = title_cell.select_one("a")
            title = _text(link) if link is not None else _text(title_cell.find(string=True, recursive=False))
            if not title:
                continue
            rating_span = row.select_one("td.trackRating span")
            featured = tuple(t for t in (_text(a) for a in title_cell.select(".featuredArtists a")) if t)
            tracks.append(AotyTrack(
                disc=disc,
                number=_int(_text(row.select_one("td.trackNumber"))) or len(tracks) + 1,
                title=title,
                length_s=_length(_text(title_cell.select_one(".length"))),
                rating=_int(_text(rating_span)),
                rating_count=_int(str(rating_span.get("title", ""))) if rating_span is not None else None,
                featured=featured,
                url=urljoin(base_url, str(link["href"])) if link is not None and link.get("href") else None,
            ))
    return tuple(tracks)


def parse_album(html: str | bytes, url: str, *, fetched_at: datetime | None = None) -> AotyAlbum:
    """An album page -> AotyAlbum. Raises AotyParseError when title or artist cannot be found."""
    soup = _soup(html)
    ld = _json_ld_album(soup) or {}
    by_artist = ld.get("byArtist")
    if isinstance(by_artist, list):
        by_artist = by_artist[0] if by_artist else None
    title = ld.get("name") or _text(soup.select_one(".albumHeadline .albumTitle, h1.albumTitle"))
    artist = (by_artist.get("name") if isinstance(by_artist, dict) else None) \
        or _text(soup.select_one(".albumHeadline .artist"))
    title, artist = _name(title), _name(artist)
    if not (title and artist):
        og = soup.select_one('meta[property="og:title"]')
        content = str(og.get("content", "")) if og is not None else ""
        if " - " in content:
            artist, title = (artist or _name(content.split(" - ", 1)[0])), (title or _name(content.split(" - ", 1)[1]))
    missing = [name for name, value in (("title", title), ("artist", artist)) if not value]
    if missing:
        raise AotyParseError(f"album page without {' and '.join(missing)}", url)
    assert title and artist

    critic_link = soup.select_one(".albumCriticScoreBox .albumCriticScore a")
    critic_score = None
    if critic_link is not None:
        critic_score = _float(str(critic_link.get("title", ""))) or _float(_text(critic_link))
    critic_count = _int(_text(soup.select_one(".albumCriticScoreBox .numReviews strong"))) \
        if critic_score is not None else None
    user_link = soup.select_one(".albumUserScore a[title]") or soup.select_one(".albumUserScore a")
    user_score = None
    if user_link is not None:
        user_score = _float(str(user_link.get("title", ""))) or _float(_text(user_link))
    user_count = _int(_text(soup.select_one(".albumUserScoreBox .numReviews strong"))) \
        if user_score is not None else None

    rows = _detail_rows(soup)
    genre_row = rows.get("genre")
    primary: list[str] = []
    secondary: list[str] = []
    if genre_row is not None:
        for a in genre_row.select('a[href^="/genre/"]'):
            name = _text(a)
            if name:
                (secondary if a.select_one(".secondary") is not None else primary).append(name)
    elif isinstance(ld.get("genre"), list):
        primary = [g for g in ld["genre"] if isinstance(g, str)]
    tag_row = rows.get("tags") or rows.get("tag")
    tags = [t for t in (_text(a) for a in tag_row.select('a[href^="/tag/"]'))] if tag_row is not None else []
    if not tags:  # the "Tags" side section, when the details box has no tag row
        section = _section_by_heading(soup, "Tags")
        tags = [t for t in (_text(a) for a in section.select('a[href^="/tag/"]'))] if section else []

    similar_section = _section_by_heading(soup, "You May Also Like")
    similar = tuple(parse_album_blocks(similar_section, url)) if similar_section is not None else ()

    headline = soup.select_one(".albumHeadline")
    cover = soup.select_one(".albumTopBox.cover")
    must_hear = any(node is not None and node.select_one(".mustHear, .mustHearButton") is not None
                    for node in (headline, cover))

    image = ld.get("image")
    return AotyAlbum(
        url=url, title=title.strip(), artist=artist.strip(),
        fetched_at=fetched_at or datetime.now(UTC),
        critic_score=critic_score, critic_count=critic_count,
        user_score=user_score, user_count=user_count,
        release_date=ld.get("datePublished"),
        image_url=image if isinstance(image, str) else None,
        genres=tuple(dict.fromkeys(primary)), secondary_genres=tuple(dict.fromkeys(secondary)),
        tags=tuple(dict.fromkeys(t for t in tags if t)),
        tracks=_tracks(soup, url), must_hear=must_hear, similar=similar,
    )
