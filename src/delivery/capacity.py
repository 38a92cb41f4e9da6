"""The child directors' capacity: how many children each list puts above its cut line.

A list is one child director (`caseworker_id`) at one as-of date (LIST_KEYS): their own
`base.children_per_caseworker` highest-risk children among the children they look after
who are scored (label observed, not already out). Children with no caseworker_id form a
list of capacity 0 per county (NO_DIRECTOR). A county's capacity, shown on its page, is
`base.children_per_caseworker` x its distinct directors (`list_capacity` with
keys=["county_code"]). The evaluate stage measures exactly these lists (`list_capacity`,
`list_ids`), and the watchlist stage cuts them (`director_cut`), so the operating point
evaluated is the one handed out.

Each child director gets their own list (`director_cut`): the director's
`base.children_per_caseworker` highest-risk children among their own scored children, ties
at the cut broken by child_pid (a keyed hash: reproducible, independent of names and
registration order). A county's lists therefore add up to at most its `list_capacity` (a
director with fewer children than slots leaves the rest unused), and a
director with many high-risk children no longer takes another director's slots. Children
with no caseworker_id belong to no director and are never above a cut (their county office
assigns them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.errors import SafetynetError

LIST_KEYS = ("as_of", "county_code", "caseworker_id")  # one list per director and as-of date
NO_DIRECTOR = ""  # the caseworker_id of children no director looks after (capacity 0)


def with_directors(frame: pd.DataFrame, children: pd.DataFrame) -> pd.DataFrame:
    """`frame` plus each child's caseworker_id from `children` (NO_DIRECTOR when missing)."""
    merged = frame.merge(children[["child_pid", "caseworker_id"]], on="child_pid", how="left",
                         validate="many_to_one")  # fmt: skip
    ids = merged["caseworker_id"].astype("object")
    return merged.assign(caseworker_id=ids.where(ids.notna(), NO_DIRECTOR).astype(str))


def list_capacity(scored: pd.DataFrame, per_caseworker: int, keys=LIST_KEYS) -> pd.Series:
    """Capacity per list. With the default LIST_KEYS: per_caseworker for each director's list,
    0 for the NO_DIRECTOR list. With other keys (e.g. ["county_code"]): per_caseworker x the
    distinct caseworker_id (missing or NO_DIRECTOR ids not counted).

    `scored` holds only the children the lists rank (never the already-out ones) and the
    columns `keys` and `caseworker_id`. The result is an int64 Series named `capacity`,
    indexed by `keys`.
    """
    keys = list(keys)
    ids = scored["caseworker_id"].astype("object")
    scored = scored.assign(caseworker_id=ids.where(ids != NO_DIRECTOR))
    if "caseworker_id" in keys:
        frame = scored.assign(caseworker_id=scored["caseworker_id"].fillna(NO_DIRECTOR).astype(str))
        has = (frame["caseworker_id"] != NO_DIRECTOR).groupby([frame[k] for k in keys], sort=True).any()
        return (has.astype("int64") * int(per_caseworker)).rename("capacity")
    caseworkers = scored.groupby(keys, sort=True, observed=True)["caseworker_id"].nunique(
        dropna=True
    )
    return (caseworkers * int(per_caseworker)).astype("int64").rename("capacity")


def list_ids(test: pd.DataFrame, capacity: pd.Series) -> np.ndarray:
    """Per row, the position of its LIST_KEYS list in `capacity` (the metric group); `test`
    carries caseworker_id as `with_directors` gives it."""
    if "caseworker_id" not in test.columns:
        raise SafetynetError("evaluate: test rows have no caseworker_id; attach it (with_directors)")
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

    `frame` holds county_code, caseworker_id (None or NO_DIRECTOR = no director), score and child_pid. The
    result is sorted by county, director (no director last), score (desc) and child_pid, with
    `director_rank` (1 = highest risk of that director) and `above_cut`
    (director_rank <= per_caseworker, never for children without a director). An optional
    `review_priority` column (src.delivery.review_loop: 1 escalated, 0, -1 cooled down) sorts
    before the score, and a negative priority is never above the cut; without it, risk alone.
    """
    ids = frame["caseworker_id"].astype("object")
    priority = frame["review_priority"] if "review_priority" in frame else pd.Series(0, index=frame.index)
    ranked = frame.assign(caseworker_id=ids.where(ids != NO_DIRECTOR), _unassigned=ids.isna() | (ids == NO_DIRECTOR),
                          _priority=priority.astype("int64"))  # fmt: skip
    ranked = ranked.sort_values(
        ["county_code", "_unassigned", "caseworker_id", "_priority", "score", "child_pid"],
        ascending=[True, True, True, False, False, True],
        kind="stable",
        na_position="last",
    )
    ranked = ranked.reset_index(drop=True)
    groups = ranked.groupby(["county_code", "caseworker_id"], sort=False, dropna=False)
    ranked["director_rank"] = groups.cumcount().astype("int64") + 1
    ranked["above_cut"] = (
        (ranked["director_rank"] <= int(per_caseworker)) & ranked["caseworker_id"].notna() & (ranked["_priority"] >= 0)
    )
    return ranked.drop(columns=["_unassigned", "_priority"])
