"""A small, structured listening world where the right answer is obvious.

Three "scenes" of five artists each. Scene 0 is the most popular (18 fans), then scene 1 (12),
then scene 2 (6). Every fan knows all five artists of their scene, so an item-item model must
return the one artist withheld from a fan's history first, a content model must find it through
the scene's tag, and popularity must rank scene 0 first. Each artist also has a unique tag and an
"artist key" (two artists per key) for per-artist caps.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from core.recommender.interactions import Interactions
from core.recommender.tags import ItemTags

SCENES = 3
PER_SCENE = 5
FANS = (18, 12, 6)


def scene_items(scene: int) -> list[int]:
    """External item ids (100 + index) of a scene."""
    return [100 + scene * PER_SCENE + i for i in range(PER_SCENE)]


def build_world(seed: int = 0) -> tuple[Interactions, ItemTags, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    users: list[int] = []
    items: list[int] = []
    plays: list[float] = []
    user = 1
    for scene, fans in enumerate(FANS):
        for _ in range(fans):
            for item in scene_items(scene):
                users.append(user)
                items.append(item)
                plays.append(float(rng.integers(1, 200)))
            user += 1
    all_items = [i for s in range(SCENES) for i in scene_items(s)]
    artists = {item: f"artist{(item - 100) // 2}" for item in all_items}
    data = Interactions.from_arrays(users, items, plays, item_artists=artists)
    tags = ItemTags.from_sources(data.items, {"lastfm": {
        item: {f"scene{(item - 100) // PER_SCENE}": 10.0, f"unique{item}": 1.0} for item in all_items}})
    links = sp.lil_matrix((data.n_items, data.n_items), dtype=np.float32)
    for scene in range(SCENES):
        idx = data.items.indices(scene_items(scene))
        for a in idx:
            for b in idx:
                if a != b:
                    links[a, b] = 1.0
    return data, tags, sp.csr_matrix(links)


@pytest.fixture(scope="session")
def world() -> tuple[Interactions, ItemTags, sp.csr_matrix]:
    return build_world()


def row_of(data: Interactions, item_ids: list[int], strength: float = 10.0) -> sp.csr_matrix:
    return data.history_row(item_ids, [strength] * len(item_ids))
