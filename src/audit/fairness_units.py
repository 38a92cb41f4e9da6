"""The need-adjusted view of the units that have their own capacity: counties and child directors.

Each child director's list has its own capacity, so recall differs between units for two
reasons the page keeps apart:
- capacity per need: places on the lists ÷ expected positives (the sum of the calibrated
  scores of the unit's scored child-months). A unit with fewer places per expected dropout
  catches a smaller share, however well the model ranks;
- ranking: recall ÷ the recall the model's own scores promise with those places (the sum of
  the listed children's scores ÷ the sum of all scores). Below 1, the list catches fewer
  children who later fell out than its own risk estimates expected: the model ranks (or
  calibrates) this unit's children worse.
Counties are listed by code. Directors are never named: they are summarised by fifths of
capacity per need (each fifth's directors pooled), so no caseworker id reaches the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UNIT_COLUMNS = [
    "unit", "children", "child_months", "positives", "caught", "recall", "expected_positives",
    "places", "need_covered", "expected_recall", "ranking_ratio",
]  # fmt: skip
FIFTHS = 5


def unit_table(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per value of `key` (over the test months): recall, expected positives, places, share of need covered."""
    scored = frame.assign(
        listed_score=frame["score"] * frame["selected"], caught=frame["label"] * frame["selected"]
    )
    grouped = scored.groupby(key, sort=True)
    table = pd.DataFrame({
        "children": grouped["child_pid"].nunique(), "child_months": grouped.size(),
        "positives": grouped["label"].sum(), "caught": grouped["caught"].sum(),
        "expected_positives": grouped["score"].sum(), "places": grouped["selected"].sum(),
        "listed_score": grouped["listed_score"].sum(),
    })  # fmt: skip
    return _ratios(table).rename_axis("unit").reset_index()


def _ratios(table: pd.DataFrame) -> pd.DataFrame:
    with np.errstate(divide="ignore", invalid="ignore"):
        table["recall"] = table["caught"] / table["positives"]
        table["need_covered"] = table["places"] / table["expected_positives"]
        table["expected_recall"] = table["listed_score"] / table["expected_positives"]
        table["ranking_ratio"] = table["recall"] / table["expected_recall"]
    for column in ("children", "child_months", "positives", "caught", "places"):
        table[column] = table[column].astype(np.int64)
    return table


def director_fifths(frame: pd.DataFrame) -> pd.DataFrame:
    """Directors (caseworker_id; children with none excluded) in fifths of need covered, each fifth pooled."""
    if "caseworker_id" not in frame.columns:
        return pd.DataFrame(columns=["fifth", "directors", *UNIT_COLUMNS[1:]])
    assigned = frame[frame["caseworker_id"] != ""]
    directors = unit_table(assigned, "caseworker_id")
    if directors.empty:
        return pd.DataFrame(columns=["fifth", "directors", *UNIT_COLUMNS[1:]])
    order = directors.sort_values(["need_covered", "unit"], kind="stable").reset_index(drop=True)
    order["fifth"] = np.minimum(np.arange(len(order)) * FIFTHS // len(order), FIFTHS - 1) + 1
    fifth_of = dict(zip(order["unit"], order["fifth"], strict=True))
    pooled = unit_table(assigned.assign(fifth=assigned["caseworker_id"].map(fifth_of)), "fifth")
    pooled = pooled.rename(columns={"unit": "fifth"})
    pooled.insert(1, "directors", order.groupby("fifth").size().reindex(pooled["fifth"]).to_numpy())
    return pooled


def capacity_explains(units: pd.DataFrame, tolerance_low: float) -> pd.Series:
    """Per unit, a plain reading: which of the two reasons (if any) its lower recall comes from."""
    total_covered = units["places"].sum() / units["expected_positives"].sum()
    readings = []
    for row in units.itertuples():
        parts = []
        if row.need_covered < tolerance_low * total_covered:
            parts.append("less capacity per need")
        if np.isfinite(row.ranking_ratio) and row.ranking_ratio < tolerance_low:
            parts.append("the model ranks its children worse")
        readings.append(" and ".join(parts) if parts else "")
    return pd.Series(readings, index=units.index)
