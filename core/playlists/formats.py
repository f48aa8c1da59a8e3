"""Playlist files and links that work without any streaming account: XSPF, extended M3U, search URLs.

Why these: XSPF (https://xspf.org/spec, version 1) is the open XML playlist format that players and
importers (VLC, Soundiiz, TuneMyMusic…) read with artist/title/album metadata, so a track can be
matched on any service; extended M3U is what everything else reads. Sonance has no audio files, so
a track's location is its Last.fm page, or a Last.fm search when the catalogue has no page for it.

Built with `xml.etree.ElementTree`, never string formatting, so `&`, `<`, quotes and non-ASCII
names are escaped by the serializer; characters XML 1.0 forbids (control codes that sometimes
arrive in scrobbled metadata) are dropped first because no escaping can represent them.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from urllib.parse import quote, quote_plus

from core.playlists.models import ExportFile, PlaylistTrack, SearchLinks

XSPF_NS = "http://xspf.org/ns/0/"
LASTFM_SEARCH = "https://www.last.fm/search?q="
SPOTIFY_SEARCH = "https://open.spotify.com/search/"
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85]+")


def xml_text(text: str) -> str:
    """Text safe for XML 1.0 content (the serializer escapes; this removes the unrepresentable)."""
    return _XML_ILLEGAL.sub("", text)


def one_line(text: str) -> str:
    """M3U is line-based: a newline in a title would start a bogus entry."""
    return _LINE_BREAKS.sub(" ", text).strip()


def query_text(track: PlaylistTrack) -> str:
    return one_line(f"{track.artist} {track.title}")


def lastfm_search_url(track: PlaylistTrack) -> str:
    """``https://www.last.fm/search?q=Artist+Title`` (query-string encoded)."""
    return LASTFM_SEARCH + quote_plus(query_text(track))


def spotify_search_url(track: PlaylistTrack) -> str:
    """``https://open.spotify.com/search/Artist%20Title`` (path-segment encoded: `/` becomes %2F)."""
    return SPOTIFY_SEARCH + quote(query_text(track), safe="")


def lastfm_url(track: PlaylistTrack) -> str:
    """The track's Last.fm page when the catalogue knows it, else a Last.fm search for it."""
    return track.lastfm_url or lastfm_search_url(track)


def search_links(tracks: Sequence[PlaylistTrack]) -> tuple[SearchLinks, ...]:
    return tuple(SearchLinks(t.artist, t.title, lastfm_search_url(t), spotify_search_url(t)) for t in tracks)


def _sub(parent: ET.Element, tag: str, text: str | None) -> None:
    if text:
        ET.SubElement(parent, f"{{{XSPF_NS}}}{tag}").text = xml_text(text)


def to_xspf(name: str, description: str | None, tracks: Sequence[PlaylistTrack], *,
            creator: str = "Sonance") -> bytes:
    """An XSPF 1 document (UTF-8, with XML declaration).

    Per track, in the spec's element order: location (Last.fm page or search), identifier (Spotify
    URI, when known), title, creator (artist), annotation (why it is there), info (Last.fm), album,
    duration (ms, when known).
    """
    ET.register_namespace("", XSPF_NS)
    root = ET.Element(f"{{{XSPF_NS}}}playlist", {"version": "1"})
    _sub(root, "title", name)
    _sub(root, "creator", creator)
    _sub(root, "annotation", description)
    track_list = ET.SubElement(root, f"{{{XSPF_NS}}}trackList")
    for track in tracks:
        element = ET.SubElement(track_list, f"{{{XSPF_NS}}}track")
        _sub(element, "location", lastfm_url(track))
        if track.spotify_id:
            _sub(element, "identifier", f"spotify:track:{track.spotify_id}")
        _sub(element, "title", track.title)
        _sub(element, "creator", track.artist)
        _sub(element, "annotation", track.reason)
        _sub(element, "info", lastfm_url(track))
        _sub(element, "album", track.album)
        if track.duration_ms:
            _sub(element, "duration", str(int(track.duration_ms)))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def to_m3u(name: str, tracks: Sequence[PlaylistTrack]) -> bytes:
    """Extended M3U, UTF-8: ``#EXTM3U``, ``#PLAYLIST:``, then ``#EXTINF:<seconds>,Artist - Title``
    and a URL line per track (-1 seconds when the duration is unknown, as the format specifies)."""
    lines = ["#EXTM3U", f"#PLAYLIST:{one_line(name)}"]
    for track in tracks:
        seconds = round(track.duration_ms / 1000) if track.duration_ms else -1
        lines.append(f"#EXTINF:{seconds},{one_line(track.artist)} - {one_line(track.title)}")
        lines.append(lastfm_url(track))
    return ("\n".join(lines) + "\n").encode("utf-8")


def file_stem(name: str) -> str:
    """An ASCII file name stem from a playlist name ("Rainy Day Shoegaze" -> "rainy-day-shoegaze")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
    return stem or "playlist"


def export_files(name: str, description: str | None, tracks: Sequence[PlaylistTrack]) -> tuple[ExportFile, ...]:
    stem = file_stem(name)
    return (ExportFile(f"{stem}.xspf", to_xspf(name, description, tracks), "application/xspf+xml"),
            ExportFile(f"{stem}.m3u", to_m3u(name, tracks), "audio/x-mpegurl"))
