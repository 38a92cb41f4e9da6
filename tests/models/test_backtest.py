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

    def fake_fit(train, window, lgb_params, settings, features, categories, offset):
        assert train["as_of"].max() + np.timedelta64(180, "D") < window["as_of"].min()  # the gap
        calls.append(settings)
        score = 0.5 if settings.num_leaves == 63 else 0.3
        rng = np.random.default_rng(len(calls))
        raw = rng.normal(size=len(window))
        return FoldScores(raw, window["label"].to_numpy(), window["as_of"].to_numpy(),
                          best_iteration=10 * len(calls), score=score)  # fmt: skip

    monkeypatch.setattr(catalogue, "CATALOGUE", fx.SMALL_CATALOGUE)  # the fitted features' catalogue
    monkeypatch.setattr(backtest, "fit_fold", fake_fit)
    monkeypatch.setattr(backtest, "candidates", lambda configured, trials, seed: [
        configured, configured.__class__(**{**configured.__dict__, "num_leaves": 63})])
    result = backtest.run_backtest(frame, split.folds, params, ["risk_a"], {})
    assert result.settings.num_leaves == 63 and len(calls) == 8
    assert result.rounds == int(np.median([50, 60, 70, 80]))  # the winner's folds' best iterations
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
