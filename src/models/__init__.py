"""Models: split, train, calibration, scoring, tracking, baselines, metrics and evaluate."""
