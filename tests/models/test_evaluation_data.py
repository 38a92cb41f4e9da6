"""The evaluate stage's reads: only the needed rows and columns, the baselines' sample bounded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.errors import SafetynetError
from src.models import baselines, evaluation_data

TRAIN = ["2024-01-01", "2024-02-01", "2024-03-01"]
TEST = ["2024-10-01"]


def _features(path, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    months = pd.to_datetime([*TRAIN, "2024-06-01", *TEST]).as_unit("us")
    frame = pd.DataFrame(
        {
            "child_pid": np.tile([f"{i:064x}" for i in range(n)], len(months)),
            "as_of": np.repeat(months, n),
        }
    )
    rows = len(frame)
    frame["label"] = (rng.random(rows) < 0.2).astype("int8")
    frame["label_observed"] = True
    frame["already_out"] = (rng.random(rows) < 0.1).astype("int8")
    frame["x"] = rng.random(rows)
    frame["county_code"] = "110101"
    frame["community_code"] = np.array(["a", "b"])[np.arange(rows) % 2]
    for column in [*evaluation_data.ATTRIBUTES, *(f for f, _ in baselines.RULES.values())]:
        frame[column] = frame.get(column, "x")  # what the test rows carry besides the features
    frame.to_parquet(path, index=False)
    return frame


def _summary() -> dict:
    return {"features": ["x"], "split": {"train": TRAIN, "test": TEST}}


def test_baseline_rows_are_the_eligible_history_or_a_seeded_sample_of_it(tmp_path):
    path = tmp_path / "features.parquet"
    frame = _features(path)
    eligible = frame[frame["as_of"].isin(pd.to_datetime(TRAIN)) & (frame["already_out"] == 0)]
    _, everything, _ = evaluation_data.load_frames(path, _summary(), 0, seed=1)
    pd.testing.assert_frame_equal(
        everything, eligible[everything.columns].reset_index(drop=True), check_dtype=False
    )
    sample, again = (evaluation_data.load_frames(path, _summary(), 300, seed=1)[1] for _ in range(2))
    pd.testing.assert_frame_equal(sample, again)
    assert 200 < len(sample) < 400
    assert sample.merge(eligible, on=["child_pid", "as_of"]).shape[0] == len(sample)
    other = evaluation_data.load_frames(path, _summary(), 300, seed=2)[1]
    assert not other[["child_pid", "as_of"]].equals(sample[["child_pid", "as_of"]])


def test_history_and_truth_hold_only_what_their_baseline_reads(tmp_path):
    path = tmp_path / "features.parquet"
    _features(path)
    test, _, history = evaluation_data.load_frames(path, _summary(), 0, seed=1)
    assert set(test["as_of"].dt.date.astype(str)) == set(TEST)
    assert list(history.columns) == ["as_of", "label", "county_code", "community_code"]
    assert history["as_of"].max() < pd.Timestamp(TEST[0])
    truth = pd.DataFrame({"child_pid": ["a", "a"], "as_of": pd.to_datetime(["2024-06-01", TEST[0]]),
                          "p_true": [0.1, 0.2]})  # fmt: skip
    truth.to_parquet(tmp_path / "truth.parquet")
    assert evaluation_data.read_truth(tmp_path, TEST)["p_true"].tolist() == [0.2]
    assert evaluation_data.read_truth(tmp_path / "nowhere", TEST) is None


def test_a_missing_column_is_one_clear_error(tmp_path):
    path = tmp_path / "features.parquet"
    _features(path)
    with pytest.raises(SafetynetError, match="missing_feature"):
        evaluation_data.read_columns(path, ["missing_feature"], TEST)
