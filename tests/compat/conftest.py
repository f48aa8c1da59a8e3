"""Small deterministic taste worlds for the compatibility tests (no database, no dataset)."""

from __future__ import annotations

import numpy as np
import pytest

from core.compat import CompatParams, ListenRow, TasteSpace, build_taste_space

SCENES = ("metal", "jazz", "hiphop")


def world_rows(n_users: int = 60, seed: int = 7) -> tuple[list[ListenRow], dict[str, dict[str, int]]]:
    """Users in three scenes (30 artists each) plus 5 mainstream artists everyone may play."""
    rng = np.random.default_rng(seed)
    rows: list[ListenRow] = []
    for u in range(n_users):
        scene = SCENES[u % 3]
        picks = rng.choice(30, size=10, replace=False)
        for a in picks:
            rows.append(ListenRow(f"u{u}", f"{scene}-{a}", float(rng.integers(5, 500))))
        for a in rng.choice(5, size=2, replace=False):
            rows.append(ListenRow(f"u{u}", f"pop-{a}", float(rng.integers(5, 500))))
    tags: dict[str, dict[str, int]] = {}
    for scene in SCENES:
        for a in range(30):
            tags[f"{scene}-{a}"] = {scene: 10, f"{scene}-sub{a % 3}": 4}
    for a in range(5):
        tags[f"pop-{a}"] = {"pop": 20}
    return rows, tags


@pytest.fixture(scope="session")
def world() -> TasteSpace:
    rows, tags = world_rows()
    return build_taste_space(rows, tags, params=CompatParams())
