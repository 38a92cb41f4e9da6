"""Basic living assistance: monthly payments, yearly recertification, lapses and reinstatement.

Recertification is annual and seasonal: a `recert_due` is written on the first day of the
child's registration anniversary month (`latent.recert_due_month`) and done, or not, month by
month. A benefit-lapse outcome suspends an active benefit (or terminates a suspended one),
with the reason `recert_missed` when a recertification is overdue; early in a later month a
lapsed benefit may be reinstated. The risk model raises the outcome hazard in the due month
and the month after (`synthetic.recert_hazard_ratio`), and `events` makes a benefit lapse the
likelier rule then, so lapses cluster around each child's own anniversary.
"""

from __future__ import annotations

import numpy as np

from src.data import contract as c
from src.data.synthetic.base import SimulationBase, code_index, draw_rows
from src.data.synthetic.latent import recert_due_month

# Signals by latent state (stable, strained, crisis).
RECERT_DONE_P = np.array([0.85, 0.45, 0.15])  # per month while pending
PAYMENT_SKIP_P = np.array([0.005, 0.04, 0.15])
PAYMENT_DELAY_MAX = np.array([2, 8, 15])
BENEFIT_RECOVERY_P = np.array([0.5, 0.3, 0.1])  # reinstated per month while lapsed
LAPSE_REASON_P = (("documents_missing", 0.45), ("contact_lost", 0.4), ("other", 0.15))
PAYMENT_DAY = 9


class WelfareSystem(SimulationBase):
    """The benefit of each child: payments, recertification, lapse and reinstatement."""

    def _init_welfare(self) -> None:
        n = self.reg.n
        self.welfare = np.zeros(n, dtype=np.int8)  # 0 active, 1 suspended, 2 terminated
        self.recert_pending_since = np.full(n, -1)

    def _fire_benefit(self, k, idx, day) -> None:
        overdue = (self.recert_pending_since[idx] >= 0) & (self.recert_pending_since[idx] < k)
        other = np.array([c.EXIT_REASON.index(r) for r, _ in LAPSE_REASON_P])
        reason = np.where(
            overdue,
            c.EXIT_REASON.index("recert_missed"),
            other[draw_rows(np.tile([p for _, p in LAPSE_REASON_P], (len(idx), 1)), self.rng)],
        )
        event = np.where(
            self.welfare[idx] == 0,
            c.WELFARE_EVENT.index("suspended"),
            c.WELFARE_EVENT.index("terminated"),
        )
        self._add(
            "welfare_events",
            idx,
            day,
            True,
            event_type=event,
            benefit=self.reg.benefit[idx],
            amount_cny=np.nan,
            reason=reason,
        )
        self.welfare[idx] = np.where(self.welfare[idx] == 0, 1, 2)
        self.pay_until[idx] = day

    def _reinstate_benefits(self, candidates, day) -> None:
        """Suspended or terminated benefits get reinstated on `day` (early in the month)."""
        n = len(candidates)
        back = (
            candidates & (self.welfare > 0) & (self.rng.random(n) < BENEFIT_RECOVERY_P[self.state])
        )
        idx = np.flatnonzero(back)
        self._add(
            "welfare_events",
            idx,
            day[idx],
            True,
            event_type=code_index(c.WELFARE_EVENT, "reinstated"),
            benefit=self.reg.benefit[idx],
            amount_cny=np.nan,
            reason=-1,
        )
        self.welfare[idx] = 0
        self.pay_from[idx] = day[idx]

    def _welfare_signals(self, k, present, start, days) -> None:
        n = len(present)
        pay_day = (
            start + PAYMENT_DAY + (self.rng.random(n) * PAYMENT_DELAY_MAX[self.state]).astype(int)
        )
        paid = present & (pay_day >= self.pay_from) & (pay_day < self.pay_until)
        paid &= self.rng.random(n) >= PAYMENT_SKIP_P[self.state]
        idx = np.flatnonzero(paid)
        year = k // 12
        amount = np.round(self.reg.base_amount[idx] * 1.04**year / 10) * 10
        entered = pay_day[idx]
        if self.bias is not None:  # as the welfare office enters them (synthetic/recording.py)
            entered = self.bias.payment_days(
                self.reg, idx, self.state[idx], entered, start + PAYMENT_DAY, PAYMENT_DELAY_MAX[0]
            )
        self._add(
            "welfare_events",
            idx,
            entered,
            event_type=code_index(c.WELFARE_EVENT, "payment"),
            benefit=self.reg.benefit[idx],
            amount_cny=amount,
            reason=-1,
        )
        due = present & recert_due_month(self.reg.registered, start)
        idx = np.flatnonzero(due & (self.recert_pending_since < 0))
        self._add(
            "welfare_events",
            idx,
            start,
            event_type=code_index(c.WELFARE_EVENT, "recert_due"),
            benefit=self.reg.benefit[idx],
            amount_cny=np.nan,
            reason=-1,
        )
        self.recert_pending_since[idx] = k
        done = (
            present
            & (self.recert_pending_since >= 0)
            & (self.rng.random(n) < RECERT_DONE_P[self.state])
        )
        idx = np.flatnonzero(done)
        self._add(
            "welfare_events",
            idx,
            start + self.rng.integers(1, days, size=len(idx)),
            event_type=code_index(c.WELFARE_EVENT, "recert_done"),
            benefit=self.reg.benefit[idx],
            amount_cny=np.nan,
            reason=-1,
        )
        self.recert_pending_since[idx] = -1
