"""Baselines on tiny frames: the rule count, the logistic pipeline, leakage-free community rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.errors import SafetynetError
from src.models import baselines
from src.models.scoring import prepare_features


def test_rule_scores_count_rules_and_ignore_unknown_values():
    frame = pd.DataFrame(
        {
            "absence_rate_all_90d": [0.10, 0.0999, np.nan, 0.5, 0.0],
            "recert_overdue": [0, 1, 0, 1, 0],
            "rehab_missed_180d": [0, 0, np.nan, 2, 0],
            "visit_concerns_90d": [0, 0, 1, 1, 0],
        }
    )
    assert baselines.rule_scores(frame).tolist() == [1, 1, 1, 4, 0]
    fired = baselines.rules_fired(frame)
    assert fired.loc[0, "chronic_absence"]  # exactly 10 % is chronic
    assert not fired.loc[2, "chronic_absence"]  # not enrolled: unknown, never fires


def test_rule_scores_name_a_missing_feature():
    with pytest.raises(SafetynetError, match="rehab_missed_180d"):
        baselines.rule_scores(
            pd.DataFrame(
                {"absence_rate_all_90d": [0.2], "recert_overdue": [1], "visit_concerns_90d": [0]}
            )
        )


def _history() -> pd.DataFrame:
    months = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-06-01", "2024-09-01"]).as_unit("us")
    rows = []
    for month in months:
        for community, labels in {"c1": [1, 0, 0, 0], "c2": [0, 0, 0, 0]}.items():
            rows += [
                {"as_of": month, "county_code": "110101", "community_code": community, "label": y}
                for y in labels
            ]
    return pd.DataFrame(rows)


def test_community_rate_is_smoothed_toward_the_global_rate():
    history = _history()
    target = pd.DataFrame(
        {"county_code": ["110101", "110101", "110101"], "community_code": ["c1", "c2", "new"]}
    )
    # test starts 2024-09-01, horizon 90 days: only Jan, Feb and Jun rows (closing by Aug 30) count
    scores = baselines.community_scores(
        history, target, test_start=pd.Timestamp("2024-09-01"), horizon_days=90, prior_strength=4.0
    )
    global_rate = 3 / 24
    assert scores.tolist() == pytest.approx(
        [(3 + 4 * global_rate) / (12 + 4), (0 + 4 * global_rate) / (12 + 4), global_rate]
    )


def test_community_baseline_never_sees_labels_that_close_inside_the_test_period():
    history = _history()
    target = history[["county_code", "community_code"]].drop_duplicates()
    kwargs = {"test_start": pd.Timestamp("2024-09-01"), "horizon_days": 90, "prior_strength": 10.0}
    before = baselines.community_scores(history, target, **kwargs)
    leaky = history.copy()
    late = leaky["as_of"] + pd.Timedelta(days=90) > kwargs["test_start"]
    assert late.any()
    leaky.loc[late, "label"] = 1 - leaky.loc[late, "label"]  # flip every label not yet known
    np.testing.assert_array_equal(baselines.community_scores(leaky, target, **kwargs), before)
    known = history.copy()
    known.loc[~late, "label"] = 1  # a label known before the test period does move the rate
    assert not np.array_equal(baselines.community_scores(known, target, **kwargs), before)


def test_community_baseline_without_history_fails_clearly():
    with pytest.raises(SafetynetError, match="no label closes"):
        baselines.community_scores(
            _history(),
            _history(),
            test_start=pd.Timestamp("2024-01-15"),
            horizon_days=180,
            prior_strength=1.0,
        )


def _training_frame(n: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    absence = rng.random(n)
    absence[rng.random(n) < 0.2] = np.nan
    kind = pd.Categorical(
        rng.choice(["orphan", "low_income", None], n), categories=["orphan", "low_income", "other"]
    )
    logit = -1 + 3 * np.nan_to_num(absence) + (kind == "orphan")
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    return pd.DataFrame(
        {
            "absence": absence,
            "visits": rng.poisson(2, n).astype(float),
            "category": kind,
            "label": label,
        }
    )


def test_logistic_fits_on_missing_values_and_categories_and_is_deterministic():
    train = _training_frame()
    features = ["absence", "visits", "category"]
    first = baselines.fit_logistic(train, features, c=1.0, seed=7)
    second = baselines.fit_logistic(train, features, c=1.0, seed=7)
    test = _training_frame(40, seed=1)
    test.loc[0, "category"] = "other"  # a level never seen in training
    scores = baselines.logistic_scores(first, test.drop(columns="label"))
    assert scores.shape == (40,)
    assert ((scores > 0) & (scores < 1)).all()
    np.testing.assert_array_equal(scores, baselines.logistic_scores(second, test))
    assert list(first.feature_names_in_) == features  # the label is never an input
    # the absence effect is learnt and in the right direction
    coefficients = first.named_steps["model"].coef_[0]
    assert coefficients[0] > 0


def test_logistic_respects_explicit_categoricals_and_the_row_cap():
    train = _training_frame()
    pipeline = baselines.fit_logistic(
        train, ["absence", "category"], c=0.5, seed=1, categorical=["category"], max_rows=50
    )
    prepare = pipeline.named_steps["prepare"]
    assert prepare.transformers_[1][2] == ["category"]
    assert pipeline.named_steps["model"].C == 0.5
    # absence + its missing indicator, and the levels seen: orphan, low_income, missing
    assert pipeline.named_steps["model"].n_features_in_ == 2 + 3
    scaler = prepare.named_transformers_["numeric"].named_steps["scale"]
    assert scaler.n_samples_seen_ == 50  # the seeded row cap
    one_class = train.assign(label=0)
    with pytest.raises(SafetynetError, match="one label class"):
        baselines.fit_logistic(one_class, ["absence"], c=1.0, seed=1)


def test_peer_is_byte_stable_on_the_models_threads_and_fits_the_seeded_row_cap():
    train = _training_frame(2000)
    features, categories = ["absence", "visits", "category"], {"category": ["orphan", "low_income", "other"]}
    first, second = (baselines.fit_lightgbm_peer(train, features, categories, seed=3, max_rows=500, threads=2)
                     for _ in range(2))  # fmt: skip
    assert first.get_params()["n_jobs"] == 2
    assert first.booster_.model_to_string() == second.booster_.model_to_string()
    sample = baselines.fit_lightgbm_peer(train.sample(n=500, random_state=3), features, categories, seed=3, threads=2)
    assert first.booster_.model_to_string() == sample.booster_.model_to_string()
    uncapped = baselines.fit_lightgbm_peer(train, features, categories, seed=3, threads=2)
    assert uncapped.booster_.model_to_string() != first.booster_.model_to_string()


def test_the_baselines_score_a_block_of_rows_at_a_time_with_the_scores_of_one_pass(monkeypatch):
    train, test = _training_frame(2000), _training_frame(103, seed=1).drop(columns="label")
    features, categories = ["absence", "visits", "category"], {"category": ["orphan", "low_income", "other"]}
    logistic = baselines.fit_logistic(train, features, c=1.0, seed=7)
    peer = baselines.fit_lightgbm_peer(train, features, categories, seed=3, threads=2)
    whole = {"logistic": logistic.predict_proba(test[features])[:, 1],
             "peer": peer.predict_proba(prepare_features(test, features, categories))[:, 1]}  # fmt: skip
    monkeypatch.setattr(baselines, "SCORE_ROWS", 10)
    chunked = {"logistic": baselines.logistic_scores(logistic, test),
               "peer": baselines.lightgbm_peer_scores(peer, test, categories)}  # fmt: skip
    for name in whole:
        np.testing.assert_array_equal(chunked[name], whole[name])  # exactly, row for row
    blocks = []
    order = baselines.in_chunks(lambda part: blocks.append(len(part)) or part["visits"].to_numpy(), test)
    assert blocks == [10] * 10 + [3]
    np.testing.assert_array_equal(order, test["visits"].to_numpy())


def test_oracle_scores_join_truth_and_leave_gaps_as_nan():
    target = pd.DataFrame(
        {"child_pid": ["a", "b", "c"], "as_of": pd.to_datetime(["2025-01-01"] * 3).as_unit("us")}
    )
    truth = pd.DataFrame(
        {
            "child_pid": ["b", "a"],
            "as_of": pd.to_datetime(["2025-01-01", "2025-01-01"]).as_unit("ns"),
            "p_true": [0.2, 0.7],
        }
    )
    scores = baselines.oracle_scores(target, truth)
    assert scores[:2].tolist() == [0.7, 0.2]
    assert np.isnan(scores[2])
