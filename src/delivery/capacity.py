"""The caseworkers' capacity: how many children one watchlist puts above its cut line.

A watchlist is one county at one as-of date. Its capacity is
`base.children_per_caseworker` x the distinct `caseworker_id` among the children it ranks,
i.e. the scored children (label observed, not already out); caseworkers whose children are
all already out add nothing. A county whose scored children have no caseworker_id gets
capacity 0. The watchlist stage and the evaluate stage both call `list_capacity`, so the
operating point evaluated is the one handed out.

Each child director gets their own list (`director_cut`): the director's
`base.children_per_caseworker` highest-risk children among their own scored children, ties
at the cut broken by child_pid (a keyed hash: reproducible, independent of names and
registration order). A county's lists therefore add up to at most its `list_capacity` (a
director with fewer children than slots leaves the rest unused), and a
director with many high-risk children no longer takes another director's slots. Children
with no caseworker_id belong to no director and are never above a cut (their county office
assigns them). Note: evaluate still measures the pooled top k of each county list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.errors import SafetynetError

LIST_KEYS = ("as_of", "county_code")  # one list per county and as-of date


def list_capacity(scored: pd.DataFrame, per_caseworker: int, keys=LIST_KEYS) -> pd.Series:
    """Capacity per list (`keys`, e.g. county_code): per_caseworker x distinct caseworker_id.

    `scored` holds only the children the lists rank (never the already-out ones) and the
    columns `keys` and `caseworker_id` (missing ids are not counted). A list with no
    caseworker gets 0. The result is an int64 Series named `capacity`, indexed by `keys`.
    """
    keys = list(keys)
    caseworkers = scored.groupby(keys, sort=True, observed=True)["caseworker_id"].nunique(
        dropna=True
    )
    return (caseworkers * int(per_caseworker)).astype("int64").rename("capacity")


def list_ids(test: pd.DataFrame, capacity: pd.Series) -> np.ndarray:
    """Per row, the position of its (as_of, county_code) list in `capacity` (the metric group)."""
    keys = pd.MultiIndex.from_arrays([test[key] for key in LIST_KEYS])
    ids = capacity.index.get_indexer(keys)
    if (ids < 0).any():
        raise SafetynetError(
            f"evaluate: {int((ids < 0).sum())} test rows belong to no capacity list; "
            "compute the capacity from the same test rows (capacity_by_list)"
        )
    return ids


def director_cut(frame: pd.DataFrame, per_caseworker: int) -> pd.DataFrame:
    """Rank each director's scored children and cut at `per_caseworker`.

    `frame` holds county_code, caseworker_id (None = no director), score and child_pid. The
    result is sorted by county, director (no director last), score (desc) and child_pid, with
    `director_rank` (1 = highest risk of that director) and `above_cut`
    (director_rank <= per_caseworker, never for children without a director).
    """
    ranked = frame.assign(_unassigned=frame["caseworker_id"].isna()).sort_values(
        ["county_code", "_unassigned", "caseworker_id", "score", "child_pid"],
        ascending=[True, True, True, False, True],
        kind="stable",
        na_position="last",
    )
    ranked = ranked.drop(columns="_unassigned").reset_index(drop=True)
    groups = ranked.groupby(["county_code", "caseworker_id"], sort=False, dropna=False)
    ranked["director_rank"] = groups.cumcount().astype("int64") + 1
    ranked["above_cut"] = (ranked["director_rank"] <= int(per_caseworker)) & ranked[
        "caseworker_id"
    ].notna()
    return ranked
