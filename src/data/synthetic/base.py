"""The simulation's shared state and record writing, on which every protection system builds.

`SimulationBase` holds what all systems read: the registry, the risk model, the month starts,
each child's latent state and the day after which it has no records. `_add` writes a system's
rows, keeping only those inside the child's record window. The protection systems are mixins
over it (`welfare`, `school`, `medical`, `protection`); `events.Simulation` combines them.
"""

from __future__ import annotations

import numpy as np

from src.data.synthetic.latent import RiskModel
from src.data.synthetic.registry import Registry
from src.data.synthetic.tables import TABLE_COLUMNS, Rows


class SimulationBase:
    """State every protection system reads; `events.Simulation` is the class to run."""

    def __init__(self, registry: Registry, model: RiskModel, starts: np.ndarray, rng):
        self.reg, self.model, self.starts, self.rng = registry, model, starts, rng
        self.span_end = starts[-1] - 1
        n = registry.n
        self.tables = {name: Rows(cols) for name, cols in TABLE_COLUMNS.items()}
        self.reg_month = np.searchsorted(starts, registry.registered, side="right") - 1
        self.end = registry.turns_18.copy()  # last record day + 1; moves earlier on an exit
        self.state = np.zeros(n, dtype=np.int8)
        self.states = np.zeros((len(starts) - 1, n), dtype=np.int8)
        self.outcomes = Rows(("child", "date", "rule"))

    def _live(self, child: np.ndarray, date: np.ndarray, closing: bool = False) -> np.ndarray:
        """Records exist from registration until the exit (inclusive only for the exit itself)."""
        end = self.end[child]
        before_end = date <= end if closing else date < end
        return (date >= self.reg.registered[child]) & before_end & (date <= self.span_end)

    def _add(self, table: str, child, date, protected=False, closing=False, **cols) -> None:
        child = np.asarray(child)
        date = np.broadcast_to(np.asarray(date, dtype="datetime64[D]"), child.shape)
        keep = self._live(child, date, closing)
        sub = {k: (v[keep] if np.ndim(v) and len(v) == len(child) else v) for k, v in cols.items()}
        self.tables[table].add(protected=protected, child=child[keep], date=date[keep], **sub)


def code_index(codes: tuple, value: str) -> int:
    """The integer code of `value` in a contract code tuple."""
    return codes.index(value)


def draw_rows(weights: np.ndarray, rng) -> np.ndarray:
    """One categorical draw per row of non-negative weights."""
    if len(weights) == 0:
        return np.zeros(0, dtype=np.int8)
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights))[:, None] * cdf[:, -1:]
    return (u >= cdf).sum(axis=1).clip(0, weights.shape[1] - 1).astype(np.int8)
