"""src.models.boosting: the training AUC read from LightGBM's own training scores."""

import numpy as np
from sklearn.metrics import roc_auc_score

from src.models.boosting import fit_booster, fit_with_training_auc


def test_training_auc_is_the_auc_of_predicting_the_training_rows():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4000, 5))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(2 * x[:, 0] - x[:, 1])))).astype(int)
    settings = {"objective": "binary", "bagging_fraction": 0.7, "bagging_freq": 1, "num_leaves": 7,
                "feature_fraction": 0.8, "num_threads": 1, "deterministic": True, "seed": 3, "verbosity": -1}  # fmt: skip
    booster, auc = fit_with_training_auc(x, y, settings, 40)
    plain = fit_booster(x, y, settings, 40)
    # the same model as a plain fit, to the split gains: keeping the rows changes nothing
    assert booster.model_to_string() == plain.model_to_string()
    assert np.array_equal(booster.feature_importance("gain"), plain.feature_importance("gain"))
    assert auc == roc_auc_score(y, booster.predict(x, raw_score=True))  # out-of-bag rows included
    assert 0.5 < auc < 1 and booster.num_trees() == 40
