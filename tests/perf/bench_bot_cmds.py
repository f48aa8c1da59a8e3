"""`scripts/bench bot`: the real bot under concurrent slash-command load against a local fake Discord.

Kept apart from `tests.perf.bench_bot` so the benchmark logic is callable from tests without typer, and
this module only maps options, prints a table, and emits the one-line JSON that CI scripts parse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from bot.cli_app import console, err_console, fail, run_cli
from core.datasets import find_hetrec_dir
from tests.perf.cli_app import bench_app


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_report(data: dict[str, Any]) -> None:
    """Human-readable figures: one row per run (and per command of the mixed run)."""
    table = Table(title=f"scripts/bench bot ({data['database']}, {data['members']} members, "
                        f"bot {'in its own process' if data['bot'] == 'process' else 'in-process'})")
    for column in ("run", "n", "in flight", "ack p50", "ack p95", "ack max", "final p50", "final p95",
                   "final max", "per s", "errors"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for name in ("recommend", "mixed"):
        run = data.get(name)
        if run is None:
            continue
        rows = [(name, run)] + [(f"  /{c}", fig) for c, fig in (run.get("by_command") or {}).items()]
        for label, fig in rows:
            table.add_row(label, str(fig["interactions"]), str(run["concurrency"]) if fig is run else "",
                          _fmt(fig["ack_ms"]["p50"]), _fmt(fig["ack_ms"]["p95"]), _fmt(fig["ack_ms"]["max"]),
                          _fmt(fig["final_ms"]["p50"]), _fmt(fig["final_ms"]["p95"]), _fmt(fig["final_ms"]["max"]),
                          f"{run['throughput_per_s']}" if fig is run else "", str(fig["errors"]))
    # rich caps a table at the console width (80 when piped); a wider console keeps the figures readable.
    Console(width=max(console.width, 130)).print(table)
    console.print("latencies in ms from INTERACTION_CREATE; "
                  f"setup {data['setup_seconds']} s {data['setup']}; load avg {data['load_avg']} on {data['cpus']} CPUs")
    for name in ("recommend", "mixed"):
        run = data.get(name)
        if run is not None:
            loop = "event-loop" if data["bot"] == "in-process" else "load generator's loop"
            console.print(f"{name}: wall {run['wall_s']} s, bot CPU {run['cpu_s']} s "
                          f"({run['cpu_ms_per_interaction']} ms per interaction), "
                          f"{loop} lag p95 {run['loop_lag_ms']['p95']} ms / max {run['loop_lag_ms']['max']} ms")
            for sample in run["error_samples"]:
                console.print(f"  [red]error[/] {sample}", highlight=False)
    targets = data["targets"]
    verdict = {True: "[green]met[/]", False: "[red]MISSED[/]", None: "n/a"}[targets["met"]]
    console.print(f"targets (/recommend p95): ack ≤ {targets['ack_p95_ms']:.0f} ms, "
                  f"final ≤ {targets['final_p95_ms']:.0f} ms: {verdict}")
    for note in data["notes"]:
        console.print(f"note: {note}")


@bench_app.command("bot")
def bench_bot(
    path: Path | None = typer.Option(None, "--path", help="HetRec folder (default: $SONANCE_DATASET_DIR or the "
                                     "shared copy)."),
    database_url: str | None = typer.Option(None, "--database-url", help="PostgreSQL server URL: a fresh "
                                            "database is created there and dropped (default: temp SQLite)."),
    members: int = typer.Option(200, "--members", help="Discord members with copied HetRec histories."),
    interactions: int = typer.Option(500, "--interactions", help="Measured interactions per run."),
    concurrency: int = typer.Option(50, "--concurrency", help="Interactions in flight at once."),
    warmup: int = typer.Option(10, "--warmup", help="Sequential warm-up interactions, excluded from figures."),
    mixed: bool = typer.Option(True, "--mixed/--no-mixed", help="Also run recommend/whoknows/top/compat/account."),
    tune: bool = typer.Option(False, "--tune/--no-tune", help="Tune hyperparameters when training (slower setup)."),
    profile: Path | None = typer.Option(None, "--profile", help="cProfile the /recommend run; write pstats here "
                                        "and print the top functions to stderr."),
    in_process: bool = typer.Option(False, "--in-process", help="Run the bot in this process's event loop, "
                                    "beside the fake (implied by --profile); default: its own process."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on the last line."),
) -> None:
    """Slash-command latency of the real bot (ack and final answer) with many interactions in flight."""
    from tests.perf import bench_bot as bench

    folder = find_hetrec_dir(path)
    if folder is None:
        raise fail("HetRec dataset not found: pass --path DIR or set SONANCE_DATASET_DIR.")
    config = bench.BotBenchConfig(
        hetrec_dir=folder, database_url=database_url, members=members, interactions=interactions,
        concurrency=concurrency, warmup=warmup, mixed=mixed, tune=tune, profile=profile is not None,
        profile_path=profile, in_process=in_process)
    report = run_cli(lambda: bench.run(config, lambda m: err_console.print(f"[dim]{m}…[/]")))
    data = report.to_json()
    print_report(data)
    rec = report.run("recommend")
    if rec is not None and rec.profile_text:
        err_console.print(rec.profile_text, highlight=False, markup=False)
    if as_json:
        print(json.dumps(data))
