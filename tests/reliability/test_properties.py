"""Bad input at every edge, property-based (hypothesis): odd Unicode, huge strings, negative/NaN
counts, malformed dates, wrong JSON shapes.

The contract everywhere: a clear error of the module's documented type, or a valid value; never
another exception, and never a half-written row.
- Importers (listens TSV, Last.fm CSV, Spotify JSON) -> success, or `ImportFileError` naming the file
  (and the line when there is one) with *zero* rows written (every table is counted).
- AOTY `parse_album` on mutated real pages and random HTML -> an album with a title and an artist, or
  `AotyParseError` (a `SourceUnavailable`).
- Last.fm `parse_*` and Spotify `parse_*` on random JSON-like values and near-valid payloads ->
  well-typed rows, or `MalformedResponse` / `SpotifyMalformed`.
- Command options (/dm time, zone and quiet hours, /top period, /recommend count and discovery,
  /playlist mode and length, /tune text) -> a `SonanceError` with a user message, or a valid value;
  /dm stores nothing when it refuses.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import string
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.asker import Asker
from core.db.models import Base, UserSettings
from core.db.repositories import UserRepository
from core.domain import Kind
from core.errors import ImportFileError, InvalidInput, SonanceError
from core.explain.feedback import parse_feedback
from core.playlists.service import PlaylistService
from core.recommender.lists import discovery_level
from core.recommender.service import RecommendService
from core.services import Services
from core.sources.aoty_parse import AotyAlbum, AotyParseError, parse_album
from core.sources.lastfm_models import (
    MalformedResponse,
    parse_recent_tracks,
    parse_session,
    parse_similar_artists,
    parse_top,
    parse_top_tags,
    parse_user_info,
)
from core.sources.spotify_models import (
    SpotifyMalformed,
    parse_artist,
    parse_recently_played,
    parse_saved_tracks,
    parse_track,
)
from core.stats import StatsService
from core.sync.imports import import_listen_file, import_listens_tsv
from core.weekly import WeeklySettings, parse_hhmm, timezone_choices, zone
from tests.conftest import AOTY_FIXTURES_DIR

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
PURE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AOTY_ALBUM = AOTY_FIXTURES_DIR / "album.html"

# --- strategies --------------------------------------------------------------------------------

#: Text a user or an export might contain: any Unicode (no lone surrogates: files are UTF-8),
#: including RTL marks, zero-width joiners, combining marks, emoji and control characters.
odd_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
huge_text = st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "🎵", "\u202e", "\u0301", "\t"]),
                      st.integers(min_value=300, max_value=70_000))
names = st.one_of(odd_text, odd_text.filter(lambda s: bool(s.strip())), huge_text,
                  st.sampled_from(["Björk", "Sigur Rós", "水曜日のカンパネラ", "‏مشروع ليلى", "AC/DC", " ", ""]))
good_times = st.integers(min_value=1_100_000_000, max_value=1_790_000_000)
times = st.one_of(
    good_times.map(str),
    good_times.map(lambda t: str(t * 1000)),  # milliseconds
    good_times.map(lambda t: datetime.fromtimestamp(t).isoformat()),
    st.sampled_from(["", "yesterday", "2026-13-45T00:00:00Z", "0", "-1", "NaN", "inf", "1e400",
                     "99999999999999999999999", "2026-02-30", "١٧٠٠٠٠٠٠٠٠", "2001-12-31T23:59:59Z",
                     "31 Jan 2021 14:05", "31 Jan 2021, 14:05", "2099-01-01T00:00:00", "\x00"]),
    odd_text,
)
counts = st.one_of(st.integers(min_value=-10**12, max_value=10**12), st.floats(allow_nan=True),
                   st.sampled_from([None, "200000", "", True, [], {}]))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), odd_text)
json_like = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(odd_text, st.sampled_from(
        ["#text", "name", "mbid", "date", "uts", "@attr", "artist", "album", "track", "id", "items",
         "played_at", "added_at", "offset", "total", "next", "nowplaying", "key", "genres"])), inner, max_size=5)),
    max_leaves=12)


async def row_counts(services: Services) -> dict[str, int]:
    async with services.engine.connect() as conn:
        return {t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
                for t in Base.metadata.sorted_tables}


def assert_names_file(error: ImportFileError, path: Path) -> None:
    message = error.user_message
    assert str(path) in message, message
    assert message.strip() != str(path)  # and says what is wrong
    # ... and where: a line, a JSON entry or a byte offset; on one line, with no raw control character
    assert error.position and re.fullmatch(r"(line|entry|near byte|byte) [\d,]+(, near byte [\d,]+)?",
                                           error.position), error.position
    assert f"{path}, {error.position}: " in message
    assert not re.search("[\x00-\x1f\x7f-\x9f]", message), repr(message)


# --- importers ---------------------------------------------------------------------------------


tsv_rows = st.lists(st.tuples(names, names, names, names, times), min_size=1, max_size=6)


@FAST
@given(rows=tsv_rows, header_ok=st.booleans(), crlf=st.booleans())
@example(rows=[("u" * 150, "A" * 400, "T" * 600, "B" * 600, "1700000000")], header_ok=True, crlf=False)  # PG lengths
async def test_listens_tsv_is_all_or_nothing_with_a_clear_error(
        services: Services, tmp_path: Path, rows: list[tuple[str, ...]], header_ok: bool, crlf: bool) -> None:
    path = tmp_path / "listens.tsv"
    end = "\r\n" if crlf else "\n"
    header = "user\tartist\ttrack\talbum\tplayed_at" if header_ok else "user\tartist\tsong"
    path.write_text(end.join([header, *("\t".join(r) for r in rows)]) + end, encoding="utf-8")
    before = await row_counts(services)
    try:
        async with services.session() as session:
            report = await import_listens_tsv(session, path)
    except ImportFileError as exc:
        assert_names_file(exc, path)
        assert await row_counts(services) == before, "a failed import left rows behind"
        return
    after = await row_counts(services)
    assert after["listens"] - before["listens"] == report.counts.get("listens_new", 0)
    assert report.counts["rows"] == len(rows)


csv_rows = st.lists(st.lists(st.one_of(names, times), min_size=0, max_size=6), min_size=1, max_size=6)


@FAST
@given(rows=csv_rows, headed=st.booleans())
async def test_lastfm_csv_is_all_or_nothing_with_a_clear_error(
        services: Services, tmp_path: Path, rows: list[list[str]], headed: bool) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if headed:
        writer.writerow(["uts", "artist", "album", "track"])
    writer.writerows(rows)
    path = tmp_path / "scrobbles.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    async with services.session() as session:
        user_id = (await UserRepository(session).get_or_create_discord(77)).id
    before = await row_counts(services)
    try:
        async with services.session() as session:
            report = await import_listen_file(session, path, "lastfm-csv", user_id=user_id)
    except ImportFileError as exc:
        assert_names_file(exc, path)
        assert await row_counts(services) == before, "a failed import left rows behind"
        return
    assert (await row_counts(services))["listens"] - before["listens"] == report.counts.get("listens_new", 0)


wrong_types = st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=3),
                        st.dictionaries(odd_text, json_scalars, max_size=3))
stream = st.fixed_dictionaries({"ts": st.one_of(times, wrong_types)}, optional={
    "ms_played": counts, "master_metadata_track_name": st.one_of(names, st.none(), wrong_types),
    "master_metadata_album_artist_name": st.one_of(names, st.none(), wrong_types),
    "master_metadata_album_album_name": st.one_of(names, st.none(), wrong_types),
    "spotify_track_uri": st.one_of(st.none(), odd_text, wrong_types, odd_text.map(lambda s: "spotify:track:" + s)),
})
#: raw JSON text nested `depth` levels deep, as the whole document or inside one entry's field
depths = st.integers(min_value=1, max_value=200_000)
deep_docs = st.one_of(depths.map(lambda d: "[" * d + "]" * d),
                      depths.map(lambda d: '[{"ts": "2025-03-01T10:00:00Z", "x": ' + "[" * d + "]" * d + "}]"))
spotify_docs = st.one_of(st.lists(st.one_of(stream, json_like), max_size=6), json_like, deep_docs)


@FAST
@given(document=spotify_docs, mangle=st.sampled_from(["none", "truncate", "bom", "latin1"]))
async def test_spotify_history_is_all_or_nothing_with_a_clear_error(
        services: Services, tmp_path: Path, document: Any, mangle: str) -> None:
    # NaN stays NaN, as Python writes it; a string document is raw JSON text (deep nesting)
    raw = (document if isinstance(document, str) else json.dumps(document, ensure_ascii=False)).encode("utf-8")
    if mangle == "truncate":
        raw = raw[: max(1, len(raw) // 2)]
    elif mangle == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif mangle == "latin1":
        raw = (document if isinstance(document, str) else json.dumps(document, ensure_ascii=False)).encode(
            "latin-1", "replace")
    path = tmp_path / "Streaming_History_Audio_2025.json"
    path.write_bytes(raw)
    async with services.session() as session:
        user_id = (await UserRepository(session).get_or_create_discord(78)).id
    before = await row_counts(services)
    try:
        async with services.session() as session:
            report = await import_listen_file(session, path, "spotify-json", user_id=user_id)
    except ImportFileError as exc:
        assert_names_file(exc, path)
        assert await row_counts(services) == before, "a failed import left rows behind"
        return
    assert (await row_counts(services))["listens"] - before["listens"] == report.counts.get("listens_new", 0)


importer_kinds = st.sampled_from(["listens", "lastfm-csv", "spotify-json"])
prefixes = st.sampled_from([b"", b"user\tartist\ttrack\talbum\tplayed_at\n", b"[", b'[{"ts": "2025-03-01T10:00:00Z", ',
                            b"\xef\xbb\xbf", b"\xff\xfe", b"Band,Album,Song,"])


@FAST
@given(kind=importer_kinds, prefix=prefixes, body=st.binary(max_size=400),
       controls=st.lists(st.sampled_from(["\x00", "\x1b]0;x\x07", "\x1b[2J", "\r", "\x85", "[/x]", "\u202e"]),
                         max_size=4))
@example(kind="spotify-json", prefix=b"", body=b"[" * 100_000, controls=[])
@example(kind="lastfm-csv", prefix=b"", body="Bj\xf6rk,A,T,1700000000\n".encode("latin-1"), controls=[])
async def test_importers_on_random_bytes_refuse_with_a_position_or_import(
        services: Services, tmp_path: Path, kind: str, prefix: bytes, body: bytes, controls: list[str]) -> None:
    """Random bytes, control characters, markup and BOMs behind a plausible start: a clean
    ImportFileError with a position, or a successful import; never another exception, never half."""
    path = tmp_path / f"random.{kind}"
    path.write_bytes(prefix + "".join(controls).encode("utf-8") + body)
    async with services.session() as session:
        user_id = (await UserRepository(session).get_or_create_discord(79)).id
    before = await row_counts(services)
    try:
        async with services.session() as session:
            if kind == "listens":
                report = await import_listens_tsv(session, path)
            else:
                report = await import_listen_file(session, path, kind, user_id=user_id)
    except ImportFileError as exc:
        assert_names_file(exc, path)
        assert await row_counts(services) == before, "a failed import left rows behind"
        return
    assert (await row_counts(services))["listens"] - before["listens"] == report.counts.get("listens_new", 0)


# --- AOTY --------------------------------------------------------------------------------------


def _valid_album(album: AotyAlbum) -> None:
    assert isinstance(album, AotyAlbum)
    assert isinstance(album.title, str) and album.title.strip()
    assert isinstance(album.artist, str) and album.artist.strip()
    for score in (album.critic_score, album.user_score):
        assert score is None or (isinstance(score, float) and not math.isnan(score))
    for n in (album.critic_count, album.user_count):
        assert n is None or (isinstance(n, int) and n >= 0)
    assert all(isinstance(g, str) and g for g in album.genres)


@pytest.mark.skipif(not AOTY_ALBUM.exists(), reason="shared AOTY fixtures not found")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # ~0.2 s a parse
@given(data=st.data())
def test_aoty_parse_album_on_mutated_pages_is_an_album_or_a_parse_error(data: st.DataObject) -> None:
    page = AOTY_ALBUM.read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        start = data.draw(st.integers(min_value=0, max_value=len(page)))
        end = data.draw(st.integers(min_value=start, max_value=min(len(page), start + 4000)))
        insert = data.draw(st.one_of(st.just(""), odd_text, huge_text, st.sampled_from(
            ["<", "</div>", "<script type=\"application/ld+json\">{\"@type\": \"MusicAlbum\", \"name\": ",
             "<!--", "\x00", "]]>", "<h1 class=\"albumTitle\"></h1>", "&#xD800;", "&nbsp;" * 50])))
        page = page[:start] + insert + page[end:]
    try:
        album = parse_album(page, "https://www.albumoftheyear.org/album/1-x.php")
    except AotyParseError as exc:
        assert exc.source == "aoty" and exc.user_message
        return
    _valid_album(album)


@PURE
@given(html=st.one_of(odd_text, huge_text, st.binary(max_size=200), st.builds(
    lambda t, a, extra: f"<html><head><meta property=\"og:title\" content=\"{a} - {t}\"></head><body>{extra}</body>",
    odd_text, odd_text, odd_text)))
def test_aoty_parse_album_on_random_html_is_an_album_or_a_parse_error(html: str | bytes) -> None:
    try:
        album = parse_album(html, "https://www.albumoftheyear.org/album/2-y.php")
    except AotyParseError:
        return
    _valid_album(album)


# --- Last.fm payloads --------------------------------------------------------------------------


track_row = st.fixed_dictionaries({}, optional={
    "artist": st.one_of(json_like, st.fixed_dictionaries({"#text": st.one_of(names, st.integers())},
                                                         optional={"mbid": json_scalars})),
    "album": st.one_of(json_like, st.fixed_dictionaries({"#text": odd_text})),
    "name": st.one_of(names, json_scalars), "mbid": json_scalars, "url": json_scalars, "loved": json_scalars,
    "date": st.one_of(json_like, st.fixed_dictionaries({"uts": st.one_of(
        times, st.integers(min_value=-10**30, max_value=10**30), st.floats())})),
    "@attr": st.one_of(json_like, st.just({"nowplaying": "true"})),
})
recent_payloads = st.one_of(json_like, st.fixed_dictionaries({"recenttracks": st.fixed_dictionaries(
    {"track": st.one_of(st.lists(track_row, max_size=5), track_row, json_like)},
    optional={"@attr": st.one_of(json_like, st.dictionaries(st.sampled_from(["page", "total", "totalPages",
                                                                              "perPage"]), json_scalars))})}))


@PURE
@given(payload=recent_payloads)
@example(payload={"recenttracks": {"track": [{"artist": {"#text": "A"}, "name": "t", "date": {"uts": 10**30}}]}})
@example(payload={"recenttracks": {"track": [{"artist": {"#text": "A"}, "name": "t", "date": {"uts": -10**17}}]}})
@example(payload={"recenttracks": {"track": [{"artist": {"#text": "A"}, "name": 5, "date": {"uts": "1700000000"}}]}})
@example(payload={"recenttracks": {"track": [{"artist": {"#text": 7}, "name": "t", "date": {"uts": "1700000000"}}]}})
def test_lastfm_recent_tracks_parse_to_valid_rows_or_malformed_response(payload: Any) -> None:
    try:
        page = parse_recent_tracks(payload)
    except MalformedResponse:
        return
    for row in page.rows:
        assert isinstance(row.artist, str) and row.artist, row
        assert isinstance(row.track, str) and row.track, row
        assert isinstance(row.played_at, datetime) and row.played_at.tzinfo is not None
    assert all(isinstance(n, int) for n in (page.page, page.total, page.total_pages, page.per_page))


@PURE
@given(payload=json_like, kind=st.sampled_from(list(Kind)))
def test_other_lastfm_parsers_raise_only_malformed_response(payload: Any, kind: Kind) -> None:
    wrapped = [payload, {"user": payload}, {"session": payload}, {"toptags": payload},
               {"similarartists": payload}, {"topartists": payload}, {"topalbums": payload}, {"toptracks": payload}]
    for data in wrapped:
        for parse in (parse_user_info, parse_session, parse_top_tags, parse_similar_artists,
                      lambda d: parse_top(d, kind)):
            try:
                parse(data)
            except MalformedResponse:
                pass


# --- Spotify payloads --------------------------------------------------------------------------


spotify_track = st.fixed_dictionaries({}, optional={
    "id": st.one_of(odd_text, json_scalars), "name": st.one_of(names, json_scalars), "uri": json_scalars,
    "artists": st.one_of(json_like, st.lists(st.fixed_dictionaries({"name": st.one_of(names, json_scalars)}),
                                             max_size=3)),
    "album": st.one_of(json_like, st.fixed_dictionaries({}, optional={"name": json_scalars, "id": json_scalars})),
    "duration_ms": counts, "external_ids": json_like, "external_urls": json_like})
play_item = st.fixed_dictionaries({}, optional={
    "track": st.one_of(spotify_track, json_like),
    "played_at": st.one_of(times, json_scalars, st.just("2016-12-13T20:44:04.589Z")),
    "added_at": st.one_of(times, json_scalars)})
paging = st.one_of(json_like, st.fixed_dictionaries({"items": st.one_of(st.lists(play_item, max_size=4), json_like)},
                                                    optional={"offset": json_scalars, "total": json_scalars,
                                                              "next": json_scalars}))


@PURE
@given(payload=paging, after=st.one_of(st.none(), st.integers(min_value=0, max_value=2**62)))
@example(payload={"items": [{"track": {"id": None, "name": None}, "played_at": "2004-11-09T11:33:20Z"}]},
         after=None)  # found by hypothesis: a null id and name were returned as a play
@example(payload={"items": [{"track": {"id": None, "name": "demo.mp3", "is_local": True},
                             "played_at": "2004-11-09T11:33:20Z"}]}, after=None)  # a local file: skipped
def test_spotify_parsers_give_valid_rows_or_spotify_malformed(payload: Any, after: int | None) -> None:
    try:
        played = parse_recently_played(payload, after)
    except SpotifyMalformed:
        pass
    else:
        for play in played.plays:
            assert isinstance(play.track.id, str) and isinstance(play.track.name, str)
            assert isinstance(play.played_at, datetime) and play.played_at.tzinfo is not None
        assert played.after_ms is None or isinstance(played.after_ms, int)
    try:
        saved = parse_saved_tracks(payload)
    except SpotifyMalformed:
        pass
    else:
        assert isinstance(saved.offset, int) and isinstance(saved.total, int)
    for parse in (parse_track, parse_artist):
        try:
            parse(payload)
        except SpotifyMalformed:
            pass


# --- command options ---------------------------------------------------------------------------


@PURE
@given(text=st.one_of(odd_text, huge_text, st.from_regex(r"-?\d{1,3}:-?\d{1,3}", fullmatch=True),
                      st.sampled_from(["24:00", "23:59", "00:00", "7:5", "٠٧:٣٠", "１８:３０", "18:30\n", " 9:15 "])))
def test_dm_time_is_a_minute_of_the_day_or_a_clear_refusal(text: str) -> None:
    try:
        minute = parse_hhmm(text)
    except InvalidInput as exc:
        assert "HH:MM" in exc.user_message and len(exc.user_message) < 200
        return
    assert 0 <= minute < 24 * 60


@PURE
@given(name=st.one_of(odd_text, huge_text, st.sampled_from(
    ["Europe/Berlin", "europe/berlin", "new york", "../../etc/passwd", "/etc/localtime", "Europe", "UTC",
     "Etc/GMT+5", "\x00", "Europe/Berlin\x00", "posix/Europe/Berlin", "right/UTC", "."]),
    st.text(alphabet=string.ascii_letters + "/_-+.", max_size=30)))
def test_dm_timezone_is_a_known_zone_or_a_clear_refusal(name: str) -> None:
    try:
        tz = zone(name)
    except InvalidInput as exc:
        assert "time zone" in exc.user_message and len(exc.user_message) < 300
        return
    assert tz.key and ".." not in tz.key and not tz.key.startswith("/")
    choices = timezone_choices(name)
    assert len(choices) <= 25 and all(isinstance(c, str) for c in choices)


@PURE
@given(text=st.one_of(odd_text, st.text(max_size=300), st.builds(lambda c: c * 300, st.sampled_from(
    [" ", "\t", "more ", "less metal, ", "90s ", "é", "🎵", "\u200b"]))))
def test_tune_text_never_crashes_the_parser(text: str) -> None:
    """/tune's option is at most 300 characters (Discord enforces the Range)."""
    prefs = parse_feedback(text, ["shoegaze", "metal", "hip-hop"])
    assert prefs is not None


@FAST
@given(day=st.one_of(st.none(), odd_text, st.sampled_from(["Monday", " friday ", "lundi"])),
       time=st.one_of(st.none(), odd_text, st.just("08:30")), tz=st.one_of(st.none(), odd_text, huge_text),
       quiet_start=st.one_of(st.none(), st.sampled_from(["off", "22:00", "7:00", "25:00"]), odd_text),
       quiet_end=st.one_of(st.none(), st.sampled_from(["off", "22:00", "7:00"]), odd_text))
async def test_dm_options_store_valid_settings_or_refuse_and_store_nothing(
        services: Services, day: str | None, time: str | None, tz: str | None, quiet_start: str | None,
        quiet_end: str | None) -> None:
    async with services.session() as session:
        user_id = (await UserRepository(session).get_or_create_discord(79)).id

    async def stored() -> tuple[Any, ...] | None:
        async with services.session() as session:
            row = await session.get(UserSettings, user_id)
            return None if row is None else (row.dm_enabled, row.dm_weekday, row.dm_minute, row.timezone,
                                             row.quiet_start_minute, row.quiet_end_minute)

    before = await stored()
    try:
        schedule = await WeeklySettings(services).configure(Asker(user_id, 79), enabled=True, day=day, time=time,
                                                            timezone=tz, quiet_start=quiet_start, quiet_end=quiet_end)
    except InvalidInput as exc:
        assert exc.user_message and len(exc.user_message) < 300
        assert await stored() == before, "a refused /dm changed the stored settings"
        return
    enabled, weekday, minute, zone_name, q_start, q_end = await stored() or ()
    assert enabled and 0 <= weekday <= 6 and 0 <= minute < 1440 and zone(zone_name).key == zone_name
    assert (q_start is None) == (q_end is None) and (q_start is None or q_start != q_end)
    assert schedule.enabled


@FAST
@given(count=st.integers(min_value=-10**9, max_value=10**9), discovery=st.one_of(st.none(), odd_text, st.floats()),
       period=odd_text, mode=odd_text, length=st.integers(min_value=-10**9, max_value=10**9))
async def test_count_period_mode_and_length_options_refuse_clearly(
        services: Services, count: int, discovery: str | float | None, period: str, mode: str,
        length: int) -> None:
    async with services.session() as session:
        asker = Asker((await UserRepository(session).get_or_create_discord(80)).id, 80)
    before = await row_counts(services)
    recs = RecommendService(services)
    if not 1 <= count <= 25:
        with pytest.raises(InvalidInput, match="between 1 and"):
            await recs.recommend(asker, count=count, discovery=discovery)
    if isinstance(discovery, str) and discovery not in ("familiar", "balanced", "deep cuts"):
        with pytest.raises(SonanceError):
            await recs.recommend(asker, count=5, discovery=discovery)
    if isinstance(discovery, float):  # any float, NaN and infinities included, is clamped into [0, 1]
        level = discovery_level(discovery, 0.3, parse_feedback(""))
        assume(not math.isnan(discovery))
        assert 0.0 <= level <= 1.0
    assume(period not in ("7day", "1month", "3month", "6month", "12month", "overall"))
    with pytest.raises(InvalidInput, match="Unknown period"):
        await StatsService(services).top_artists(Asker(asker.user_id, 80, 1), period)
    playlists = PlaylistService.of(services)
    if mode not in ("for me", "from seed", "blend"):
        with pytest.raises(InvalidInput, match="Mode must be"):
            await playlists.build(asker, mode, length=20)
    if not 5 <= length <= 100:
        with pytest.raises(InvalidInput, match="length between"):
            await playlists.build(asker, "for me", length=length)
    assert await row_counts(services) == before
