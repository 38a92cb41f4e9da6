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
(county x hukou included) is tested: H0 "m_rest / m_g >= 1" (no shortfall), one-sided p from
the cluster bootstrap (`src.audit.fairness_cells.shortfall_p_values`), Benjamini-Hochberg at
`fairness.fdr`; a rejected group is a discovery when its point ratio is also below the
tolerance's lower edge (a shortfall that matters). (Testing H0 at the edge itself asked a
cell of ~130 children with the outcome for a ratio near 0.55 before the first of ~240 tests
could pass.) A discovered group whose shortfall is carried by another discovered group (the
part outside it is not significantly short, and the shortfall sits in the other one: a pair
cell inside its margin, or an overlapping pair such as the county's han children when its
rural children are failed) is listed as explained by it, so the group that fails is named
first. Discoveries are ranked by the children the shortfall costs:
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

NO_SHORTFALL = 1.0  # the null: the group's passed-over children fall out as the rest's do
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
    p_values = np.where(promised_missed >= min_promised, shortfall_p_values(ratio, ratio_samples, NO_SHORTFALL), 1.0)
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
    frame["explained_by"] = _explanations(cells, frame, fdr)
    frame["_rank"] = np.where(frame["discovered"] & (frame["explained_by"] == ""), 0,
                              np.where(frame["discovered"], 1, 2))  # fmt: skip
    frame = frame.sort_values(
        ["_rank", "children_missed_by_gap", "grouping", "group"], ascending=[True, False, True, True]
    )
    return frame.drop(columns="_rank").reset_index(drop=True)[DISCOVERY_COLUMNS]


def _explanations(cells: Cells, frame: pd.DataFrame, fdr: float) -> list[str]:
    """For each discovered group A, the discovered group B that carries its shortfall, if any.

    B explains A when they share children, the part of A outside B is not significantly short
    at `fdr`, and B holds the shortfall rather than A: B lies inside A (a pair cell inside its
    margin), or B's part outside A is more significantly short than A's part outside B. So a margin is
    explained by its failing cell, and an overlapping pair (the county's han children, when the
    county's rural children are failed) by the cell where the shortfall sits, not the reverse."""
    position = cells.position()
    found = frame.index[frame["discovered"]]
    atoms = {i: cells.member[position[(frame.at[i, "grouping"], frame.at[i, "group"], POOLED)]].indices
             for i in found}  # fmt: skip
    explained = [""] * len(frame)
    for a in found:
        for b in sorted(found, key=lambda i: frame.at[i, "p_value"]):
            if b == a or not np.isin(atoms[a], atoms[b]).any():
                continue
            a_out, b_out = np.setdiff1d(atoms[a], atoms[b]), np.setdiff1d(atoms[b], atoms[a])
            if not len(a_out):
                continue  # A lies inside B: the narrower group is the finding
            a_p = part_p_value(cells, a_out)
            if a_p > fdr and (not len(b_out) or part_p_value(cells, b_out) < a_p):
                explained[a] = f"{frame.at[b, 'grouping']}={frame.at[b, 'group']}"
                break
    return explained


def part_p_value(cells: Cells, atoms: np.ndarray) -> float:
    """One-sided p-value (H0: no shortfall) of m_rest / m_part for the children of some atoms."""
    overall = cells.position()[(OVERALL, ALL, POOLED)]
    stats = {}
    for kind in ("point", "samples"):
        data = cells.atom_point if kind == "point" else cells.atom_samples
        part = {c: data[c][..., atoms].sum(axis=-1)[..., None] for c in PROMISE_COLUMNS}
        stats[kind] = promise_ratio(part, _sums(cells, kind, [overall]))
    return float(shortfall_p_values(stats["point"], stats["samples"], NO_SHORTFALL)[0])
