"""IALS specifics beyond the model contract (tests/recommender/test_models_contract.py)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.recommender.interactions import Interactions
from core.recommender.models import IALS
from core.recommender.models.ials import solve_rows
from tests.recommender.conftest import build_world, row_of, scene_items


def test_fold_in_solves_the_weighted_normal_equations() -> None:
    rng = np.random.default_rng(3)
    fixed = rng.normal(size=(6, 3))
    confidence = sp.csr_matrix(np.array([[0.0, 2.0, 0.0, 1.0, 0.0, 0.0], [0.0] * 6]))
    got = solve_rows(confidence, fixed, fixed.T @ fixed, reg=0.5)
    # Dense form: confidence 1 + c on every cell, preference 1 where c > 0.
    c = 1.0 + confidence.toarray()[0]
    p = (confidence.toarray()[0] > 0).astype(float)
    expected = np.linalg.solve(fixed.T @ (c[:, None] * fixed) + 0.5 * np.eye(3), fixed.T @ (c * p))
    np.testing.assert_allclose(got[0], expected, rtol=1e-10)
    assert not got[1].any()  # an empty row has no factors


def test_same_seed_same_model_and_rare_items_score_zero() -> None:
    data, _tags, _links = build_world()
    coo = data.matrix.tocoo()
    # One extra listener brings an artist nobody else knows: below min_users, it is not modelled.
    users = [*data.users.ids[coo.row].tolist(), 999, 999, 999]
    items = [*data.items.ids[coo.col].tolist(), scene_items(2)[0], scene_items(2)[1], 777]
    merged = Interactions.from_arrays(users, items, [*coo.data.tolist(), 5.0, 3.0, 1.0])
    first = IALS(factors=4).fit(merged)
    second = IALS(factors=4).fit(merged)
    row = row_of(merged, scene_items(2)[:3])
    np.testing.assert_array_equal(first.score(row), second.score(row))
    scores = first.score(row)[0]
    assert scores[merged.items.index(777)] == 0.0
    assert scores[merged.items.index(scene_items(2)[3])] > scores[merged.items.indices(scene_items(0))].max()
