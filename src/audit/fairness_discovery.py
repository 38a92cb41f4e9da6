"""Subgroup discovery: the groups, up to two attributes deep, that the list serves worse than the
model's own probabilities promise.

Raw recall differs between groups for reasons that are not the model failing them: a county
with fewer places per need catches a smaller share, and a group whose children rarely have the
outcome (the youngest) has its few positives scattered among low scores, so even a perfect
ranking rarely lists them. Discovery therefore compares like with like: the children each list
*left off*, against what the model's calibrated probabilities promised for them. For a group g,
over its child-months pooled across the test months:

- missed_g = outcome child-months not on a list; promised_g = the sum of those child-months'
  probabilities (the outcomes the model expected among the children it passed over);
- m_g = missed_g / promised_g: 1 when the passed-over children fall out as often as promised.

The statistic is m_rest / m_g (below 1: g's passed-over children fall out more often than the
model said, relative to the rest's). Capacity and base risk change which children are passed
over and how many of them fall out, but where the model is calibrated within groups every subset
chosen by score is calibrated too, so the ratio is about 1 for every group. Where a group's
records are thin, the model under-predicts exactly the children whose need went unrecorded; they
are passed over and fall out more often than promised. (Recall divided by the promised recall,
the probabilities on the list over all of g's, reads the same way but is diluted by the listed
children, who are under-predicted too.) Every reportable group of every attribute and pair
(county x hukou included) is tested: H0 "m_rest / m_g >= the tolerance's lower edge" (a
shortfall that matters), one-sided p from the cluster bootstrap
(`src.audit.fairness_cells.shortfall_p_values`), Benjamini-Hochberg at `fairness.fdr`. A
discovered one-attribute group whose shortfall is carried by one of its discovered pair cells
(the group without that cell is not significantly short) is listed as explained by it, so the
cell that fails is named first. Discoveries are ranked by the children the shortfall costs:
(missed_g - promised_g x m_rest) / outcome child-months, x the group's children who later had
the outcome.
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
    "grouping", "group", "depth", "recall", "promised_recall", "rest_recall", "missed", "promised_missed",
    "missed_per_promised", "rest_missed_per_promised",
    "ratio", "ci_low", "ci_high", "p_value", "discovered", "explained_by", "shortfall",
    "children_with_outcome", "children_missed_by_gap",
]  # fmt: skip


def missed_per_promised(caught, positives, listed_score, score):
    """m = outcome child-months left off the lists / their promised number (sum of the passed-over
    child-months' probabilities); NaN if undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(positives) - caught) / (np.asarray(score) - listed_score)


def promise_ratio(sums: dict[str, np.ndarray], total: dict[str, np.ndarray]) -> np.ndarray:
    """m_rest / m_g for group sums `sums` inside population sums `total` (same shapes)."""
    mine = missed_per_promised(*(sums[c] for c in PROMISE_COLUMNS))
    rest = missed_per_promised(*(total[c] - sums[c] for c in PROMISE_COLUMNS))
    with np.errstate(divide="ignore", invalid="ignore"):
        return rest / mine


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
    min_promised: float = 5.0,
) -> pd.DataFrame:
    """One row per tested group (pooled cells, not the overall, reportable), discoveries first by rank.

    A group whose passed-over children were promised fewer than `min_promised` outcomes cannot
    be tested: a few more or fewer than one or two is chance, and the bootstrap cannot tell (p = 1)."""
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
    promised_missed = point["score"] - point["listed_score"]
    p_values = np.where(promised_missed >= min_promised, shortfall_p_values(ratio, ratio_samples, tolerance_low), 1.0)
    rest = {c: total[c] - point[c] for c in PROMISE_COLUMNS}
    with np.errstate(divide="ignore", invalid="ignore"):
        recall, rest_recall = point["caught"] / point["positives"], rest["caught"] / rest["positives"]
        promised = point["listed_score"] / point["score"]
    frame = pd.DataFrame({
        "grouping": index["grouping"].to_numpy()[tested], "group": index["group"].to_numpy()[tested],
        "depth": [g.count(JOIN) + 1 for g in index["grouping"].to_numpy()[tested]],
        "recall": recall, "promised_recall": promised, "rest_recall": rest_recall,
        "missed": point["positives"] - point["caught"], "promised_missed": promised_missed,
        "missed_per_promised": missed_per_promised(*(point[c] for c in PROMISE_COLUMNS)),
        "rest_missed_per_promised": missed_per_promised(*(rest[c] for c in PROMISE_COLUMNS)),
        "ratio": ratio, "ci_low": low, "ci_high": high, "p_value": p_values,
        "discovered": benjamini_hochberg(p_values, fdr) & (ratio < tolerance_low),
        "children_with_outcome": children_with_outcome[tested].astype(np.int64),
    })  # fmt: skip
    excess = frame["missed"] - frame["promised_missed"] * frame["rest_missed_per_promised"]
    frame["shortfall"] = excess / point["positives"]
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
