"""Subgroup discovery: the groups, up to two attributes deep, whose recall at the cut the list fails.

Every reportable group of every audited attribute and of every pair of them (county x hukou
included) is tested against the rest of the population, pooled over the test months:
H0 "its recall is at least the tolerance's lower edge x the rest's recall" (a shortfall that
matters, not any difference), with a one-sided p-value from the cluster bootstrap
(`src.audit.fairness_cells.shortfall_p_values`). Benjamini-Hochberg keeps the false discovery
rate at `fairness.fdr` over all the tests. A discovered one-attribute group whose shortfall is
carried by one of its discovered pair cells (the rest of the group, without that cell, is not
significantly short) is listed as explained by it, so the cell that fails is named first.
Discoveries are ranked by shortfall x children affected: the recall gap to the rest times the
group's children who later had the outcome, roughly how many of them the gap costs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.audit.fairness_cells import (
    JOIN,
    OVERALL,
    POOLED,
    Cells,
    benjamini_hochberg,
    rate_and_reference,
    ratio_with_interval,
    shortfall_p_values,
)

DISCOVERY_COLUMNS = [
    "grouping", "group", "depth", "recall", "rest_recall", "ratio", "ci_low", "ci_high",
    "p_value", "discovered", "explained_by", "shortfall", "children_with_outcome", "children_missed_by_gap",
]  # fmt: skip


def discover(
    cells: Cells,
    reportable: np.ndarray,
    children_with_outcome: np.ndarray,
    tolerance_low: float,
    fdr: float,
    level: float,
) -> pd.DataFrame:
    """One row per tested group (pooled cells, not the overall, reportable), discoveries first by rank."""
    index = cells.index
    tested = np.flatnonzero(
        (index["month"] == POOLED).to_numpy() & (index["grouping"] != OVERALL).to_numpy() & reportable
    )
    if len(tested) == 0:
        return pd.DataFrame(columns=DISCOVERY_COLUMNS)
    rest = np.full(len(index), -1)
    rates = rate_and_reference(cells, "caught", "positives", rest)
    ratios = ratio_with_interval(rates, level)
    p_values = shortfall_p_values(rates, tolerance_low)
    rejected = benjamini_hochberg(p_values[tested], fdr)
    frame = pd.DataFrame({
        "grouping": index["grouping"].to_numpy()[tested], "group": index["group"].to_numpy()[tested],
        "depth": [g.count(JOIN) + 1 for g in index["grouping"].to_numpy()[tested]],
        "recall": rates["point"][tested], "rest_recall": rates["reference_point"][tested],
        "ratio": ratios["ratio"][tested], "ci_low": ratios["ci_low"][tested], "ci_high": ratios["ci_high"][tested],
        "p_value": p_values[tested], "discovered": rejected & (ratios["ratio"][tested] < tolerance_low),
        "children_with_outcome": children_with_outcome[tested].astype(np.int64),
    })  # fmt: skip
    frame["shortfall"] = frame["rest_recall"] - frame["recall"]
    frame["children_missed_by_gap"] = frame["shortfall"].clip(lower=0) * frame["children_with_outcome"]
    frame["explained_by"] = _explanations(cells, frame, tolerance_low, fdr)
    frame["_rank"] = np.where(frame["discovered"] & (frame["explained_by"] == ""), 0,
                              np.where(frame["discovered"], 1, 2))  # fmt: skip
    frame = frame.sort_values(
        ["_rank", "children_missed_by_gap", "grouping", "group"], ascending=[True, False, True, True]
    )
    return frame.drop(columns="_rank").reset_index(drop=True)[DISCOVERY_COLUMNS]


def _explanations(cells: Cells, frame: pd.DataFrame, tolerance_low: float, fdr: float) -> list[str]:
    """For each discovered one-attribute group, the discovered pair cell inside it that carries
    its shortfall: without that cell, the rest of the group is not significantly short at `fdr`."""
    position = cells.position()
    overall = position[(OVERALL, "all", POOLED)]
    found = frame[frame["discovered"]]
    cells_found = found[found["depth"] == 2].sort_values("children_missed_by_gap", ascending=False)
    explained = [""] * len(frame)
    for i, row in frame.iterrows():
        if not row["discovered"] or row["depth"] != 1:
            continue
        for cell in cells_found.itertuples():
            attributes, values = cell.grouping.split(JOIN), cell.group.split(JOIN)
            if (row["grouping"], row["group"]) not in zip(attributes, values, strict=True):
                continue
            parent = position[(row["grouping"], row["group"], POOLED)]
            child = position[(cell.grouping, cell.group, POOLED)]
            if _remainder_p(cells, parent, child, overall, tolerance_low) > fdr:
                explained[i] = f"{cell.grouping}={cell.group}"
                break
    return explained


def _remainder_p(cells: Cells, parent: int, child: int, overall: int, tolerance_low: float) -> float:
    """p-value of the shortfall test for (parent minus child) against everyone else."""
    rates = {}
    for kind, data in (("point", cells.point), ("samples", cells.samples)):
        caught = data["caught"][..., parent] - data["caught"][..., child]
        positives = data["positives"][..., parent] - data["positives"][..., child]
        rest_caught = data["caught"][..., overall] - caught
        rest_positives = data["positives"][..., overall] - positives
        shape = (1,) if kind == "point" else (-1, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            rates[kind] = np.reshape(caught / positives, shape)
            rates[f"reference_{kind}"] = np.reshape(rest_caught / rest_positives, shape)
    return float(shortfall_p_values(rates, tolerance_low)[0])
