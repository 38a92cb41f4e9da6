"""Row accumulation for the generated tables: typed numpy chunks, appended month by month."""

from __future__ import annotations

import numpy as np

# Internal column kinds; `child` is an index into the registry, codes index contract tuples.
TABLE_COLUMNS = {
    "welfare_events": ("child", "date", "event_type", "benefit", "amount_cny", "reason"),
    "school_enrollment": ("child", "date", "school", "event_type", "school_type", "grade"),
    "school_absences": ("child", "date", "school", "absence_type", "days"),
    "medical_events": (
        "child",
        "date",
        "event_type",
        "diagnosis_group",
        "cost_cny",
        "out_of_pocket_cny",
    ),
    "casework_visits": ("child", "date", "mode", "concerns"),
    "protection_events": ("child", "date", "event_type"),
}


class Rows:
    """One table's rows as lists of column chunks; `protected` rows define outcomes or status."""

    def __init__(self, columns: tuple[str, ...]):
        self.columns = columns
        self.chunks: dict[str, list[np.ndarray]] = {c: [] for c in (*columns, "protected")}

    def add(self, protected: bool = False, **cols) -> None:
        n = len(cols["child"])
        if n == 0:
            return
        for c in self.columns:
            value = cols.get(c, -1)
            self.chunks[c].append(np.broadcast_to(value, (n, *np.shape(value)[1:])).copy())
        self.chunks["protected"].append(np.full(n, protected))

    def frame(self) -> dict[str, np.ndarray]:
        """Concatenated columns, sorted stably by child then date."""
        out = {c: np.concatenate(v) if v else np.empty(0) for c, v in self.chunks.items()}
        if not self.chunks["child"]:
            return {c: np.empty(0, dtype=np.int64) for c in self.chunks}
        order = np.lexsort((out["date"], out["child"]))
        return {c: v[order] for c, v in out.items()}


def keep_rows(frame: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    return {c: v[keep] for c, v in frame.items()}
