"""Month-by-month simulation: the latent chain drives signals and the four outcome rules.

Outcome-defining records are written only when the chain fires an outcome, and background
noise is shaped so that it can never form one by accident: background unexcused full-day
absences never fall on a Monday (so no 10-school-day run, which always spans a Monday), and a
third consecutive background rehab miss is always attended instead.

`Simulation` runs the month (chain, exits, outcomes, recovery) and combines the protection
systems, one module each: `welfare` (basic living assistance), `school`, `medical` and
`protection` (casework visits and protection events), over the shared state of `base`.
"""

from __future__ import annotations

import numpy as np

from src.data import contract as c
from src.data.synthetic.base import code_index, draw_rows
from src.data.synthetic.latent import (
    MonthTerms,
    RiskModel,
    next_states,
    recert_window,
    stationary_states,
)
from src.data.synthetic.medical import MedicalSystem
from src.data.synthetic.protection import ProtectionSystem
from src.data.synthetic.recording import RecordingBias
from src.data.synthetic.registry import Registry
from src.data.synthetic.school import SchoolSystem, absence_key
from src.data.synthetic.tables import keep_rows
from src.data.synthetic.welfare import WelfareSystem

RULES = ("benefit_lapse", "school_dropout", "medical_lapse", "protection_crisis")


class Simulation(WelfareSystem, SchoolSystem, MedicalSystem, ProtectionSystem):
    """All children through all months; call `step(k)` for k = 0 .. months-1 in order."""

    def __init__(
        self,
        registry: Registry,
        model: RiskModel,
        starts: np.ndarray,
        calendar: np.ndarray,
        bias: RecordingBias | None,
        rng,
    ):
        super().__init__(registry, model, starts, rng)
        self._init_welfare()
        self._init_school(calendar, bias)
        self._init_medical()

    # -- the month ---------------------------------------------------------------------------
    def step(self, k: int) -> None:
        start, nxt = self.starts[k], self.starts[k + 1]
        days = int((nxt - start).astype(int))
        terms = self.model.terms(start, nxt)
        self._advance_chain(k, terms)
        self._open_month(start, nxt)
        n = self.reg.n
        present = (self.reg_month <= k) & (start < self.end)
        eligible = present & (self.reg_month < k)
        exits = self._exits(eligible, terms, start, days)
        fire = eligible & terms.allowed & ~exits
        fire &= self.rng.random(n) < terms.outcome[np.arange(n), self.state]
        fire_day = start + self.rng.integers(0, days, size=n)
        self._aged_out(present, start, nxt)
        if k == 0 or start.astype("datetime64[M]").astype(int) % 12 == 8:
            self._enrol(k, present, start)
        self._enrol_new_registrants(k, present)
        self._recover(present & ~fire, start)
        self._fire(k, np.flatnonzero(fire), fire_day)
        self._welfare_signals(k, present, start, days)
        self._school_signals(k, present, start, nxt)
        self._medical_signals(k, present, start, days)
        self._visit_and_protection_signals(present, start, days)

    def _open_month(self, start, nxt) -> None:
        """Per-month windows: when payments may be made and absences recorded."""
        n = self.reg.n
        self.month_start = start
        never = np.full(n, nxt)
        self.pay_from = np.where(self.welfare == 0, start, nxt)
        self.pay_until = never.copy()
        self.absence_from = np.where(self.school == 1, start, nxt)
        self.absence_until = never.copy()
        self.rehab_run_offset = np.full(n, -1)

    def _advance_chain(self, k: int, terms: MonthTerms) -> None:
        if k == 0:
            self.state = stationary_states(terms.transition, self.rng)
        else:
            self.state = next_states(self.state, self._previous_transition, self.rng)
        self._previous_transition = terms.transition
        self.states[k] = self.state

    def frame(self, table: str) -> dict[str, np.ndarray]:
        """A table's rows, sorted by child then date (`Rows.frame`).

        A dropout streak reaches back up to nine school days, possibly into last month, whose
        background absences were drawn before the streak was known: those on the streak's
        blocked days are dropped here (one could even copy a streak row exactly).
        """
        rows = self.tables[table].frame()
        if table != "school_absences" or not self.blocked_absence_keys or not len(rows["child"]):
            return rows
        pos = np.searchsorted(self.calendar, rows["date"].astype("datetime64[D]"))
        blocked = np.isin(
            absence_key(rows["child"], pos), np.concatenate(self.blocked_absence_keys)
        )
        return keep_rows(rows, rows["protected"].astype(bool) | ~blocked)

    # -- exits ---------------------------------------------------------------------------------
    def _exits(self, eligible, terms: MonthTerms, start, days) -> np.ndarray:
        exits = eligible & (self.rng.random(len(eligible)) < terms.exit)
        idx = np.flatnonzero(exits)
        weights = self.model.exit_by_reason[:, idx].T
        reason = np.asarray(self.model.exit_reasons)[draw_rows(weights, self.rng)]
        date = start + self.rng.integers(1, days, size=len(idx))
        idx, date, reason = (
            idx[date < self.end[idx]],
            date[date < self.end[idx]],
            reason[date < self.end[idx]],
        )
        self.end[idx] = date
        self._add(
            "welfare_events",
            idx,
            date,
            True,
            True,
            event_type=code_index(c.WELFARE_EVENT, "terminated"),
            benefit=self.reg.benefit[idx],
            amount_cny=np.nan,
            reason=reason,
        )
        return exits

    def _aged_out(self, present, start, nxt) -> None:
        idx = np.flatnonzero(
            present & (self.end == self.reg.turns_18) & (self.end >= start) & (self.end < nxt)
        )
        self._add(
            "welfare_events",
            idx,
            self.end[idx],
            True,
            True,
            event_type=code_index(c.WELFARE_EVENT, "terminated"),
            benefit=self.reg.benefit[idx],
            amount_cny=np.nan,
            reason=code_index(c.EXIT_REASON, "aged_out"),
        )

    # -- outcomes ------------------------------------------------------------------------------
    def _fire(self, k: int, idx: np.ndarray, fire_day: np.ndarray) -> None:
        day = fire_day[idx]
        rule = draw_rows(self._rule_weights(idx, day), self.rng)
        self.outcomes.add(child=idx, date=day, rule=rule)
        self._fire_benefit(k, idx[rule == 0], day[rule == 0])
        self._fire_school(idx[rule == 1], day[rule == 1])
        self._fire_medical(idx[rule == 2], day[rule == 2])
        self._fire_protection(idx[rule == 3], day[rule == 3])

    def _rule_weights(self, idx, day) -> np.ndarray:
        age = (day - self.reg.birth[idx]).astype(int) / 365.25
        guard = self.reg.guardian[idx]
        fragile = np.isin(
            guard, [c.GUARDIAN_TYPE.index(g) for g in ("grandparents", "other_relatives", "none")]
        )
        # the hazard's seasonal excess in a recertification window is a recertification problem:
        # a benefit lapse is recert_hazard_ratio times likelier as the rule there
        recert = recert_window(self.reg.registered[idx], self.month_start)
        lapse = np.where(recert, self.model.recert_ratio, 1.0)
        return np.column_stack(
            [
                np.where(self.welfare[idx] < 2, lapse, 0.0),
                np.where(
                    self.school[idx] == 1, np.select([age < 12, age < 15], [0.3, 1.0], 1.8), 0.0
                ),
                0.35 + 0.8 * self.rehab[idx],
                0.2 + 0.3 * fragile,
            ]
        )

    def _recover(self, candidates, start) -> None:
        """Suspended or terminated benefits get reinstated and dropouts return, early in the month."""
        day = start + self.rng.integers(0, 5, size=len(candidates))
        self._reinstate_benefits(candidates, day)
        self._return_to_school(candidates, day)
