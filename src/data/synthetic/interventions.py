"""Interventions in the synthetic world: a referral lowers a child's hazard from a month on.

The table has one row per intervention: `child_id`, `month` (any date in it) and `hazard_ratio`
(> 0). From that month's start the child's hazard multiplier h, which scales the moves towards
crisis and, through sqrt(h), the monthly outcome probability (src/data/synthetic/latent.py), is
multiplied by the ratio; several rows of one child multiply.

Common random numbers. The simulation draws every child from one stream, so a treated child's
changed life would shift every later draw, and with them every other child. `intervened_world`
therefore simulates the world twice with the same seed, without and with the interventions, and
splices the two child by child: an untreated child keeps the untreated world's rows (byte for
byte), a treated child takes the treated world's. The two worlds draw the same numbers up to the
table's earliest month, so a treated child's rows change only from there (from the earliest
month of the table, for every treated child: give one month per regeneration). Where the worlds
part is found by comparing their accumulated rows chunk by chunk. The registry's recorded
changes are spliced by date (a treated child's from that month are redrawn and re-chained).
Two things are not the world's and do move: the injected defects (`synthetic.defects`) are
drawn over whole tables, so other rows get them when a table's length changes (set the shares
to 0 for a row-exact comparison); and a treated child's p_true counts the intervention from
its month on, also at earlier as-of dates (the synthetic world knows the referral ahead):
compare a review with the untreated world's truth, the export the list came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from src.data import generate
from src.data.synthetic.registry import Registry
from src.data.synthetic.registry_changes import CATEGORY, DISABILITY, GUARDIAN, Changes
from src.errors import SafetynetError

COLUMNS = ("child_id", "month", "hazard_ratio")


@dataclass(frozen=True)
class HazardRatios:
    """The interventions as registry indices: from `month` on, child's log hazard + `log`."""

    child: np.ndarray  # int64 index into the registry
    month: np.ndarray  # datetime64[M]
    log: np.ndarray
    n: int

    def log_ratio(self, month_start) -> np.ndarray:
        """Each child's summed log hazard ratio of the interventions started by this month."""
        on = self.month <= np.datetime64(month_start, "M")
        return np.bincount(self.child[on], weights=self.log[on], minlength=self.n)

    @property
    def treated(self) -> np.ndarray:
        return np.bincount(self.child, minlength=self.n) > 0


def hazard_ratios(table: pd.DataFrame):
    """Check the table; return `registry -> HazardRatios` (what `generate.simulate` takes)."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise SafetynetError(
            f"interventions: no column {missing[0]} (expected {', '.join(COLUMNS)})"
        )
    ratio = pd.to_numeric(table["hazard_ratio"], errors="coerce").to_numpy(dtype=float)
    month = pd.to_datetime(table["month"], errors="coerce")
    if not (np.isfinite(ratio) & (ratio > 0)).all() or month.isna().any():
        raise SafetynetError(
            "interventions: every hazard_ratio must be a number > 0 and every month a date"
        )

    def of(registry: Registry) -> HazardRatios:
        index = pd.Series(np.arange(registry.n), index=registry.child_id)
        child = index.reindex(table["child_id"].astype(str).to_numpy())
        if child.isna().any():
            raise SafetynetError(f"interventions: unknown child_id {child.index[child.isna()][0]}")
        months = month.to_numpy().astype("datetime64[M]")
        return HazardRatios(child.to_numpy(dtype=np.int64), months, np.log(ratio), registry.n)

    return of


def intervened_world(params, table: pd.DataFrame) -> tuple:
    """`generate.simulated_world` with the interventions, spliced onto the untreated world."""
    untreated = generate.simulated_world(params)
    if table.empty:
        return untreated
    return splice(untreated, generate.simulated_world(params, hazard_ratios(table)))


def run(out_dir, params, table: pd.DataFrame) -> dict:
    """The synthetic export with the interventions (`generate.run` on `intervened_world`)."""
    return generate.run(out_dir, params, intervened_world(params, table))


def splice(untreated: tuple, treated: tuple) -> tuple:
    """(registry, model, sim, changes): treated children's lives from `treated`, the rest from `untreated`."""
    registry, model, sim, changes = treated
    _, _, base, kept = untreated
    mask = model.hazard.treated
    for name, rows in sim.tables.items():
        rows.chunks = spliced_chunks(base.tables[name].chunks, rows.chunks, mask)
    sim.outcomes.chunks = spliced_chunks(base.outcomes.chunks, sim.outcomes.chunks, mask)
    keys = spliced_chunks({"key": base.blocked_absence_keys}, {"key": sim.blocked_absence_keys}, mask,
                          child=lambda c: c["key"] >> 20)  # school.absence_key packs the child above bit 20  # fmt: skip
    sim.blocked_absence_keys = keys["key"]
    sim.states[:, ~mask] = base.states[:, ~mask]
    sim.end[~mask] = base.end[~mask]
    cut = model.hazard.month.min().astype("datetime64[D]")
    return registry, model, sim, spliced_changes(kept, changes, mask, cut, registry)


def spliced_chunks(a: dict, b: dict, mask: np.ndarray, child=lambda c: c["child"]) -> dict:
    """Row chunks (column -> list of arrays): b's common prefix with a, then b's later rows of the
    masked children and a's of the others. A child's rows keep their order (one source each)."""
    names = list(b)
    same = 0
    while same < min(len(a[names[0]]), len(b[names[0]])) and all(
        a[c][same].shape == b[c][same].shape and a[c][same].tobytes() == b[c][same].tobytes()
        for c in names
    ):
        same += 1
    out = {c: list(b[c][:same]) for c in names}
    for source, side in ((b, True), (a, False)):
        for j in range(same, len(source[names[0]])):
            keep = mask[child({c: source[c][j] for c in names}).astype(np.int64)] == side
            for c in names:
                out[c].append(source[c][j][keep])
    return out


def spliced_changes(
    kept: Changes, redrawn: Changes, mask: np.ndarray, cut, registry: Registry
) -> Changes:
    """Registry changes: the untreated children's and every change before `cut` kept, the treated
    children's from `cut` redrawn; each treated (child, field) re-chained from its registered
    value (old = the previous new; no-ops and second changes on one day dropped, as drawn)."""
    parts = [
        (kept, ~mask[kept.child] | (kept.date < cut)),
        (redrawn, mask[redrawn.child] & (redrawn.date >= cut)),
    ]
    cols = {
        f: np.concatenate([getattr(c, f)[m] for c, m in parts])
        for f in ("child", "field", "old", "new", "date")
    }
    # lexsort is stable: a child's ties keep their order (each child has one source)
    order = np.lexsort((cols["date"], cols["field"], cols["child"]))
    cols = {f: v[order] for f, v in cols.items()}
    registered = {
        CATEGORY: registry.category,
        GUARDIAN: registry.guardian,
        DISABILITY: registry.disability,
    }
    keep, latest = np.ones(len(order), dtype=bool), {}  # (child, field) -> (new, date) last kept
    for i in np.flatnonzero(mask[cols["child"]]):
        key = (cols["child"][i], cols["field"][i])
        before, day = latest.get(key, (registered[key[1]][key[0]], None))
        if cols["new"][i] == before or cols["date"][i] == day:
            keep[i] = False
            continue
        cols["old"][i], latest[key] = before, (cols["new"][i], cols["date"][i])
    return Changes(**{f: v[keep] for f, v in cols.items()})
