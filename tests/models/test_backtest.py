"""The rolling-origin backtest: seeded search, choice on the folds only, calibrators out of time."""

from __future__ import annotations

import numpy as np
import pytest

from src.features import catalogue
from src.models import backtest
from src.models.backtest import FoldScores
from tests.models import train_fixtures as fx


def test_candidates_start_with_the_configured_settings_and_are_seeded():
    configured = fx.small_params().train.lightgbm
    five = backtest.candidates(configured, 5, seed=1)
    assert five[0] == configured and len(set(five)) == 5
    assert backtest.candidates(configured, 5, seed=1) == five
    assert backtest.candidates(configured, 5, seed=2) != five
    assert backtest.candidates(configured, 1, seed=1) == [configured]
    for settings in five[1:]:
        assert settings.num_leaves in backtest.SEARCH_SPACE["num_leaves"]
        assert settings.learning_rate == configured.learning_rate  # only the grid's keys vary


def _fold(prevalence_shift: float, seed: int) -> FoldScores:
    rng = np.random.default_rng(seed)
    raw = rng.normal(-2, 1.2, 6000)
    y = (rng.random(6000) < 1 / (1 + np.exp(-(raw + prevalence_shift)))).astype(int)
    return FoldScores(raw, y, np.zeros(6000), best_iteration=50, score=0.3)


def test_calibrators_are_judged_on_the_next_fold():
    stable = backtest.compare_calibrators([_fold(0.0, 1), _fold(0.0, 2)], ece_bins=10)
    drifted = backtest.compare_calibrators([_fold(0.0, 1), _fold(0.8, 2)], ece_bins=10)
    assert len(stable) == 1 and set(stable[0]) == {"isotonic", "platt", "beta"}
    for method in ("isotonic", "platt", "beta"):
        assert stable[0][method]["ece"] < 0.02
        assert stable[0][method]["observed_to_predicted"] == pytest.approx(1.0, abs=0.1)
        assert drifted[0][method]["observed_to_predicted"] > 1.4  # the next month is riskier


def test_the_best_mean_window_score_wins_and_sets_the_rounds(monkeypatch):
    from src.models.split import make_split

    frame = fx.synthetic_features(n_children=120)
    split = make_split(frame["as_of"].unique(), fx.EXPORT_DATE, 180, 3, 4, 1)
    frame = frame.loc[frame["as_of"].dt.date.isin(split.train) & frame["label_observed"]]
    params = fx.small_params()
    calls = []

    class Booster:  # scores the window at random; remembers the round count it was asked for
        def predict(self, x, raw_score, num_iteration):
            asked.append(num_iteration)
            return np.random.default_rng(num_iteration).normal(size=len(x))

    asked = []

    def fake_fit(x_train, y_train, x_window, y_window, lgb_params, settings):
        calls.append(settings)
        fold = sum(1 for c in calls if c == settings)  # 1..4
        peak = 10 * fold  # each fold's own best round: 10, 20, 30, 40
        top = 0.5 if settings.num_leaves == 63 else 0.3
        curve = top - 1e-5 * (np.arange(1, peak + 51) - peak) ** 2  # stopped 50 rounds after
        return backtest.FoldFit(Booster(), curve)

    gaps = []
    real_fit_folds = backtest.fit_folds

    def checked_fit_folds(parts, *args):
        gaps.extend(train["as_of"].max() + np.timedelta64(180, "D") < window["as_of"].min() for train, window in parts)
        return real_fit_folds(parts, *args)

    monkeypatch.setattr(backtest, "fit_folds", checked_fit_folds)
    monkeypatch.setattr(catalogue, "CATALOGUE", fx.SMALL_CATALOGUE)  # the fitted features' catalogue
    monkeypatch.setattr(backtest, "fit_fold", fake_fit)
    monkeypatch.setattr(backtest, "candidates", lambda configured, trials, seed: [
        configured, configured.__class__(**{**configured.__dict__, "num_leaves": 63})])
    result = backtest.run_backtest(frame, split.folds, params, ["risk_a"], {})
    assert result.settings.num_leaves == 63 and len(calls) == 8
    assert all(gaps) and len(gaps) == 8  # every fold keeps the horizon gap
    # the folds' mean curve peaks between the folds' own best rounds (10..40), at 25 here
    assert result.rounds == 25 and set(asked[-4:]) == {25}
    assert [f["window"] for f in result.report["folds"]] == [[w.isoformat() for w in f.window] for f in split.folds]
    assert result.report["chosen"]["num_leaves"] == 63


def test_a_gain_within_fold_noise_does_not_replace_the_configured_settings():
    configured = fx.small_params().train.lightgbm
    other = configured.__class__(**{**configured.__dict__, "num_leaves": 63})

    def tried(settings, scores):
        folds = [FoldScores(np.zeros(1), np.zeros(1), np.zeros(1), 10, s) for s in scores]
        return (float(np.mean(scores)), settings, folds)

    base = tried(configured, [0.40, 0.42, 0.41, 0.43])
    noisy = tried(other, [0.43, 0.40, 0.42, 0.43])  # +0.005 on average, sd of the gain 0.02
    steady = tried(other, [0.42, 0.44, 0.43, 0.45])  # +0.02 in every fold
    assert backtest.choose([base, noisy])[1] == configured
    assert backtest.choose([base, steady])[1] == other


def test_common_rounds_is_the_best_round_of_the_folds_mean_curve():
    early = np.array([0.30, 0.34, 0.33, 0.32])  # stopped early: its last value carries on
    late = np.array([0.20, 0.22, 0.25, 0.27, 0.29, 0.28])
    # mean curve: .25 .28 .29 .295 .305 .30 -> round 5, neither fold's own best (2 and 5 vs 5)
    assert backtest.common_rounds([early, late]) == 5
    assert backtest.common_rounds([early]) == 2
