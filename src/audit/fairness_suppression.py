"""Small-cell suppression across every table the report can publish, counted in children.

Cells are (grouping, group, month) as in `src.audit.fairness_cells`: every audited attribute
and every pair of them, pooled and per test month. A cell is suppressed when fewer than
`fairness.min_group_size` children are in it or fewer than `fairness.min_positives` of them
later had the outcome ("primary"). Published counts add up: a pair table's cells to its
margins, the margins to the overall, the months to the pooled cell, and the groups of a month
to that month's overall. Any such equation with exactly one suppressed term would give that
term away (the margin minus the published cells), so complementary suppression hides the
smallest other published term of the equation, and repeats until no equation has exactly one
hidden term, across all tables at once (intersections against their margins included). The
overall cells are always published.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from src.audit.fairness_cells import ALL, JOIN, OVERALL, POOLED, grouping_codes, grouping_name

SIZE_COLUMNS = ["grouping", "group", "month", "children", "children_with_outcome", "child_months", "positives"]
PRIMARY, COMPLEMENTARY = "primary", "complementary"


def cell_sizes(frame: pd.DataFrame, groupings: list[tuple[str, ...]], child: np.ndarray) -> pd.DataFrame:
    """Children, children with the outcome, child-months and positive child-months per cell."""
    label = frame["label"].to_numpy(dtype=bool)
    month_codes, months = pd.factorize(frame["month"], sort=True)
    n_children = int(child.max()) + 1 if len(child) else 1
    # A child is one row of a month (the usual case): a month's children are then its rows, and
    # only the pooled cells need the distinct (cell, child) pairs.
    once_a_month = np.unique(month_codes * n_children + child).size == len(child)
    parts = []
    for attributes in [(), *[g for g in groupings if g]]:
        codes, groups = grouping_codes(frame, attributes)
        for month in (None, *range(len(months))):
            rows = slice(None) if month is None else month_codes == month
            cell, kid, pos = codes[rows], child[rows], label[rows]
            counts = np.bincount(cell, minlength=len(groups))
            positives = np.bincount(cell, weights=pos, minlength=len(groups)).astype(np.int64)
            if month is not None and once_a_month:
                children, with_outcome = counts, positives
            else:
                children = _distinct(cell, kid, n_children, len(groups))
                with_outcome = _distinct(cell[pos], kid[pos], n_children, len(groups))
            parts.append(pd.DataFrame({
                "grouping": grouping_name(attributes), "group": groups,
                "month": POOLED if month is None else months[month],
                "children": children, "children_with_outcome": with_outcome,
                "child_months": counts, "positives": positives,
            }))  # fmt: skip
    sizes = pd.concat(parts, ignore_index=True)
    return sizes[sizes["child_months"] > 0].reset_index(drop=True)[SIZE_COLUMNS]


def _distinct(cell: np.ndarray, kid: np.ndarray, n_children: int, n_groups: int) -> np.ndarray:
    """Distinct children per cell."""
    return np.bincount(np.unique(cell * n_children + kid) // n_children, minlength=n_groups)


def equations(sizes: pd.DataFrame, attributes: tuple[str, ...]) -> list[list[tuple[str, str, str]]]:
    """Every additive identity between published cells: [total, part, part, ...] (keys)."""
    keys = set(sizes[["grouping", "group", "month"]].itertuples(index=False, name=None))
    months = sorted(set(sizes["month"]) - {POOLED})
    by_grouping: dict[tuple[str, str], list[str]] = {}
    for grouping, group, month in sorted(keys):
        by_grouping.setdefault((grouping, month), []).append(group)
    eqs = []
    for (grouping, month), groups in by_grouping.items():
        if grouping == OVERALL:
            continue
        parts = [(grouping, g, month) for g in groups]
        if JOIN not in grouping:  # margins add up to the overall
            eqs.append([(OVERALL, ALL, month), *parts])
        else:  # pair cells add up to each margin
            a, b = grouping.split(JOIN)
            for side, attribute in enumerate((a, b)):
                rows: dict[str, list] = {}
                for key in parts:
                    rows.setdefault(key[1].split(JOIN)[side], []).append(key)
                eqs += [[(attribute, value, month), *cells] for value, cells in sorted(rows.items())]
        if month == POOLED:  # the months add up to the pooled cell
            for g in groups:
                split = [(grouping, g, m) for m in months if (grouping, g, m) in keys]
                eqs.append([(grouping, g, POOLED), *split])
    # a margin or pooled cell with no row (no child-month) in a month is a published zero
    return [[k for k in eq if k in keys or k[0] == OVERALL] for eq in eqs]


def suppress(sizes: pd.DataFrame, min_children: int, min_with_outcome: int, attributes) -> pd.DataFrame:
    """sizes + `suppressed` ("" | "primary" | "complementary"), with no equation giving a cell away."""
    keys = list(sizes[["grouping", "group", "month"]].itertuples(index=False, name=None))
    small = (sizes["children"] < min_children) | (sizes["children_with_outcome"] < min_with_outcome)
    reason = {k: PRIMARY for k, s in zip(keys, small, strict=True) if s and k[0] != OVERALL}
    children = dict(zip(keys, sizes["children"], strict=True))
    eqs = equations(sizes, attributes)
    changed = True
    while changed:
        changed = False
        for eq in eqs:
            hidden = [k for k in eq if k in reason]
            if len(hidden) != 1:
                continue
            candidates = [k for k in eq if k not in reason and k[0] != OVERALL]
            if candidates:
                pick = min(candidates, key=lambda k: (children[k], k))
                reason[pick] = COMPLEMENTARY
                changed = True
    out = sizes.copy()
    out["suppressed"] = [reason.get(k, "") for k in keys]
    return out


def all_groupings(attributes: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every audited attribute and every pair of them (the cells the audit can publish)."""
    return [(a,) for a in attributes] + list(itertools.combinations(attributes, 2))
