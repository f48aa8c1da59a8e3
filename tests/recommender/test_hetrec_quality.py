"""Quality on the real HetRec dataset (slow): the hybrid must beat the baselines.

Split seed 7 on purpose: hyper-parameters and blend weights are selected on validation carved from
the training rows of split seeds 0-2 (`sonance eval tune`, `core.recommender.tuning`), so this
split was never seen by any selection. The evaluation is leak-free (no tag rows of held-out pairs).
"""

from __future__ import annotations

import pytest

from core.datasets import find_hetrec_dir
from core.recommender.evaluation import run_evaluation
from core.recommender.hetrec import task_from_dir
from core.recommender.tuning import QUALITY_TEST_SEED, SELECTION_SEEDS

pytestmark = pytest.mark.slow


def test_hybrid_reaches_target_ndcg_on_one_seed() -> None:
    folder = find_hetrec_dir()
    if folder is None:
        pytest.skip("HetRec 2011 Last.fm dataset not found: set SONANCE_DATASET_DIR or put it in "
                    "../shared/data/hetrec2011-lastfm-2k")
    assert QUALITY_TEST_SEED not in SELECTION_SEEDS
    results = run_evaluation(task_from_dir(folder, seed=QUALITY_TEST_SEED), k=10, seed=QUALITY_TEST_SEED,
                             cold_start=None)
    hybrid = results["hybrid"]["ndcg@10"]
    assert hybrid >= 0.250, results  # leak-free seeds 0-2 measure 0.255-0.261 (0.249-0.252 before "als")
    for baseline in ("MostPop", "ItemKNN", "NMF"):
        assert hybrid > results[baseline]["ndcg@10"], (baseline, results)
    assert results["hybrid"]["train_seconds"] <= 60  # 30 s target; slack for a loaded CI machine
