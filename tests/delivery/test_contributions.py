"""The waterfall table: top contributions by |SHAP| plus a remainder that makes the sum exact."""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.delivery import contributions


def test_top_contributions_and_remainder_add_up_exactly():
    X = pd.DataFrame({"unexcused_days_90d": [6.0, 0.0], "age_years": [12.5, 8.0],
                      "recert_overdue": [1.0, 0.0]})  # fmt: skip
    contrib = np.array([[0.3, -0.5, 0.1], [0.0, 0.2, -0.05]])
    base = np.array([-2.0, -2.0])
    table = contributions.contribution_table(pd.Series(["b", "a"]), X, contrib, base, top=2)
    assert list(table.columns) == list(contributions.COLUMNS)
    first = table[table["child_pid"] == "b"]
    assert first["feature"].tolist() == ["age_years", "unexcused_days_90d", "other_features"]
    assert first["rank"].tolist() == [1, 2, 3]
    assert first["value_zh"].tolist() == ["年龄 12.5 岁", "近90天无故缺课 6.0 天", "其余 1 项特征"]
    assert first["value_en"].iloc[0] == "aged 12.5"
    sums = table.groupby("child_pid")["shap"].sum() + table.groupby("child_pid")["base_log_odds"].first()
    np.testing.assert_allclose(sums.loc[["b", "a"]].to_numpy(), contrib.sum(axis=1) + base, atol=1e-12)
    assert table["child_pid"].tolist()[:3] == ["a", "a", "a"]  # sorted by child, then rank
