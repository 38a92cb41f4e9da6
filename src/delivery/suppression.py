"""Small-cell suppression for published counts, by the fairness report's rule.

The rule of `src.audit.fairness_audit.split_suppressed` (`fairness.min_group_size`): a cell
counting fewer than `min_size` children is not published; when exactly one cell of a group
(here: a county) is suppressed, the smallest other published cell of that group is suppressed
too ("complementary"), so that no suppressed count can be recovered by subtraction from the
group's other figures. The fairness rule's second threshold (`min_positives`) guards rates
estimated from few outcomes; the services report estimates no rate, so it does not apply.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COMPLEMENTARY = "complementary"


def suppress(table: pd.DataFrame, size: str, group: str, counts: list[str], min_size: int) -> pd.DataFrame:
    """`table` with `counts` blanked (missing) where suppressed and a `suppressed` column giving
    the rule ('' when published). A cell's size is its `size` column."""
    small = table[size] < min_size
    reason = pd.Series(np.where(small, f"fewer than {min_size} children", ""), index=table.index, dtype=object)
    for _, rows in table.groupby(group, sort=True).groups.items():
        hidden = small.loc[rows]
        if int(hidden.sum()) == 1 and (~hidden).any():
            shown = table.loc[rows][~hidden.to_numpy()]
            smallest = shown.sort_values([size], kind="stable").index[0]
            reason.loc[smallest] = COMPLEMENTARY
    out = table.copy()
    blank = reason.ne("")
    for column in counts:
        out[column] = out[column].astype("Int64").mask(blank)
    out["suppressed"] = reason
    return out
