"""XSPF, extended M3U and search links: valid, complete, and escaped whatever the catalogue holds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, unquote, urlsplit

from core.playlists.formats import (
    XSPF_NS,
    export_files,
    file_stem,
    lastfm_search_url,
    search_links,
    spotify_search_url,
    to_m3u,
    to_xspf,
)
from core.playlists.models import PlaylistTrack

NS = {"x": XSPF_NS}

TRACKS = [
    PlaylistTrack(1, "Simon & Garfunkel", "The Sound of <Silence>", "You both play \"them\" & 'more'",
                  album="Sounds & Silence", duration_ms=185_000, spotify_id="abc123",
                  lastfm_url="https://www.last.fm/music/Simon+%26+Garfunkel/_/The+Sound+of+Silence", artist_id=1),
    PlaylistTrack(2, "Björk", "Jóga", "New for you: close to Portishead", album="Homogenic", artist_id=2),
    PlaylistTrack(3, "AC/DC", "T.N.T.\nbonus", "Similar to Metallica", duration_ms=None, artist_id=3),
    PlaylistTrack(4, "Sigur Rós", "Hoppípolla\x07", "tab\there", album=None, duration_ms=268_400, artist_id=4),
]


def test_xspf_is_valid_xml_with_every_track_and_proper_escaping() -> None:
    data = to_xspf("Rock & <Roll> \"mix\" ñ", "Café & crème", TRACKS)
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(data)
    assert root.tag == f"{{{XSPF_NS}}}playlist" and root.get("version") == "1"
    assert root.findtext("x:title", namespaces=NS) == "Rock & <Roll> \"mix\" ñ"
    assert root.findtext("x:annotation", namespaces=NS) == "Café & crème"
    tracks = root.findall("x:trackList/x:track", NS)
    assert len(tracks) == len(TRACKS)
    for element, track in zip(tracks, TRACKS, strict=True):
        assert element.findtext("x:creator", namespaces=NS) == track.artist
        assert element.findtext("x:title", namespaces=NS) == track.title.replace("\x07", "")
        assert element.findtext("x:location", namespaces=NS)
        assert element.findtext("x:annotation", namespaces=NS) == track.reason
    first, second, third, fourth = tracks
    assert first.findtext("x:album", namespaces=NS) == "Sounds & Silence"
    assert first.findtext("x:identifier", namespaces=NS) == "spotify:track:abc123"
    assert first.findtext("x:duration", namespaces=NS) == "185000"
    assert first.findtext("x:location", namespaces=NS) == TRACKS[0].lastfm_url
    assert second.find("x:identifier", NS) is None and second.find("x:duration", NS) is None
    assert second.findtext("x:location", namespaces=NS) == "https://www.last.fm/search?q=Bj%C3%B6rk+J%C3%B3ga"
    assert third.find("x:album", NS) is None
    assert fourth.findtext("x:title", namespaces=NS) == "Hoppípolla"  # control character dropped
    # children follow the XSPF element order (location, identifier, title, creator, annotation, info, album…)
    order = [child.tag.split("}")[1] for child in first]
    assert order == ["location", "identifier", "title", "creator", "annotation", "info", "album", "duration"]
    # escaped on the wire, not just parseable
    assert b"&amp;" in data and b"&lt;Silence&gt;" in data and "Björk".encode() in data


def test_m3u_has_header_extinf_and_url_lines() -> None:
    text = to_m3u("Late\nnight", TRACKS).decode("utf-8")
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[1] == "#PLAYLIST:Late night"
    body = lines[2:]
    assert len(body) == 2 * len(TRACKS)
    assert body[0] == "#EXTINF:185,Simon & Garfunkel - The Sound of <Silence>"
    assert body[1] == TRACKS[0].lastfm_url
    assert body[2] == "#EXTINF:-1,Björk - Jóga"
    assert body[3].startswith("https://www.last.fm/search?q=")
    assert body[4] == "#EXTINF:-1,AC/DC - T.N.T. bonus"  # a newline never splits an entry
    assert body[6] == "#EXTINF:268,Sigur Rós - Hoppípolla\x07"
    assert all(line.startswith("#EXTINF:") for line in body[0::2])
    assert all(line.startswith("https://") for line in body[1::2])


def test_search_links_are_url_encoded() -> None:
    track = PlaylistTrack(9, "AC/DC & Friends", "Back in Black? #1", "r")
    lastfm = lastfm_search_url(track)
    spotify = spotify_search_url(track)
    assert lastfm.startswith("https://www.last.fm/search?q=")
    assert parse_qs(urlsplit(lastfm).query)["q"] == ["AC/DC & Friends Back in Black? #1"]
    assert spotify.startswith("https://open.spotify.com/search/")
    segment = spotify.removeprefix("https://open.spotify.com/search/")
    assert "/" not in segment and "#" not in segment and "?" not in segment and " " not in segment
    assert unquote(segment) == "AC/DC & Friends Back in Black? #1"
    assert spotify_search_url(TRACKS[1]) == "https://open.spotify.com/search/Bj%C3%B6rk%20J%C3%B3ga"
    links = search_links(TRACKS[:2])
    assert [link.artist for link in links] == ["Simon & Garfunkel", "Björk"]


def test_export_files_names_and_types() -> None:
    xspf, m3u = export_files("Ça va? Rainy Day — Shoegaze!", None, TRACKS)
    assert xspf.filename == "ca-va-rainy-day-shoegaze.xspf" and m3u.filename == "ca-va-rainy-day-shoegaze.m3u"
    assert file_stem("日本語") == "playlist"
    ET.fromstring(xspf.data)
