"""`sonance eval compat` and `sonance bench compat`: does the compatibility score mean something, and
is it fast enough for a guild of thousands?"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from bot.cli_app import bench_app, console, err_console, eval_app, run_cli


@eval_app.command("compat")
def eval_compat(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder with HetRec's .dat files "
                                         "(default: $SONANCE_DATASET_DIR or the shared copy)."),
    as_json: bool = typer.Option(False, "--json", help="Print only one JSON line (machine-readable)."),
    half_seed: int | None = typer.Option(None, "--half-seed", help="First reduce every user to a random "
                                         "half of their artists (thin histories), with this seed."),
) -> None:
    """Friend-pair AUC over all HetRec user pairs: Sonance vs shared÷own and cosine of log plays."""
    from core.compat.evaluation import evaluate_friend_auc

    def body() -> None:
        if not as_json:
            err_console.print("scoring every pair of HetRec users…", style="dim")
        result = evaluate_friend_auc(data_dir, half_seed=half_seed)
        if not as_json:
            table = Table(title=f"Friend-pair AUC ({result.pairs:,} pairs, {result.friend_pairs:,} friends"
                                f"{'' if half_seed is None else f', half histories seed {half_seed}'})")
            table.add_column("formula")
            table.add_column("all pairs", justify="right")
            for title in result.split_auc:
                table.add_column(title, justify="right")
            for name, value in result.auc.items():
                table.add_row(name, f"{value:.4f}", *(f"{s[name]:.4f}" for s in result.split_auc.values()))
            console.print(table)
            console.print(f"[dim]{result.seconds:.1f} s. Parameters were chosen on half A's pairs only.[/]")
        typer.echo(json.dumps(result.to_json_dict()))

    run_cli(body)


@bench_app.command("compat")
def bench_compat(
    as_json: bool = typer.Option(False, "--json", help="Print only one JSON line."),
    sizes: str = typer.Option("500,5000,20000", help="Comma-separated guild sizes."),
    repeat: int = typer.Option(3, min=1, help="Repetitions per timing (median reported)."),
    seed: int = typer.Option(0, help="Seed of the synthetic profiles and of the guild samples."),
    overlap_samples: int = typer.Option(3, min=0, help="Guilds per large size scored exhaustively too, "
                                        "to report the top-10 overlap (0: skip)."),
) -> None:
    """Pair-score latency and guild-leaderboard time on synthetic HetRec-shaped profiles, and how
    much of a large guild's top 10 agrees with exhaustive scoring."""
    from core.compat.bench import run_bench
    from core.errors import InvalidInput

    def body() -> None:
        try:
            guilds = tuple(sorted({int(s) for s in sizes.split(",") if s.strip()}))
        except ValueError:
            raise InvalidInput(f"--sizes must be whole numbers separated by commas, not {sizes!r}.") from None
        if not guilds or min(guilds) < 2:
            raise InvalidInput("--sizes needs guild sizes of at least 2.")
        result = run_bench(guilds, repeat=repeat, seed=seed, overlap_samples=overlap_samples,
                           progress=None if as_json else lambda m: err_console.print(m, style="dim"))
        if not as_json:
            table = Table(title="Compatibility benchmark (synthetic HetRec-shaped profiles)")
            table.add_column("guild members", justify="right")
            table.add_column("leaderboard (top pairs + centre)", justify="right")
            table.add_column("one member's matches", justify="right")
            for size in guilds:
                table.add_row(f"{size:,}", f"{result.leaderboard_seconds[size]:.3f} s",
                              f"{result.matches_ms[size]:.1f} ms")
            console.print(table)
            for size, share in result.top_pairs_overlap.items():
                console.print(f"guild of {size:,}: top-10 overlap with exhaustive scoring {share:.1%} "
                              f"(worst {result.top_pairs_overlap_min[size]:.0%} of {result.overlap_samples})")
            console.print(f"pair score {result.pair_score_ms:.2f} ms; with full breakdown "
                          f"{result.compare_ms:.2f} ms; building the space "
                          f"{next(iter(result.build_seconds.values())):.1f} s")
        typer.echo(json.dumps(result.to_json_dict()))

    run_cli(body)
