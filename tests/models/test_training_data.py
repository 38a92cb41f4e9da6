"""Streaming the labelled rows out of features.parquet: filters, sampling and order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from src.models import training_data

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
