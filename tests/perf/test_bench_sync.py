"""`scripts/bench sync --json`: the raw ingest figures and, beside them, a sync through the default
Last.fm limit (5 requests/s x 200 scrobbles a page), against the real fake Last.fm in a child process."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.perf.cli import load_commands


def test_bench_sync_reports_the_rate_under_the_default_lastfm_limit():
    out = CliRunner().invoke(load_commands(), ["sync", "--sqlite-only", "--scrobbles", "3000",
                                               "--limited-scrobbles", "1000", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["sqlite"]["listens"] == 3000  # the existing keys are unchanged
    assert set(result["sqlite"]) == {"listens", "seconds", "listens_per_s"}
    limited = result["lastfm_limited"]
    assert limited["listens"] == 1000
    assert (limited["requests_per_s"], limited["page_size"], limited["bound_listens_per_s"]) == (5.0, 200, 1000)
    # five pages of 200 at one request per 0.2 s: at least 0.8 s, never above the bound
    assert limited["seconds"] >= 0.8
    assert 0 < limited["listens_per_s"] <= 1000
    assert abs(limited["share_of_bound"] - limited["listens_per_s"] / 1000) < 0.002
    # the raw run, without the limit, is far faster than the limited one
    assert result["sqlite"]["listens_per_s"] > 2 * limited["listens_per_s"]


def test_bench_sync_can_skip_the_limited_run():
    out = CliRunner().invoke(load_commands(), ["sync", "--sqlite-only", "--scrobbles", "500",
                                               "--limited-scrobbles", "0", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) == {"sqlite", "parse"}
    assert result["parse"]["scrobbles_per_s"] > 0  # a figure, not a timed test: it is printed, not judged
