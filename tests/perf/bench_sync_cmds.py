"""`scripts/bench sync`: listens per second from a local fake Last.fm into SQLite and PostgreSQL,
and the rate a real sync reaches under the default Last.fm limit (the logic is in `bench_sync`)."""

from __future__ import annotations

import json

import typer

from bot.cli_app import console, run_cli
from tests.perf.cli_app import bench_app


@bench_app.command("sync")
def bench_sync(
    scrobbles: int = typer.Option(1_000_000, help="Size of the synthetic Last.fm history."),
    postgres_url: str | None = typer.Option(None, help="PostgreSQL server to measure too "
                                            "(default: $SONANCE_BENCH_POSTGRES_URL or 127.0.0.1:5432)."),
    sqlite_only: bool = typer.Option(False, help="Skip PostgreSQL."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on the last line."),
    limited_scrobbles: int = typer.Option(10_000, min=0, help="History size of a second sync through the "
                                          "default Last.fm rate limit (0: skip; ~1 s per 1,000 listens)."),
) -> None:
    """Listens ingested per second from a local fake Last.fm into SQLite and PostgreSQL (no rate
    limit), and the rate a real sync reaches under the default Last.fm limit."""
    from tests.perf import bench_sync as bench

    url = None if sqlite_only else (postgres_url or bench.default_postgres_url())
    results = run_cli(lambda: bench.run(scrobbles, url))
    for r in results:
        console.print(f"{r.database:>10}: {r.listens:,} listens in {r.seconds:.1f} s = {r.per_second:,.0f} listens/s")
    parse_per_s = bench.parse_rate()
    console.print(f"     parse: {parse_per_s:,.0f} scrobbles/s (JSON decode + page parse, no I/O)")
    limited = run_cli(lambda: bench.run_limited(limited_scrobbles)) if limited_scrobbles else None
    if limited is not None:
        console.print(f"under the Last.fm limit ({limited.requests_per_s:g} requests/s x {limited.page_size} a page): "
                      f"{limited.run.listens:,} listens in {limited.run.seconds:.1f} s = "
                      f"{limited.run.per_second:,.0f} listens/s, {limited.run.per_second / limited.bound_per_s:.0%} "
                      f"of the {limited.bound_per_s:,.0f} listens/s bound")
    if as_json:
        out: dict[str, object] = {r.database: {"listens": r.listens, "seconds": round(r.seconds, 2),
                                               "listens_per_s": round(r.per_second)} for r in results}
        out["parse"] = {"scrobbles_per_s": round(parse_per_s)}
        if limited is not None:
            out["lastfm_limited"] = limited.to_json_dict()
        print(json.dumps(out))
