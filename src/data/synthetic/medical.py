"""Medical insurance and care: enrolment, care events with costs, and rehabilitation sessions.

A medical-lapse outcome is either three missed rehab sessions in a row (days d-2, d-1, d) for a
child in rehabilitation, or an `insurance_lapsed` record. In the background, a third
consecutive rehab miss is always attended instead, so background misses never form a run.
"""

from __future__ import annotations

import numpy as np

from src.data import contract as c
from src.data.synthetic.base import SimulationBase, code_index

# Signals by latent state (stable, strained, crisis).
REHAB_MISS_P = np.array([0.05, 0.2, 0.45])
MEDICAL_P = {  # event type -> per-month probability by state, log-cost mean, diagnosis weights
    "outpatient": ([0.08, 0.12, 0.2], 5.0),
    "inpatient": ([0.004, 0.008, 0.02], 8.5),
    "emergency": ([0.004, 0.01, 0.03], 6.5),
    "mental_health": ([0.003, 0.02, 0.06], 5.5),
}
REHAB_SESSION_DAYS = (7, 21)  # day offsets in the month


class MedicalSystem(SimulationBase):
    """Insurance, care events and the rehabilitation sessions of children with a disability."""

    def _init_medical(self) -> None:
        n = self.reg.n
        self.rehab = self.reg.disability >= 2
        self.rehab_misses = np.zeros(n, dtype=np.int8)

    def _fire_medical(self, idx, day) -> None:
        """A rehab child misses three sessions in a row (days d-2, d-1, d) when that run is clean."""
        offset = (day - self.month_start).astype(int)
        clean_before = (offset - 2 > REHAB_SESSION_DAYS[0]) | (self.rehab_misses[idx] == 0)
        run = self.rehab[idx] & (offset >= 2) & clean_before & (self.rng.random(len(idx)) < 0.6)
        self.rehab_run_offset[idx[run]] = offset[run]
        child = np.repeat(idx[run], 3)
        dates = (day[run][:, None] + np.arange(-2, 1)).ravel()
        self._add(
            "medical_events",
            child,
            dates,
            True,
            event_type=code_index(c.MEDICAL_EVENT, "rehab_missed"),
            diagnosis_group=code_index(c.DIAGNOSIS_GROUP, "congenital"),
            cost_cny=np.nan,
            out_of_pocket_cny=np.nan,
        )
        self._add(
            "medical_events",
            idx[~run],
            day[~run],
            True,
            event_type=code_index(c.MEDICAL_EVENT, "insurance_lapsed"),
            diagnosis_group=-1,
            cost_cny=np.nan,
            out_of_pocket_cny=np.nan,
        )

    def _rehab_signals(self, present, start) -> None:
        """Two sessions a month; a third background miss in a row is always attended instead.

        An outcome run (misses on days d-2, d-1, d) replaces the sessions it covers; the session
        just before it and the one just after it are attended, so the run is exactly three long.
        """
        n = len(present)
        run = self.rehab_run_offset
        pending = run >= 0
        sessions = REHAB_SESSION_DAYS
        for j, offset in enumerate(sessions):
            passed = pending & (run < offset)
            self.rehab_misses[passed] = 2
            pending &= ~passed
            next_offset = sessions[j + 1] if j + 1 < len(sessions) else 99
            just_before = (run >= 0) & (offset < run - 2) & (next_offset >= run - 2)
            session = present & self.rehab & ~((run >= 0) & (run - 2 <= offset) & (offset <= run))
            miss = session & ~just_before & (self.rehab_misses < 2)
            miss &= self.rng.random(n) < REHAB_MISS_P[self.state]
            idx = np.flatnonzero(session)
            event = np.where(
                miss[idx],
                c.MEDICAL_EVENT.index("rehab_missed"),
                c.MEDICAL_EVENT.index("rehab_attended"),
            )
            self._add(
                "medical_events",
                idx,
                start + offset,
                True,
                event_type=event,
                diagnosis_group=code_index(c.DIAGNOSIS_GROUP, "congenital"),
                cost_cny=np.nan,
                out_of_pocket_cny=np.nan,
            )
            misses = np.where(miss, self.rehab_misses + 1, 0)
            self.rehab_misses = np.where(session, misses, self.rehab_misses).astype(np.int8)
        self.rehab_misses[pending] = 2

    def _medical_signals(self, k, present, start, days) -> None:
        n = len(present)
        self._rehab_signals(present, start)
        if k % 12 == 0:  # yearly enrolment; a child registered this month enrols on that day
            idx = np.flatnonzero(present)
            day = np.maximum(
                start + self.rng.integers(0, 28, size=len(idx)), self.reg.registered[idx]
            )
            self._add(
                "medical_events",
                idx,
                day,
                event_type=code_index(c.MEDICAL_EVENT, "insurance_enrolled"),
                diagnosis_group=-1,
                cost_cny=np.nan,
                out_of_pocket_cny=np.nan,
            )
        new = np.flatnonzero(present & (self.reg_month == k) & (k % 12 != 0))
        self._add(
            "medical_events",
            new,
            self.reg.registered[new],
            event_type=code_index(c.MEDICAL_EVENT, "insurance_enrolled"),
            diagnosis_group=-1,
            cost_cny=np.nan,
            out_of_pocket_cny=np.nan,
        )
        diagnosis = np.array(
            [c.DIAGNOSIS_GROUP.index(g) for g in ("other", "infectious", "injury", "chronic")]
        )
        for event, (p_by_state, log_cost) in MEDICAL_P.items():
            idx = np.flatnonzero(
                present & (self.rng.random(n) < np.asarray(p_by_state)[self.state])
            )
            cost = np.round(np.exp(log_cost + 0.7 * self.rng.standard_normal(len(idx))), 2)
            share = 0.1 + 0.4 * self.rng.random(len(idx))
            group = diagnosis[self.rng.integers(0, len(diagnosis), size=len(idx))]
            if event == "mental_health":
                group = np.full(len(idx), c.DIAGNOSIS_GROUP.index("mental"))
            self._add(
                "medical_events",
                idx,
                start + self.rng.integers(0, days, size=len(idx)),
                event_type=code_index(c.MEDICAL_EVENT, event),
                diagnosis_group=group,
                cost_cny=cost,
                out_of_pocket_cny=np.round(cost * share, 2),
            )
