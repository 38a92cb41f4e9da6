"""Context metrics: AUC and ECE per group agree with sklearn and the metric registry."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from src.audit.fairness_context import auc_and_ece
from src.models import metrics


def test_auc_and_ece_per_group_match_sklearn_with_ties():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 300)
    score = np.round(rng.random(300), 1)  # many ties
    codes = rng.integers(0, 3, 300)
    auc, ece = auc_and_ece(label.astype(float), score, codes, 3, 10)
    for g in range(3):
        rows = codes == g
        assert auc[g] == pytest.approx(roc_auc_score(label[rows], score[rows]))
        assert ece[g] == pytest.approx(metrics.ece(label[rows], score[rows], ece_bins=10))
