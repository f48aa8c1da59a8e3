"""Calibration: monotone, bounded, persistent, labelled."""

from __future__ import annotations

import numpy as np
import pytest

from core.compat import LABELS, Calibration, build_taste_space, label_for, pair_score
from core.errors import InvalidInput
from tests.compat.conftest import world_rows


def test_monotone_and_bounded(world):
    raws = np.linspace(-20, 20, 2001)
    scores = world.calibration.score(raws)
    assert np.all(np.diff(scores) >= 0)
    assert scores[0] == 0.0 and scores[-1] == 100.0


def test_monotone_with_heavy_ties():
    cal = Calibration.from_sample(np.r_[np.zeros(900), np.linspace(0, 1, 100)], (0, 0, 0), (1, 1, 1), "t")
    s = cal.score(np.linspace(-1, 2, 500))
    assert np.all(np.diff(s) >= 0) and 0 <= s.min() and s.max() <= 100


def test_labels_cover_scale_in_order():
    assert label_for(0) == "opposites" and label_for(100) == "kindred spirits"
    seen = [label_for(x) for x in np.linspace(0, 100, 101)]
    assert [lab for _, lab in LABELS] == list(dict.fromkeys(seen))


def test_persistence_round_trip(world, tmp_path):
    path = tmp_path / "cal.json"
    world.calibration.save(path)
    loaded = Calibration.load(path)
    assert np.allclose(loaded.quantiles, world.calibration.quantiles)
    rows, tags = world_rows()
    again = build_taste_space(rows, tags, calibration=loaded)
    assert pair_score(again, "u0", "u3") == pytest.approx(pair_score(world, "u0", "u3"))


def test_unreadable_or_mismatched_calibration(tmp_path, world):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInput):
        Calibration.load(bad)
    other = Calibration.from_sample(np.zeros(3), (0, 0, 0), (1, 1, 1), "someone-else")
    with pytest.raises(InvalidInput):
        build_taste_space([("a", "x", 1.0), ("b", "x", 1.0)], calibration=other)


def test_scores_equal_up_to_rounding_get_one_percentile() -> None:
    """Pairs with nothing in common share a raw score up to float noise; they must not be spread."""
    import numpy as np

    from core.compat.calibration import Calibration

    base = -1.19918561
    quantiles = np.sort(np.concatenate([np.full(30, base) + np.linspace(0, 3e-8, 30), np.linspace(-1, 2, 70)]))
    calibration = Calibration(params_token="t", sample_size=100, component_mean=(0.0, 0.0, 0.0),
                              component_std=(1.0, 1.0, 1.0), quantiles=quantiles)
    scores = {round(float(calibration.score(base + d)), 6) for d in (0.0, 1e-8, 2.9e-8)}
    assert len(scores) == 1
