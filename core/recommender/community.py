"""The small-community protocol: HetRec tried the way a fresh Discord server would be.

A real server has a few dozen members who are friends, and its database holds only their plays.
So: grow a community by breadth-first search over `user_friends.dat` from a random user with
>= 20 artists, taking users with >= 5 artists until it has `size` members; split each member's
artists 80/20 at random; train on the community's rows only (`base=True` adds every other
user's rows, the base corpus); build the similar-artist graph from users *outside* the community
only (what Last.fm's `artist.getSimilar` knows from everyone else's plays).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.datasets import read_friend_pairs
from core.errors import ConfigError
from core.recommender.evaluation import EvalTask
from core.recommender.hetrec import held_out_pairs, hetrec_tags
from core.recommender.interactions import Interactions
from core.recommender.similar_graph import co_listening_graph
from core.recommender.splits import holdout_split

SEED_MIN_ARTISTS = 20  # the user the search starts from
MEMBER_MIN_ARTISTS = 5  # everyone else taken into the community


def grow_community(artist_counts: Mapping[int, int], friends: set[tuple[int, int]], size: int,
                   seed: int) -> list[int]:
    """User ids of a friend community (BFS order) of `size` members, reproducible from `seed`.

    Neighbours are visited in id order. If the start's friendship component runs out before the
    community is full, the search continues from another random user with >= 20 artists (then from
    any eligible user), so every seed yields a full community when enough users are eligible.
    """
    eligible = {u for u, n in artist_counts.items() if n >= MEMBER_MIN_ARTISTS}
    starts = sorted(u for u, n in artist_counts.items() if n >= SEED_MIN_ARTISTS)
    if len(eligible) < size or not starts:
        raise ConfigError(f"cannot grow a community of {size}: only {len(eligible)} users have "
                          f">= {MEMBER_MIN_ARTISTS} artists")
    adjacency: dict[int, list[int]] = {}
    for a, b in sorted(friends):
        adjacency.setdefault(a, []).append(b)
        adjacency.setdefault(b, []).append(a)
    rng = np.random.default_rng(seed)
    # Restarts (only when a friendship component runs dry) prefer other heavy listeners, then anyone eligible.
    order = [int(u) for u in rng.permutation(starts)]
    order += [int(u) for u in rng.permutation(sorted(eligible - set(starts)))]
    members: list[int] = []
    taken: set[int] = set()
    for start in order:
        if start in taken:
            continue
        queue = deque([start])
        seen = {start}
        while queue and len(members) < size:
            user = queue.popleft()
            if user in eligible and user not in taken:
                members.append(user)
                taken.add(user)
            for friend in sorted(adjacency.get(user, ())):
                if friend not in seen:
                    seen.add(friend)
                    queue.append(friend)
        if len(members) >= size:
            break
    return members


def community_task(data_dir: Path, *, size: int = 30, community_seed: int = 0, split_seed: int = 0,
                   base: bool = False, build_graph: bool = True) -> EvalTask:
    """The evaluation task of one community (see the module docstring).

    The catalogue is every artist of `user_artists.dat`, as in the full protocol, so the graph can
    reach artists nobody in the community plays. With `build_graph=False` the task has no graph (the
    caller supplies one, e.g. from a SIMILAR.tsv).
    """
    data_dir = Path(data_dir)
    if not (data_dir / "user_friends.dat").is_file():
        raise ConfigError(f"{data_dir} has no user_friends.dat; the community protocol needs it.")
    data = Interactions.from_hetrec(data_dir / "user_artists.dat")
    counts = np.diff(data.matrix.indptr)
    members = grow_community({int(data.users.external(u)): int(counts[u]) for u in range(data.n_users)},
                             read_friend_pairs(data_dir / "user_friends.dat"), size, community_seed)
    member_rows = np.sort(data.users.indices(members))
    inside = np.zeros(data.n_users, dtype=bool)
    inside[member_rows] = True
    graph = co_listening_graph(data.matrix[np.flatnonzero(~inside)]) if build_graph else None
    community = data.with_matrix(sp.csr_matrix(sp.diags(inside.astype(np.float32)) @ data.matrix))
    split = holdout_split(community, min_items=MEMBER_MIN_ARTISTS, seed=split_seed)
    train = split.train.matrix
    if base:
        train = sp.csr_matrix(train + sp.diags((~inside).astype(np.float32)) @ data.matrix, dtype=np.float32)
        users = data.users
        matrix = train
    else:
        users = type(data.users)(data.users.ids[member_rows])
        matrix = train[member_rows]
    test = split.test if base else {int(np.searchsorted(member_rows, u)): held for u, held in split.test.items()}
    train_data = Interactions(sp.csr_matrix(matrix, dtype=np.float32), users, data.items, data.item_artists)
    tags = hetrec_tags(data.items, data_dir / "user_taggedartists.dat", data_dir / "tags.dat",
                       exclude=held_out_pairs(data.users, data.items, split.test))
    return EvalTask(train_data, test, tags, graph)
