"""Per-system SHAP sums: each system's features added in feature order, one column at a time."""

from __future__ import annotations

import numpy as np

from src.delivery.importance import system_sums
from src.features import catalogue


def test_each_system_sums_its_own_features_in_feature_order():
    features = catalogue.model_features(False, ())
    values = np.random.default_rng(3).normal(size=(50, len(features)))
    sums = system_sums(values, features)
    for j, system in enumerate(catalogue.SYSTEMS):
        expected = np.zeros(len(values))
        for i, name in enumerate(features):
            if catalogue.spec(name).system == system:
                expected = expected + values[:, i]
        assert np.array_equal(sums[:, j], expected)  # the same additions, so the same bits
    assert np.allclose(sums.sum(axis=1), values.sum(axis=1))
    assert len({catalogue.spec(name).system for name in features}) > 1
