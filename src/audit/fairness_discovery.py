"""Subgroup discovery: the groups, up to two attributes deep, that the list serves worse than the
model's own probabilities promise.

Raw recall differs between groups for reasons that are not the model failing them: a county
with fewer places per need catches a smaller share, and a group whose children rarely have the
outcome (the youngest) has its few positives scattered among low scores, so even a perfect
ranking rarely lists them. Discovery therefore compares like with like. For a group g, over its
child-months pooled across the test months:

- recall_g = outcome child-months on a list / outcome child-months;
- promised recall e_g = the calibrated probabilities on the list / all of g's probabilities,
  the recall the model expects from the same lists and places;
- r_g = recall_g / e_g, how much of its promise the list keeps for g.

The statistic is r_g / r_rest (the rest of the population). Capacity and base risk enter both
recall and promise, so they cancel: where the model is calibrated within groups, the ratio is
about 1 for every group. Where a group's records are thin, the model under-predicts the
children it does not list, so they fall out more often than promised and the ratio drops.
Every reportable group of every attribute and pair (county x hukou included) is tested:
H0 "r_g / r_rest >= the tolerance's lower edge" (a shortfall that matters), one-sided p from
the cluster bootstrap (`src.audit.fairness_cells.shortfall_p_values`), Benjamini-Hochberg at
`fairness.fdr`. A discovered one-attribute group whose shortfall is carried by one of its
discovered pair cells (the group without that cell is not significantly short) is listed as
explained by it, so the cell that fails is named first. Discoveries are ranked by the children
the shortfall costs: (e_g x r_rest - recall_g) x the group's children who later had the outcome.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.audit.fairness_cells import (
    ALL,
    JOIN,
    OVERALL,
    POOLED,
    Cells,
    benjamini_hochberg,
    interval,
    shortfall_p_values,
)

PROMISE_COLUMNS = ("caught", "positives", "listed_score", "score")  # the sums the statistic needs
DISCOVERY_COLUMNS = [
    "grouping", "group", "depth", "recall", "promised_recall", "kept", "rest_recall", "rest_kept",
    "ratio", "ci_low", "ci_high", "p_value", "discovered", "explained_by", "shortfall",
    "children_with_outcome", "children_missed_by_gap",
]  # fmt: skip


def kept_promise(caught, positives, listed_score, score):
    """r = recall / promised recall = (caught / positives) / (listed_score / score); NaN if undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(caught) / positives) / (np.asarray(listed_score) / score)


def promise_ratio(sums: dict[str, np.ndarray], total: dict[str, np.ndarray]) -> np.ndarray:
    """r_g / r_rest for group sums `sums` inside population sums `total` (same shapes)."""
    mine = kept_promise(*(sums[c] for c in PROMISE_COLUMNS))
    rest = kept_promise(*(total[c] - sums[c] for c in PROMISE_COLUMNS))
    with np.errstate(divide="ignore", invalid="ignore"):
        return mine / rest


def _sums(cells: Cells, kind: str, positions) -> dict[str, np.ndarray]:
    data = cells.point if kind == "point" else cells.samples
    return {c: data[c][..., positions] for c in PROMISE_COLUMNS}


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
    overall = cells.position()[(OVERALL, ALL, POOLED)]
    point, total = _sums(cells, "point", tested), _sums(cells, "point", [overall])
    samples, total_samples = _sums(cells, "samples", tested), _sums(cells, "samples", [overall])
    ratio = promise_ratio(point, total)
    ratio_samples = promise_ratio(samples, total_samples)
    low, high = interval(ratio_samples, level)
    p_values = shortfall_p_values(ratio, ratio_samples, tolerance_low)
    rest = {c: total[c] - point[c] for c in PROMISE_COLUMNS}
    with np.errstate(divide="ignore", invalid="ignore"):
        recall, rest_recall = point["caught"] / point["positives"], rest["caught"] / rest["positives"]
        promised = point["listed_score"] / point["score"]
    frame = pd.DataFrame({
        "grouping": index["grouping"].to_numpy()[tested], "group": index["group"].to_numpy()[tested],
        "depth": [g.count(JOIN) + 1 for g in index["grouping"].to_numpy()[tested]],
        "recall": recall, "promised_recall": promised, "kept": kept_promise(*(point[c] for c in PROMISE_COLUMNS)),
        "rest_recall": rest_recall, "rest_kept": kept_promise(*(rest[c] for c in PROMISE_COLUMNS)),
        "ratio": ratio, "ci_low": low, "ci_high": high, "p_value": p_values,
        "discovered": benjamini_hochberg(p_values, fdr) & (ratio < tolerance_low),
        "children_with_outcome": children_with_outcome[tested].astype(np.int64),
    })  # fmt: skip
    frame["shortfall"] = frame["promised_recall"] * frame["rest_kept"] - frame["recall"]
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
            if remainder_p(cells, parent, child, tolerance_low) > fdr:
                explained[i] = f"{cell.grouping}={cell.group}"
                break
    return explained


def remainder_p(cells: Cells, parent: int, child: int, tolerance_low: float) -> float:
    """p-value of the shortfall test for (parent minus child) against everyone else."""
    overall = cells.position()[(OVERALL, ALL, POOLED)]
    stats = {}
    for kind in ("point", "samples"):
        a, b, total = (_sums(cells, kind, [i]) for i in (parent, child, overall))
        stats[kind] = promise_ratio({c: a[c] - b[c] for c in PROMISE_COLUMNS}, total)
    return float(shortfall_p_values(stats["point"], stats["samples"], tolerance_low)[0])
