"""`scripts/bench soak`: the real bot under a steady command mix for N minutes; is anything growing?"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from bot.cli_app import console, err_console, fail, run_cli
from tests.perf.cli_app import bench_app


def _fmt(value: object) -> str:
    return "-" if value is None else str(value)


@bench_app.command("soak")
def bench_soak(
    minutes: float = typer.Option(3.0, "--minutes", min=0.1, max=240.0, help="How long to drive load."),
    rate: float = typer.Option(5.0, "--rate", min=0.1, max=200.0, help="Interactions started per second."),
    max_in_flight: int = typer.Option(32, "--max-in-flight", min=1, max=500,
                                      help="At most this many unanswered interactions (slots beyond are skipped)."),
    interval: float = typer.Option(10.0, "--interval", min=1.0, max=300.0, help="Seconds between samples."),
    warmup: float = typer.Option(30.0, "--warmup", min=0.0, help="Seconds of load excluded from the verdict."),
    members: int = typer.Option(40, "--members", min=2, max=5000, help="Synthetic members on top of the test world."),
    sync_every: float = typer.Option(30.0, "--sync-every", min=2.0, help="Seconds between Last.fm sync rounds."),
    database_url: str | None = typer.Option(None, "--database-url",
                                            help="PostgreSQL server URL: a fresh database is created and dropped "
                                                 "(default: a temporary SQLite file)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on the last line."),
) -> None:
    """Run the real bot against the local fake Discord and Last.fm for N minutes; report RSS, tasks,
    fds, sockets and DB connections every ~10 s and a verdict on flat memory and no growth."""
    from tests.perf import soak

    if warmup >= minutes * 60.0:
        raise fail("--warmup must be shorter than the run")
    config = soak.SoakConfig(minutes=minutes, rate=rate, max_in_flight=max_in_flight, interval_s=interval,
                             warmup_s=warmup, extra_members=members, sync_every_s=sync_every,
                             database_url=database_url)

    def progress(message: str) -> None:
        err_console.print(f"[dim]{message}[/]", highlight=False)

    def on_sample(s: soak.ResourceSample) -> None:
        err_console.print(f"[dim]t={s.t_s:>6}s {s.phase:<8} rss={s.rss_mib} MiB tasks={s.tasks} "
                          f"(bot {s.bot_tasks}, views {s.view_timers}) fds={s.fds} sockets={s.sockets} "
                          f"db={s.db_checked_out} ips={s.ips} ack_p95={_fmt(s.ack_p95_ms)} ms[/]", highlight=False)

    report = run_cli(lambda: soak.run(config, progress, on_sample))

    table = Table(title=f"soak on {report.database}: {report.duration_s:g} s, {report.interactions} interactions")
    for col in ("t (s)", "phase", "RSS MiB", "tasks", "bot tasks", "view timers", "in flight", "fds",
                "sockets", "DB out", "ints/s", "ack p95 ms"):
        table.add_column(col, justify="right")
    for s in report.samples:
        table.add_row(str(s.t_s), s.phase, str(s.rss_mib), str(s.tasks), str(s.bot_tasks), str(s.view_timers),
                      str(s.in_flight), str(s.fds), str(s.sockets), str(s.db_checked_out), str(s.ips),
                      _fmt(s.ack_p95_ms))
    console.print(table, width=160)
    console.print(f"ack ms {report.ack_ms}  final ms {report.final_ms}  mean {report.ips_mean}/s")
    console.print(f"errors {report.errors}  cooldowns {report.cooldowns}  log errors {report.log_errors}  "
                  f"syncs {report.syncs.get('rounds')} rounds, {report.syncs.get('inserted')} new listens, "
                  f"{report.syncs.get('errors')} failed")
    for line in report.error_samples:
        console.print(f"  [red]{line}[/]", highlight=False)
    v = report.verdict
    for name, check in v.get("checks", {}).items():
        console.print(f"  {name}: {check}", highlight=False)
    flat = v.get("ok")
    if flat is None:
        console.print(f"[yellow]verdict: inconclusive ({v.get('reason')})[/]")
    elif flat and report.errors == 0:
        console.print("[green]verdict: flat memory, no growth of open connections or tasks, no errors[/]")
    else:
        why = "growth" if not flat else "errors"
        console.print(f"[red]verdict: FAIL ({why}; see the checks above)[/]")
    if as_json:
        print(json.dumps(report.to_json(), separators=(",", ":")))
    if flat is False or report.errors:
        raise typer.Exit(1)
