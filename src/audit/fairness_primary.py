"""The one primary criterion: recall at the watchlist cut, per group, pooled and per test month.

Each group is compared with its reference: by default the rest of the population
(`fairness.reference: rest`), or everyone (`overall`, as fairlearn's `ratio(method='to_overall')`),
or a group named per attribute in `fairness.reference_groups`. The rest is the default because
a reference *group* can itself be the one the list fails (a large under-recorded county made
every other county look "better"), and the overall rate contains the group itself. Verdicts
have a direction (`src.audit.fairness_cells.verdict`). The point estimates per month come from
fairlearn's MetricFrame with the month as control feature; the intervals from the cluster
bootstrap. A disparity persists when the group is served worse pooled and its recall ratio is
below the tolerance's lower edge in every test month.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from src.audit.fairness_cells import (
    ALL,
    OVERALL,
    POOLED,
    SERVED_WORSE,
    Cells,
    rate_and_reference,
    ratio_with_interval,
    verdict,
)
from src.config import Fairness

PRIMARY_COLUMNS = [
    "attribute", "group", "month", "reference", "recall", "reference_recall", "ratio", "ci_low",
    "ci_high", "verdict", "positives", "caught",
]  # fmt: skip


def choose_references(cells: Cells, shown: list[str], reportable: set, fairness: Fairness) -> dict:
    """Per attribute: {"group": name | "rest" | "overall", "source": ..., "why": ...}."""
    references = {}
    for attribute in shown:
        wanted = fairness.reference_groups.get(attribute)
        if wanted is not None and (attribute, wanted, POOLED) in reportable:
            references[attribute] = {"group": wanted, "source": "params",
                                     "why": "named in fairness.reference_groups"}  # fmt: skip
            continue
        why = {"rest": "each group against everyone not in it, so no group, however large, "
                       "sets the standard or hides in it",  # fmt: skip
               "overall": "each group against everyone (fairlearn's to_overall)"}[fairness.reference]
        references[attribute] = {"group": fairness.reference, "source": "fairness.reference", "why": why}
        if wanted is not None:
            references[attribute]["note"] = (
                f"configured reference '{wanted}' is absent or suppressed; {fairness.reference} is used"
            )
    return references


def reference_positions(cells: Cells, references: dict) -> np.ndarray:
    """Per cell, its reference cell's position (-1 = the rest)."""
    position = cells.position()
    out = np.full(len(cells.index), -1)
    for i, (grouping, _, month) in enumerate(cells.index.itertuples(index=False, name=None)):
        ref = references.get(grouping, {"group": "rest"})["group"]
        if ref == "overall":
            out[i] = position[(OVERALL, ALL, month)]
        elif ref != "rest":
            out[i] = position.get((grouping, ref, month), -1)
    return out


def primary_table(
    cells: Cells, references: dict, reportable: set, tolerance: tuple, level: float
) -> pd.DataFrame:
    """Recall vs reference with interval and verdict per reportable group of each shown attribute,
    pooled (month "") and per month; the reference group itself is not compared with itself."""
    rates = rate_and_reference(cells, "caught", "positives", reference_positions(cells, references))
    ratios = ratio_with_interval(rates, level)
    rows = []
    for i, (grouping, group, month) in enumerate(cells.index.itertuples(index=False, name=None)):
        if grouping not in references or (grouping, group, month) not in reportable:
            continue
        ref = references[grouping]["group"]
        if group == ref:
            continue
        ratio, low, high = (float(ratios[k][i]) for k in ("ratio", "ci_low", "ci_high"))
        rows.append({
            "attribute": grouping, "group": group, "month": month, "reference": ref,
            "recall": float(rates["point"][i]), "reference_recall": float(rates["reference_point"][i]),
            "ratio": ratio, "ci_low": low, "ci_high": high, "verdict": verdict(ratio, low, high, tolerance),
            "positives": int(round(cells.point["positives"][i])), "caught": int(round(cells.point["caught"][i])),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=PRIMARY_COLUMNS)


def persistent(primary: pd.DataFrame, tolerance_low: float) -> pd.DataFrame:
    """(attribute, group) served worse pooled whose ratio is below `tolerance_low` in every month."""
    pooled = primary[(primary["month"] == POOLED) & (primary["verdict"] == SERVED_WORSE)]
    monthly = primary[primary["month"] != POOLED]
    months = sorted(monthly["month"].unique())
    rows = []
    for row in pooled.itertuples():
        mine = monthly[(monthly["attribute"] == row.attribute) & (monthly["group"] == row.group)]
        if len(mine) == len(months) and len(months) and (mine["ratio"] < tolerance_low).all():
            rows.append({"attribute": row.attribute, "group": row.group, "months": len(months)})
    return pd.DataFrame(rows, columns=["attribute", "group", "months"])


def _recall(y_true, y_pred, sample_weight) -> float:
    positives = np.asarray(y_true) == 1
    weight = np.asarray(sample_weight)[positives]
    return float(np.asarray(y_pred)[positives] @ weight / weight.sum()) if weight.sum() else float("nan")


def _selection_rate(y_true, y_pred, sample_weight) -> float:
    return float(np.asarray(y_pred) @ np.asarray(sample_weight) / np.sum(sample_weight))


def monthly_points(frame: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    """Recall and selection rate per (month, group) from fairlearn's MetricFrame (control feature:
    month). The rows are first collapsed to (group, month, label, selected) with their counts as
    sample weights: the same values, without fairlearn's per-row cost at a million children."""
    parts = []
    for attribute in attributes:
        compact = (frame.assign(selected=frame["selected"].astype(float))
                   .groupby([attribute, "month", "label", "selected"], sort=True).size()
                   .rename("weight").reset_index())  # fmt: skip
        weight = compact["weight"].to_numpy(dtype=float)
        mf = MetricFrame(
            metrics={"recall": _recall, "selection_rate": _selection_rate},
            y_true=compact["label"].to_numpy(), y_pred=compact["selected"].to_numpy(),
            sensitive_features=pd.Series(compact[attribute].to_numpy(), name="group"),
            control_features=pd.Series(compact["month"].to_numpy(), name="month"),
            sample_params={"recall": {"sample_weight": weight}, "selection_rate": {"sample_weight": weight}},
        )  # fmt: skip
        parts.append(mf.by_group.reset_index().assign(attribute=attribute))
    columns = ["attribute", "group", "month", "recall", "selection_rate"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
