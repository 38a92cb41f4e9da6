"""Batch scoring on Spark gives the served model's own scores (to 1e-12), nowcast included,
and the explain stage's snapshot is the same whichever scores it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.delivery import explain
from src.features import catalogue
from src.models import train
from src.models.spark_scoring import SparkScoredModel, spark_predict
from src.models.split import make_split
from tests.models import train_fixtures as fx

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def small_catalogue():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(catalogue, "CATALOGUE", fx.SMALL_CATALOGUE)
        yield


@pytest.fixture(scope="module")
def model(small_catalogue):
    frame = fx.synthetic_features(n_children=60)
    split = make_split(frame["as_of"].unique(), fx.EXPORT_DATE, 180, 3, 4, 1)
    features, categories = train.feature_categories(False)
    return train.train_model(frame, split, fx.small_params(), features, categories).model


@pytest.fixture(scope="module")
def month():
    """Rows of several as-of dates, in shuffled order, the nowcast correcting one of them."""
    rows = fx.synthetic_features(n_children=80, n_dates=3, seed=7)
    return rows.sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_spark_scores_equal_local_scores(spark, model, month):
    corrected = pd.Timestamp(month["as_of"].max())
    model.nowcast = {"ratios": {corrected.date().isoformat(): {"ratio": 1.3}}}
    local = np.asarray(model.predict_proba(month), dtype=np.float64)
    assert not np.allclose(local, model.calibrated(month))  # the nowcast is exercised
    on_spark = spark_predict(spark, model, month)
    np.testing.assert_allclose(on_spark, local, rtol=0, atol=1e-12)
    assert spark_predict(spark, model, month.head(0)).shape == (0,)


def test_explain_snapshot_is_the_same_scored_on_spark(spark, model, month, small_catalogue):
    frame = month[month["as_of"] == month["as_of"].max()].assign(
        already_out=0, already_out_net="", age_band="6-11"
    )
    local = explain.explain_snapshot(frame, model, top_n=3)
    remote = explain.explain_snapshot(frame, SparkScoredModel(model, spark), top_n=3)
    pd.testing.assert_frame_equal(remote.explanations, local.explanations, check_exact=False,
                                  rtol=0, atol=1e-12)  # fmt: skip
    pd.testing.assert_frame_equal(remote.contributions, local.contributions)
