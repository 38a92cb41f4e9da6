"""The caseworkers' capacity: how many children one watchlist puts above its cut line.

A watchlist is one county at one as-of date. Its capacity is
`base.children_per_caseworker` x the distinct `caseworker_id` among the children it ranks,
i.e. the scored children (label observed, not already out); caseworkers whose children are
all already out add nothing. A county whose scored children have no caseworker_id gets
capacity 0. The watchlist stage and the evaluate stage both call `list_capacity`, so the
operating point evaluated is the one handed out.
"""

from __future__ import annotations

import pandas as pd

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
