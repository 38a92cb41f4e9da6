"""Streaming the labelled rows out of features.parquet: filters, sampling and order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from src.models import training_data
from tests.models import train_fixtures as fx

DATES = ["2024-01-01", "2024-02-01"]


def _dataset(tmp_path, n: int = 300) -> tuple[ds.Dataset, pd.DataFrame]:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "child_pid": np.tile([f"{i:064x}" for i in rng.permutation(n)], 3),
            "as_of": np.repeat(pd.to_datetime([*DATES, "2024-03-01"]).as_unit("us"), n),
        }
    )
    rows = len(frame)
    frame["label"] = (rng.random(rows) < 0.3).astype("int8")
    frame["days_to_outcome"] = np.where(frame["label"] == 1, 20.0, np.nan)
    frame["label_observed"] = True
    frame["already_out"] = (rng.random(rows) < 0.1).astype("int8")
    frame["x"] = rng.random(rows)
    frame["kind"] = pd.Categorical(rng.choice(["a", "b", "z"], rows))
    path = tmp_path / "features.parquet"
    frame.to_parquet(path, index=False, row_group_size=100)
    return ds.dataset(path, format="parquet"), frame


def test_rows_come_filtered_and_sampled_in_file_order_or_sorted_by_child(tmp_path):
    dataset, frame = _dataset(tmp_path)
    keep = lambda part: (part["label"] == 1) | (part["child_pid"].str[-1] < "8")  # noqa: E731
    read = training_data.read_cohort_rows(dataset, DATES, ["x", "kind"], {"kind": ["a", "b"]},
                                          labelled=True, keep=keep)  # fmt: skip
    expected = frame[frame["as_of"].isin(pd.to_datetime(DATES)) & (frame["already_out"] == 0)]
    expected = expected[keep(expected)].reset_index(drop=True)
    pd.testing.assert_frame_equal(read.drop(columns="kind"), expected.drop(columns="kind"))
    assert read["kind"].cat.categories.tolist() == ["a", "b"]  # outside the fixed ones: missing
    assert read["kind"].isna().equals(expected["kind"].eq("z"))
    ordered = training_data.read_cohort_rows(dataset, DATES, ["x", "kind"], {"kind": ["a", "b"]},
                                             labelled=True, keep=keep, ordered=True)  # fmt: skip
    pd.testing.assert_frame_equal(
        ordered, read.sort_values(training_data.KEYS).reset_index(drop=True)
    )


def test_the_row_budget_lowers_the_negative_rate_to_fit_and_never_below_one_per_positive():
    # 1,000 rows, 200 positives: every positive plus rate x 800 negatives
    assert training_data.budget_rate(1000, 200, 1.0, 0) == 1.0  # no cap
    assert training_data.budget_rate(1000, 200, 1.0, 1000) == 1.0  # fits already
    assert training_data.budget_rate(1000, 200, 0.5, 700) == 0.5  # 200 + 400 <= 700
    assert training_data.budget_rate(1000, 200, 1.0, 600) == 0.5  # (600 - 200) / 800
    assert training_data.budget_rate(1000, 200, 1.0, 500) == 0.375  # (500 - 200) / 800
    assert training_data.budget_rate(1000, 200, 1.0, 300) == 0.25  # floor: 200 negatives for 200 positives
    assert training_data.budget_rate(3, 1, 1.0, 1) == 0.5
    assert training_data.budget_rate(1000, 1000, 1.0, 10) == 1.0  # no negative to sample
    assert training_data.budget_rate(3000, 0, 1.0, 10) == round(10 / 3000, 6)


def test_within_budget_counts_the_eligible_rows_of_the_fits_dates(tmp_path):
    dataset, frame = _dataset(tmp_path)
    eligible = frame[frame["as_of"].isin(pd.to_datetime(DATES)) & (frame["already_out"] == 0)]
    rows, positives = len(eligible), int(eligible["label"].sum())
    assert training_data.label_counts(dataset, DATES) == (rows, positives)
    params = fx.small_params()
    budget = positives + (rows - positives) * 3 // 4
    capped = dataclasses.replace(params, train=dataclasses.replace(params.train, max_rows=budget))
    lowered = training_data.within_budget(capped, dataset, DATES)
    assert lowered.train.negative_sample_rate == round((budget - positives) / (rows - positives), 6)
    assert dataclasses.replace(lowered.train, negative_sample_rate=1.0) == capped.train  # nothing else moves
    assert training_data.within_budget(params, dataset, DATES) is params  # under its cap
