"""Calibrators fitted on down-sampled rows learn the population's rate, not the sample's."""

from __future__ import annotations

import numpy as np
import pytest

from src.models.calibration import METHODS, fit_calibrator


@pytest.mark.parametrize("method", METHODS)
def test_negatives_sampled_at_a_rate_are_weighted_back(method):
    rng = np.random.default_rng(7)
    raw = rng.normal(-1.5, 1.0, 60_000)
    y = (rng.random(len(raw)) < 1 / (1 + np.exp(-raw))).astype(int)  # raw is the true log-odds
    kept = (y == 1) | (rng.random(len(raw)) < 0.25)  # negatives sampled at 25 %
    weighted = fit_calibrator(method, raw[kept], y[kept], 0.0, negative_rate=0.25)
    unweighted = fit_calibrator(method, raw[kept], y[kept], 0.0)
    truth = y.mean()
    assert weighted.predict(raw).mean() == pytest.approx(truth, rel=0.05)
    # without the weights the calibrator learns the sample's rate: far too high
    assert unweighted.predict(raw).mean() > 1.5 * truth
    # a rate of 1 is exactly the unweighted fit
    assert fit_calibrator(method, raw, y, 0.0, negative_rate=1.0) == fit_calibrator(method, raw, y, 0.0)
