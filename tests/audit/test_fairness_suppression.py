"""Suppression across tables: no suppressed cell can be solved for from everything published."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from src.audit.cluster_bootstrap import child_codes
from src.audit.fairness_cells import JOIN, OVERALL
from src.audit.fairness_suppression import all_groupings, cell_sizes, suppress

ATTRIBUTES = ("sex", "hukou", "county_code")


def frame(seed: int = 0) -> pd.DataFrame:
    """300 children x 2 months; one rare county makes small intersection and month cells."""
    rng = np.random.default_rng(seed)
    n = 300
    county = rng.choice(["c1", "c2", "c3"], n, p=[0.55, 0.38, 0.07])
    kid = np.repeat(np.arange(n), 2)
    return pd.DataFrame({
        "child_pid": kid.astype(str), "month": np.tile(["2025-01", "2025-02"], n),
        "label": (rng.random(2 * n) < 0.2).astype(int),
        "sex": rng.choice(["f", "m"], n)[kid], "hukou": rng.choice(["rural", "urban"], n, p=[0.8, 0.2])[kid],
        "county_code": county[kid],
    })  # fmt: skip


def membership(frame: pd.DataFrame, key: tuple[str, str, str]) -> np.ndarray:
    """Which rows (the unknowns: each child-month's count) a published cell adds up."""
    grouping, group, month = key
    rows = np.ones(len(frame), dtype=bool) if not month else (frame["month"] == month).to_numpy()
    if grouping != OVERALL:
        for attribute, value in zip(grouping.split(JOIN), group.split(JOIN), strict=True):
            rows = rows & (frame[attribute] == value).to_numpy()
    return rows.astype(float)


def test_no_suppressed_cell_is_recoverable_from_the_published_cells():
    data = frame()
    child, _ = child_codes(data["child_pid"])
    sizes = suppress(cell_sizes(data, all_groupings(ATTRIBUTES), child), 30, 5, ATTRIBUTES)
    hidden = sizes[sizes["suppressed"] != ""]
    assert len(hidden) >= 2 and (hidden["suppressed"] == "complementary").any()
    # the unknowns: counts of each combination of every attribute and month (the finest cells)
    combos = data.groupby(["month", *ATTRIBUTES]).ngroup().to_numpy()
    def as_combos(key):  # noqa: E306 - a cell as a sum of the finest cells
        return np.bincount(combos, weights=membership(data, key), minlength=combos.max() + 1) > 0
    keys = lambda s: list(s[["grouping", "group", "month"]].itertuples(index=False, name=None))  # noqa: E731
    published = np.array([as_combos(k) for k in keys(sizes[sizes["suppressed"] == ""])], dtype=float)
    rank = np.linalg.matrix_rank(published)
    for key in keys(hidden):
        stacked = np.vstack([published, as_combos(key).astype(float)])
        assert np.linalg.matrix_rank(stacked) > rank, f"{key} is a combination of published cells"


def test_thresholds_count_children_not_child_months():
    data = frame()
    child, _ = child_codes(data["child_pid"])
    sizes = cell_sizes(data, all_groupings(ATTRIBUTES), child)
    c3 = sizes[(sizes["grouping"] == "county_code") & (sizes["group"] == "c3") & (sizes["month"] == "")].iloc[0]
    assert c3["child_months"] == 2 * c3["children"]
    assert list(itertools.islice(all_groupings(ATTRIBUTES), 4)) == [("sex",), ("hukou",), ("county_code",), ("sex", "hukou")]


def test_children_per_cell_are_distinct_children_with_or_without_repeated_months():
    data = frame(1)
    child, _ = child_codes(data["child_pid"])
    sizes = cell_sizes(data, all_groupings(ATTRIBUTES), child)
    doubled = pd.concat([data, data.iloc[:40]], ignore_index=True)  # 40 child-months twice: the slow path
    doubled_child, _ = child_codes(doubled["child_pid"])
    again = cell_sizes(doubled, all_groupings(ATTRIBUTES), doubled_child)
    for table, rows in ((sizes, data), (again, doubled)):
        for key in table.sample(25, random_state=0).itertuples():
            inside = membership(rows, (key.grouping, key.group, key.month)).astype(bool)
            assert key.children == rows.loc[inside, "child_pid"].nunique()
            assert key.children_with_outcome == rows.loc[inside & (rows["label"] == 1), "child_pid"].nunique()
    assert (again["child_months"] >= again["children"]).all() and (again["child_months"] > again["children"]).any()
