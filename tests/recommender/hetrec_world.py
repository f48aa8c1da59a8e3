"""A tiny HetRec-shaped folder (user_artists, user_friends, tags, artists) for protocol tests.

Four taste scenes of 15 artists; 80 listeners, each playing 8-14 artists, mostly from their own
scene; friends are listeners of the same scene (a ring per scene plus a few cross links), so a
friend community is a taste community, as on HetRec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCENES, PER_SCENE, USERS = 4, 15, 80


def scene_of_user(user: int) -> int:
    return (user - 1) % SCENES


def write_hetrec(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    plays: list[tuple[int, int, int]] = []
    for user in range(1, USERS + 1):
        scene = scene_of_user(user)
        own = 1 + scene * PER_SCENE + rng.choice(PER_SCENE, int(rng.integers(7, 13)), replace=False)
        other = 1 + rng.choice(SCENES * PER_SCENE, 2, replace=False)
        artists = sorted(set(own.tolist()) | set(other.tolist()))
        if user <= 4:  # a few heavy listeners to start communities from (>= 20 artists)
            artists = sorted(set(artists) | set((1 + scene * PER_SCENE + np.arange(PER_SCENE)).tolist())
                             | set((1 + rng.choice(SCENES * PER_SCENE, 8, replace=False)).tolist()))
        plays += [(user, a, int(rng.integers(1, 500))) for a in artists]
    friends: set[tuple[int, int]] = set()
    for scene in range(SCENES):
        members = [u for u in range(1, USERS + 1) if scene_of_user(u) == scene]
        for a, b in zip(members, members[1:] + members[:1], strict=True):
            friends.add((a, b))
    friends |= {(1, 2), (3, 4)}
    (folder / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n" + "".join(f"{u}\t{a}\t{w}\n" for u, a, w in plays))
    (folder / "user_friends.dat").write_text(
        "userID\tfriendID\n" + "".join(f"{a}\t{b}\n{b}\t{a}\n" for a, b in sorted(friends)))
    (folder / "artists.dat").write_text("id\tname\turl\tpictureURL\n" + "".join(
        f"{a}\tArtist {a}\thttp://www.last.fm/music/a{a}\t\n" for a in range(1, SCENES * PER_SCENE + 1)))
    (folder / "tags.dat").write_text("tagID\ttagValue\n" + "".join(f"{t}\tscene {t}\n" for t in range(SCENES)))
    tagged = [(u, a, (a - 1) // PER_SCENE) for u, a, _w in plays if rng.random() < 0.3]
    (folder / "user_taggedartists.dat").write_text("userID\tartistID\ttagID\tday\tmonth\tyear\n" + "".join(
        f"{u}\t{a}\t{t}\t1\t1\t2010\n" for u, a, t in tagged))
    return folder
