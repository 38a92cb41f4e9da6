"""Casework and child protection: caseworker visits with concern flags, and protection events.

A protection-crisis outcome is a `guardian_lost` (for a child with a guardian) or an
`emergency_placement` event; background protection events are of the other types only.
"""

from __future__ import annotations

import numpy as np

from src.data import contract as c
from src.data.synthetic.base import SimulationBase, draw_rows

# Signals by latent state (stable, strained, crisis).
VISIT_P = np.array([0.3, 0.4, 0.55])
CONCERN_P = np.array([0.015, 0.08, 0.25])
PROTECTION_P = np.array([0.0005, 0.004, 0.02])


class ProtectionSystem(SimulationBase):
    """Caseworker visits and protection events; no state of its own beyond the latent chain."""

    def _fire_protection(self, idx, day) -> None:
        no_guardian = [c.GUARDIAN_TYPE.index("institution"), c.GUARDIAN_TYPE.index("none")]
        lost = ~np.isin(self.reg.guardian[idx], no_guardian) & (self.rng.random(len(idx)) < 0.5)
        event = np.where(
            lost,
            c.PROTECTION_EVENT.index("guardian_lost"),
            c.PROTECTION_EVENT.index("emergency_placement"),
        )
        self._add("protection_events", idx, day, True, event_type=event)

    def _visit_and_protection_signals(self, present, start, days) -> None:
        n = len(present)
        idx = np.flatnonzero(present & (self.rng.random(n) < VISIT_P[self.state]))
        concerns = (
            self.rng.random((len(idx), len(c.CONCERNS))) < CONCERN_P[self.state[idx]][:, None]
        ).astype(np.int8)
        mode = draw_rows(np.tile([0.5, 0.25, 0.15, 0.1], (len(idx), 1)), self.rng)
        date = start + self.rng.integers(0, days, size=len(idx))
        if self.bias is not None:  # as the caseworker enters them (synthetic/recording.py)
            concerns, entered = self.bias.visits(
                self.reg, idx, self.state[idx], concerns, VISIT_P, CONCERN_P
            )
            idx, date, mode = idx[entered], date[entered], mode[entered]
            concerns = concerns[entered]
        self._add("casework_visits", idx, date, mode=mode, concerns=concerns)
        idx = np.flatnonzero(present & (self.rng.random(n) < PROTECTION_P[self.state]))
        kind = draw_rows(
            np.tile([0.2, 0.35, 0.2, 0.25], (len(idx), 1)), self.rng
        )  # background types only
        self._add(
            "protection_events",
            idx,
            start + self.rng.integers(0, days, size=len(idx)),
            event_type=kind,
        )
