"""src.models.boosting: the training set built column by column, and the training AUC read
from LightGBM's own training scores."""

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from src.models.boosting import fit_booster, fit_with_training_auc, training_set

SETTINGS = {"objective": "binary", "bagging_fraction": 0.7, "bagging_freq": 1, "num_leaves": 7,
            "feature_fraction": 0.8, "num_threads": 1, "deterministic": True, "seed": 3, "verbosity": -1}  # fmt: skip


def _frame(n: int = 4000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    x = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    x.loc[rng.random(n) < 0.1, "b"] = np.nan
    kind = rng.choice(["low", "mid", "high", "??"], size=n)  # "??" is no category: missing
    x["kind"] = pd.Categorical(kind, categories=["low", "mid", "high"])
    x["band"] = pd.Categorical(rng.choice(["x", "y"], size=n), categories=["y", "x"], ordered=True)
    logit = 2 * x["a"] - x["b"].fillna(0) + (kind == "high") - 0.5 * (x["band"] == "x")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return x, y


def test_the_booster_is_the_one_lightgbm_fits_on_the_dataframe_and_the_frame_is_emptied():
    x, y = _frame()
    expected = lgb.train(SETTINGS, lgb.Dataset(x, label=y), num_boost_round=30)
    consumed = x.copy()
    booster = fit_booster(training_set(consumed, y), SETTINGS, 30)
    assert consumed.shape[1] == 0  # every column left as it was copied
    # to the byte: trees, categorical splits, feature names and the kept categories
    assert booster.model_to_string() == expected.model_to_string()
    assert booster.pandas_categorical == [["low", "mid", "high"], ["y", "x"]]
    assert np.array_equal(booster.predict(x), expected.predict(x))


def test_training_auc_is_the_auc_of_predicting_the_training_rows():
    x, y = _frame()
    booster, auc = fit_with_training_auc(training_set(x.copy(), y), SETTINGS, 40)
    plain = fit_booster(training_set(x.copy(), y), SETTINGS, 40)
    # the same model as a plain fit, to the split gains: keeping the rows changes nothing
    assert booster.model_to_string() == plain.model_to_string()
    assert np.array_equal(booster.feature_importance("gain"), plain.feature_importance("gain"))
    assert auc == roc_auc_score(y, booster.predict(x, raw_score=True))  # out-of-bag rows included
    assert 0.5 < auc < 1 and booster.num_trees() == 40
