"""`sonance eval recommend` and `sonance bench recommend`: offline quality and serving latency.

Both print human-readable tables by default; with --json the last stdout line is one JSON object
(progress goes to stderr), so scripts and CI can parse results.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from bot.cli_app import bench_app, console, err_console, eval_app, run_async, run_cli
from core.config import load_settings
from core.errors import InvalidInput

if TYPE_CHECKING:
    from core.recommender.evaluation import EvalTask


def _say(quiet: bool):
    def say(message: str) -> None:
        if not quiet:
            err_console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)
    return say


@eval_app.command("recommend")
def eval_recommend(
    train: Path | None = typer.Option(None, "--train", help="TRAIN file with userID artistID weight columns."),
    test: Path | None = typer.Option(None, "--test", help="TEST file with the same columns."),
    tags: Path | None = typer.Option(None, "--tags", help="user_taggedartists.dat (artist-level counts only)."),
    artists: Path | None = typer.Option(None, "--artists", help="artists.dat: widens the catalogue."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="HetRec folder: split it per user 80/20."),
    split_seed: list[int] = typer.Option([0], "--split-seed", help="Split seed(s); repeat for several."),
    k: int = typer.Option(10, "--k", min=1, help="List length for the @k metrics."),
    cold_start: int = typer.Option(3, "--cold-start", min=0, help="Also score users cut to N items (0: off)."),
    no_tune: bool = typer.Option(False, "--no-tune", help="Skip validation tuning (use default weights)."),
    similar: Path | None = typer.Option(None, "--similar", help="SIMILAR.tsv: artistID similarArtistID match "
                                        "(Last.fm artist.getSimilar); adds the SimilarGraph peer."),
    community_size: int | None = typer.Option(None, "--community-size", min=2,
                                              help="Small-community protocol: members per community."),
    community_seed: list[int] = typer.Option([0], "--community-seed", help="Community seed(s); repeat for several."),
    base: bool = typer.Option(False, "--base", help="Community protocol: also train on every other user's rows."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on the last line."),
) -> None:
    """Train on TRAIN only, rank every unseen artist for each TEST user, report NDCG/recall/HR@k."""

    def body() -> None:
        from core.recommender.evaluation import run_evaluation

        say = _say(False)
        runs = _eval_runs(train, test, tags, artists, data_dir, split_seed, similar, community_size,
                          community_seed, base)
        per_seed: list[dict[str, Any]] = []
        labels: list[str | int | None] = []
        for label, seed, _group, make_task in runs:
            task = make_task()
            say(f"{'split seed ' + str(label) if isinstance(label, int) else label}: {task.train.n_users} users, "
                f"{task.train.n_items} items, {len(task.test)} test users")
            per_seed.append(run_evaluation(task, k=k, seed=seed or 0, cold_start=cold_start or None,
                                           tune=not no_tune, progress=say))
            labels.append(label)
        result = per_seed[0] if len(per_seed) == 1 else _average(per_seed, labels, k)
        if len(per_seed) > 1:
            unit = "community" if community_size is not None else "split seed"
            result["uncertainty"] = _uncertainty(per_seed, [group for _l, _s, group, _f in runs], unit, k)
        if not as_json:
            _print_table(result, k)
        console.print(json.dumps(result, sort_keys=False), highlight=False, soft_wrap=True)

    run_cli(body)


def _eval_runs(train: Path | None, test: Path | None, tags: Path | None, artists: Path | None,
               data_dir: Path | None, split_seeds: list[int], similar: Path | None, community_size: int | None,
               community_seeds: list[int], base: bool) -> list[tuple[str | int | None, int | None, int | None, Any]]:
    """(label, split seed, independent group, task factory) per run; tasks are built lazily, one at a
    time, to bound memory. The group is the community seed in the community protocol (its split
    seeds share members), else the split seed."""
    from core.datasets import locate_hetrec, read_artist_names
    from core.recommender.community import community_task
    from core.recommender.hetrec import task_from_dir, task_from_files
    from core.recommender.similar_graph import graph_matrix, read_similar_tsv

    def with_graph(task: EvalTask, known: Path | None) -> EvalTask:
        if similar is None:
            return task
        ids = set(read_artist_names(known)) if known is not None and known.is_file() else None
        return replace(task, graph=graph_matrix(read_similar_tsv(similar, ids), task.train.items))

    if train is not None or test is not None:
        if train is None or test is None:
            raise InvalidInput("Pass both --train and --test (or --data-dir).")
        if community_size is not None:
            raise InvalidInput("--community-size needs --data-dir, not --train/--test.")
        return [(None, None, None, lambda: with_graph(task_from_files(train, test, tags, artists), artists))]
    folder = locate_hetrec(load_settings(), data_dir)
    if folder is None:
        raise InvalidInput("No HetRec folder found: pass --data-dir DIR (or --train/--test files).")
    if similar is not None:  # validate the file before any long computation starts
        read_similar_tsv(similar, set(read_artist_names(folder / "artists.dat")))
    if base and community_size is None:
        raise InvalidInput("--base only applies to the community protocol (--community-size).")
    if community_size is None:
        return [(seed, seed, seed, lambda seed=seed: with_graph(task_from_dir(folder, seed), folder / "artists.dat"))
                for seed in split_seeds]

    def community(c: int, s: int) -> EvalTask:
        task = community_task(folder, size=community_size, community_seed=c, split_seed=s, base=base,
                              build_graph=similar is None)
        return with_graph(task, folder / "artists.dat")

    return [(f"community {c} split {s}", s, c, lambda c=c, s=s: community(c, s))
            for c in community_seeds for s in split_seeds]


@eval_app.command("tune")
def eval_tune(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="HetRec folder (default: the shared copy)."),
    split_seed: list[int] = typer.Option([0, 1, 2], "--split-seed", help="Selection split seed(s)."),
    community_size: int | None = typer.Option(None, "--community-size", min=2,
                                              help="Tune for the small-community protocol instead."),
    # 32 tuning communities, not 8: components.POOLED_WEIGHTS says why.
    community_seed: list[int] = typer.Option(list(range(100, 132)), "--community-seed",
                                             help="Community seed(s) used for selection."),
    base: bool = typer.Option(False, "--base", help="Community protocol with the base corpus."),
    max_users: int = typer.Option(600, "--max-users", min=10, help="Validation users scored per seed."),
    grid: bool = typer.Option(True, "--grid/--no-grid", help="Search the hyper-parameter grid (--no-grid: "
                              "only the community blend or graph weight)."),
    k: int = typer.Option(10, "--k", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on the last line."),
) -> None:
    """Re-derive the shipped hyper-parameters on VALIDATION data carved from each split's training rows.

    The TEST part of every split is discarded before anything is fitted; the JSON lists every grid
    point's validation NDCG per seed and the best point per component; with --community-size (no
    --base) also "blend": the small plan's pooled blend weights (`components.POOLED_WEIGHTS`); with
    --community-size and --base, "graph_weight" (`components.SEARCHED_GRAPH_WEIGHTS`).
    """

    def body() -> None:
        from core.datasets import locate_hetrec
        from core.recommender.community import community_task
        from core.recommender.hetrec import task_from_dir
        from core.recommender.tuning import (
            default_grid,
            tune_blend,
            tune_graph_weight,
            tune_grid,
            validation_task,
        )

        say = _say(False)
        folder = locate_hetrec(load_settings(), data_dir)
        if folder is None:
            raise InvalidInput("No HetRec folder found: pass --data-dir DIR.")
        tagged, names = folder / "user_taggedartists.dat", folder / "tags.dat"

        def tasks():
            for seed in split_seed:
                if community_size is None:
                    yield seed, validation_task(task_from_dir(folder, seed), seed, tagged, names, max_users)
                    continue
                for c in community_seed:
                    task = community_task(folder, size=community_size, community_seed=c, split_seed=seed, base=base)
                    yield seed, validation_task(task, seed, tagged, names, max_users)

        chosen = list(tasks()) if community_size is not None else tasks()
        if not grid and community_size is None:
            raise InvalidInput("--no-grid leaves nothing to tune without --community-size.")
        result = tune_grid(chosen, default_grid(), k=k, progress=say) if grid else {}
        if community_size is not None and not base:
            # A fresh community's blend weights are searched once over all these communities pooled.
            result["blend"] = tune_blend(chosen, k=k, progress=say)
        if community_size is not None and base:
            result["graph_weight"] = tune_graph_weight(chosen, k=k, progress=say)
        if not as_json:
            for name, row in result.get("best", {}).items():
                err_console.print(f"[bold]{name}[/]: {row['params']} validation ndcg@{k} {row['validation_ndcg']}")
            for section in ("blend", "graph_weight"):
                for key, row in result.get(section, {}).items():
                    if isinstance(row, dict):
                        err_console.print(f"[bold]{section} {key}[/]: {row}")
        console.print(json.dumps(result), highlight=False, soft_wrap=True)

    run_cli(body)


@eval_app.command("similar-graph")
def eval_similar_graph(
    out: Path = typer.Option(..., "--out", help="Where to write the SIMILAR.tsv."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="HetRec folder (default: the shared copy)."),
    community_size: int | None = typer.Option(None, "--community-size", min=2,
                                              help="Leave this community's listeners out of the graph."),
    community_seed: int = typer.Option(0, "--community-seed"),
    neighbours: int = typer.Option(100, "--neighbours", min=1, max=100),
) -> None:
    """Write a similar-artist graph built from co-listening (cosine of log1p plays, top N, best match 1)
    as a SIMILAR.tsv, the stand-in for Last.fm's artist.getSimilar that `eval recommend --similar` reads."""

    def body() -> None:
        import numpy as np

        from core.datasets import locate_hetrec, read_friend_pairs
        from core.recommender.community import grow_community
        from core.recommender.interactions import Interactions
        from core.recommender.similar_graph import co_listening_graph, matrix_to_map, write_similar_tsv

        folder = locate_hetrec(load_settings(), data_dir)
        if folder is None:
            raise InvalidInput("No HetRec folder found: pass --data-dir DIR.")
        data = Interactions.from_hetrec(folder / "user_artists.dat")
        keep = np.ones(data.n_users, dtype=bool)
        if community_size is not None:
            counts = np.diff(data.matrix.indptr)
            members = grow_community({int(data.users.external(u)): int(counts[u]) for u in range(data.n_users)},
                                     read_friend_pairs(folder / "user_friends.dat"), community_size, community_seed)
            keep[data.users.indices(members)] = False
        graph = matrix_to_map(co_listening_graph(data.matrix[np.flatnonzero(keep)], neighbours), data.items)
        write_similar_tsv(out, graph)
        err_console.print(f"wrote {sum(len(v) for v in graph.values()):,} links for {len(graph):,} artists to {out}")

    run_cli(body)


def _average(runs: list[dict[str, Any]], seeds: list[Any], k: int) -> dict[str, Any]:
    """Mean of every numeric figure over seeds, plus each seed's NDCG@k under "per_seed"."""
    out: dict[str, Any] = {}
    for name, metrics in runs[0].items():
        out[name] = {key: round(sum(float(r[name][key]) for r in runs) / len(runs), 4)
                     for key, value in metrics.items() if isinstance(value, int | float)}
    out["per_seed"] = {
        str(seed): {name: (m[f"ndcg@{k}"] if f"ndcg@{k}" in m else {n: v for n, v in m.items() if n != "users"})
                    for name, m in run.items()}
        for seed, run in zip(seeds, runs, strict=True)}
    return out


def _uncertainty(runs: list[dict[str, Any]], groups: list[Any], unit: str, k: int) -> dict[str, Any]:
    """NDCG@k of every model as a mean with a 95 % interval over independent groups, and the hybrid's
    paired gap to every other model (same users, same splits), under "uncertainty".

    Communities differ far more than the models do (on the fresh protocol the graph-only ranker
    scores 0.09 to 0.41 from one 30-member community to the next), so a mean over eight of them is
    only meaningful with its interval, and "the hybrid beats X" only with the paired gap's.
    """
    from core.recommender.metrics import group_interval

    key = f"ndcg@{k}"
    models = [name for name, m in runs[0].items() if isinstance(m, dict) and key in m]
    out: dict[str, Any] = {"unit": unit, "groups": len(set(groups)), key: {}, "hybrid_minus": {}}
    for name in models:
        out[key][name] = group_interval([float(r[name][key]) for r in runs], groups)
        if name != "hybrid" and "hybrid" in models:
            out["hybrid_minus"][name] = group_interval([float(r["hybrid"][key]) - float(r[name][key]) for r in runs],
                                                       groups)
    return out


def _print_table(result: dict[str, Any], k: int) -> None:
    from rich.table import Table

    table = Table(title=f"Recommendation quality (@{k})")
    columns = [f"ndcg@{k}", f"recall@{k}", f"hr@{k}", "coverage", "mean_popularity", "train_seconds", "peak_rss_mb"]
    table.add_column("model")
    for column in columns:
        table.add_column(column, justify="right")
    for name, metrics in result.items():
        if isinstance(metrics, dict) and isinstance(metrics.get(f"ndcg@{k}"), int | float):
            table.add_row(name, *(f"{metrics.get(c, float('nan')):.4g}" for c in columns))
    err_console.print(table)
    spread = result.get("uncertainty")
    if spread:
        plural = {"community": "communities", "split seed": "split seeds"}.get(spread["unit"], spread["unit"])
        err_console.print(f"ndcg@{k}, 95 % interval over {spread['groups']} {plural}:")
        for name, interval in spread[f"ndcg@{k}"].items():
            err_console.print(f"  {name}: {interval['mean']:.4f} [{interval['ci95'][0]:.4f}, {interval['ci95'][1]:.4f}]")
        for name, interval in spread["hybrid_minus"].items():
            err_console.print(f"  hybrid - {name}: {interval['mean']:+.4f} "
                              f"[{interval['ci95'][0]:+.4f}, {interval['ci95'][1]:+.4f}]")


@bench_app.command("recommend")
def bench_recommend(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="HetRec folder (default: the shared copy)."),
    users: int = typer.Option(300, "--users", min=10, help="Requests timed per model."),
    synthetic_users: int = typer.Option(100_000, "--synthetic-users", min=100),
    synthetic_items: int = typer.Option(300_000, "--synthetic-items", min=100),
    skip_synthetic: bool = typer.Option(False, "--skip-synthetic", help="Only benchmark HetRec."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on the last line."),
) -> None:
    """Per-user latency (p50/p95) of recommend() with evidence, on HetRec and a synthetic catalogue.

    HetRec: the full tuned hybrid. Synthetic (music-shaped, default 100k users x 300k items): the
    model `sonance train` builds at that size (`components.plan_for`, tuned), trained from the
    columns the database would return; `synthetic` times the engine alone and
    `synthetic.service` whole requests through `RecommendService` on a scratch SQLite database
    (history read, scoring worker round-trip, evidence, names, recorded as shown).
    """

    def body() -> None:
        from core.datasets import locate_hetrec
        from core.recommender.bench import latency_ms, sample_rows
        from core.recommender.engine import RecommenderEngine
        from core.recommender.evaluation import peak_rss_mb
        from core.recommender.hetrec import artist_names, hetrec_tags
        from core.recommender.interactions import Interactions

        say = _say(False)
        result: dict[str, Any] = {}
        folder = locate_hetrec(load_settings(), data_dir)
        if folder is None:
            say("HetRec not found; skipping the HetRec benchmark")
        else:
            data = Interactions.from_hetrec(folder / "user_artists.dat")
            tag_data = hetrec_tags(data.items, folder / "user_taggedartists.dat", folder / "tags.dat")
            started = time.perf_counter()
            engine = RecommenderEngine.train(data, names=artist_names(folder), tags=tag_data, progress=say)
            train_seconds = time.perf_counter() - started
            say("timing HetRec requests")
            result["hetrec"] = {"model": "hybrid (tuned, all components)", "items": data.n_items,
                                "users_in_model": data.n_users, "train_seconds": round(train_seconds, 2),
                                **latency_ms(engine, sample_rows(data, users))}
        if not skip_synthetic:
            result["synthetic"] = _synthetic_serving(synthetic_users, synthetic_items, users, say)
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        result["threads"] = os.environ.get("OPENBLAS_NUM_THREADS", "default")
        if not as_json:
            for name, figures in result.items():
                if isinstance(figures, dict):
                    err_console.print(f"[bold]{name}[/]: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms "
                                      f"({figures['model']})")
            if "synthetic" in result:
                service = result["synthetic"]["service"]
                err_console.print(f"[bold]synthetic through the service[/]: p50 {service['p50_ms']} ms, "
                                  f"p95 {service['p95_ms']} ms")
        console.print(json.dumps(result), highlight=False, soft_wrap=True)

    run_cli(body)


def _synthetic_serving(n_users: int, n_items: int, requests: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Train what production trains at this size, time the engine alone and the service."""
    from datetime import UTC, datetime

    from core.domain import Kind
    from core.recommender.bench import latency_ms, sample_rows
    from core.recommender.serving_bench import service_benchmark
    from core.recommender.training import PlayColumns, interactions_from_columns

    engine, plays, figures = run_async(lambda: service_benchmark(n_users, n_items, requests=requests, say=say))
    training = figures["training"]
    say("timing synthetic requests on the engine alone")
    columns = PlayColumns(plays.user_ids, plays.item_ids, plays.plays.astype(float), plays.last_played_s,
                          plays.item_ids)
    data = interactions_from_columns(columns, now=datetime.now(UTC), kind=Kind.ARTIST, item_vocabulary=engine.items)
    plan = training["plan"]
    return {"model": f"hybrid as `sonance train` builds it at this size (plan {plan['name']!r}, tuned)",
            "users_in_model": engine.n_users, "items": len(engine.items), "interactions": training["pairs"],
            "train_seconds": training["train_wall_s"], "plan": plan,
            "train_stages": training["stages"], "train_peak_rss_mb": training["train_peak_rss_mb"],
            **latency_ms(engine, sample_rows(data, requests)), "service": figures["service"]}


@bench_app.command("train")
def bench_train(
    users: int = typer.Option(100_000, "--users", min=100, help="Synthetic listeners."),
    items: int = typer.Option(300_000, "--items", min=100, help="Synthetic artists."),
    seed: int = typer.Option(0, "--seed"),
    no_tune: bool = typer.Option(False, "--no-tune", help="Skip weight tuning, as `sonance train --no-tune`."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Where the artifact goes (default: a temporary "
                                        "folder, deleted afterwards)."),
    stage_peaks: bool = typer.Option(True, "--stage-peaks/--no-stage-peaks",
                                     help="Peak RSS per stage (resets the kernel's mark at each stage; off: the "
                                          "peak so far, and /usr/bin/time -v sees the whole run's)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on the last line."),
) -> None:
    """Train exactly what `sonance train` builds, on synthetic music-shaped plays of the given size.

    Power-law artist popularity, log-normal history lengths, listeners favouring a few genres,
    genre and generic tags per artist. Prints wall and CPU seconds and peak RSS per stage
    (generate, prepare, tags, each component's fit, the blend-weight search, save) as JSON.
    """

    def body() -> None:
        import tempfile

        from core.recommender.bench import train_benchmark

        say = _say(False)
        with tempfile.TemporaryDirectory(prefix="sonance-bench-train-") as scratch:
            folder = out_dir or Path(scratch)
            _engine, _path, figures = train_benchmark(users, items, folder, seed=seed, tune=not no_tune, say=say,
                                                      stage_peaks=stage_peaks)
        figures["threads"] = os.environ.get("OPENBLAS_NUM_THREADS", "default")
        if not as_json:
            for stage, figure in figures["stages"].items():
                err_console.print(f"{stage:>22}: {figure['wall_s']:8.2f} s wall {figure['cpu_s']:8.2f} s CPU "
                                  f"{figure['peak_rss_mb']:8.1f} MiB peak", highlight=False)
            err_console.print(f"[bold]train[/]: {figures['train_wall_s']} s, peak {figures['train_peak_rss_mb']} MiB")
        console.print(json.dumps(figures), highlight=False, soft_wrap=True)

    run_cli(body)
