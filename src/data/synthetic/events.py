"""Month-by-month simulation: the latent chain drives signals and the four outcome rules.

Outcome-defining records are written only when the chain fires an outcome, and background
noise is shaped so that it can never form one by accident: background unexcused full-day
absences never fall on a Monday (so no 10-school-day run, which always spans a Monday), and a
third consecutive background rehab miss is always attended instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.data import contract as c
from src.data.synthetic.latent import MonthTerms, RiskModel, next_states, stationary_states
from src.data.synthetic.registry import Registry
from src.data.synthetic.tables import TABLE_COLUMNS, Rows, keep_rows

RULES = ("benefit_lapse", "school_dropout", "medical_lapse", "protection_crisis")
# Signals by latent state (stable, strained, crisis).
ABSENCE_RATE = np.array([0.025, 0.06, 0.14])  # absences per school day
ABSENCE_TYPE_P = np.array(
    [[0.6, 0.3, 0.1], [0.45, 0.25, 0.3], [0.3, 0.2, 0.5]]
)  # sick, excused, unexcused
RECERT_DONE_P = np.array([0.85, 0.45, 0.15])  # per month while pending
PAYMENT_SKIP_P = np.array([0.005, 0.04, 0.15])
PAYMENT_DELAY_MAX = np.array([2, 8, 15])
REHAB_MISS_P = np.array([0.05, 0.2, 0.45])
VISIT_P = np.array([0.3, 0.4, 0.55])
CONCERN_P = np.array([0.015, 0.08, 0.25])
PROTECTION_P = np.array([0.0005, 0.004, 0.02])
MEDICAL_P = {  # event type -> per-month probability by state, log-cost mean, diagnosis weights
    "outpatient": ([0.08, 0.12, 0.2], 5.0),
    "inpatient": ([0.004, 0.008, 0.02], 8.5),
    "emergency": ([0.004, 0.01, 0.03], 6.5),
    "mental_health": ([0.003, 0.02, 0.06], 5.5),
}
RECOVERY_P = {"welfare": np.array([0.5, 0.3, 0.1]), "school": np.array([0.35, 0.2, 0.08])}
LAPSE_REASON_P = (("documents_missing", 0.45), ("contact_lost", 0.4), ("other", 0.15))
REHAB_SESSION_DAYS = (7, 21)  # day offsets in the month
STREAK_DAYS = 10
PAYMENT_DAY = 9


@dataclass(frozen=True)
class RecordingBias:
    """The school system under-records background absences of one hukou group.

    relabel: a share of the group's unexcused absences is recorded as excused.
    omit: a share of all the group's background absences (any type) is never recorded.
    Its own random stream, so switching it on changes the records and never the world.
    """

    group: int  # index into contract HUKOU
    share: float
    mode: str  # "relabel" | "omit"
    rng: np.random.Generator


class Simulation:
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
        self.reg, self.model, self.starts, self.rng = registry, model, starts, rng
        self.calendar = calendar  # school days of the span, datetime64[D], sorted
        self.span_end = starts[-1] - 1
        self.bias = bias
        n = registry.n
        self.tables = {name: Rows(cols) for name, cols in TABLE_COLUMNS.items()}
        self.reg_month = np.searchsorted(starts, registry.registered, side="right") - 1
        self.end = registry.turns_18.copy()  # last record day + 1; moves earlier on an exit
        self.state = np.zeros(n, dtype=np.int8)
        self.states = np.zeros((len(starts) - 1, n), dtype=np.int8)
        self.welfare = np.zeros(n, dtype=np.int8)  # 0 active, 1 suspended, 2 terminated
        self.recert_pending_since = np.full(n, -1)
        self.school = np.zeros(
            n, dtype=np.int8
        )  # 0 not enrolled, 1 enrolled, 2 dropped out, 3 left
        self.grade = np.zeros(n, dtype=np.int8)
        self.rehab = registry.disability >= 2
        self.rehab_misses = np.zeros(n, dtype=np.int8)
        self.last_streak_end = np.full(n, -100)
        self.blocked_absence_keys: list[np.ndarray] = []
        self.outcomes = Rows(("child", "date", "rule"))
        self.schools = SchoolMap(registry)

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
        reason = np.asarray(self.model.exit_reasons)[_draw_rows(weights, self.rng)]
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
            event_type=_code(c.WELFARE_EVENT, "terminated"),
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
            event_type=_code(c.WELFARE_EVENT, "terminated"),
            benefit=self.reg.benefit[idx],
            amount_cny=np.nan,
            reason=_code(c.EXIT_REASON, "aged_out"),
        )

    # -- outcomes ------------------------------------------------------------------------------
    def _fire(self, k: int, idx: np.ndarray, fire_day: np.ndarray) -> None:
        day = fire_day[idx]
        rule = _draw_rows(self._rule_weights(idx, day), self.rng)
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
        return np.column_stack(
            [
                np.where(self.welfare[idx] < 2, 1.0, 0.0),
                np.where(
                    self.school[idx] == 1, np.select([age < 12, age < 15], [0.3, 1.0], 1.8), 0.0
                ),
                0.35 + 0.8 * self.rehab[idx],
                0.2 + 0.3 * fragile,
            ]
        )

    def _fire_benefit(self, k, idx, day) -> None:
        overdue = (self.recert_pending_since[idx] >= 0) & (self.recert_pending_since[idx] < k)
        other = np.array([c.EXIT_REASON.index(r) for r, _ in LAPSE_REASON_P])
        reason = np.where(
            overdue,
            c.EXIT_REASON.index("recert_missed"),
            other[_draw_rows(np.tile([p for _, p in LAPSE_REASON_P], (len(idx), 1)), self.rng)],
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

    def _fire_school(self, idx, day) -> None:
        """Half the dropouts are an unexcused streak of 10 school days ending on the event day."""
        cal = self.calendar
        pos = np.searchsorted(cal, day)
        on_school_day = (pos < len(cal)) & (cal[np.minimum(pos, len(cal) - 1)] == day)
        first = np.maximum(pos - (STREAK_DAYS - 1), 0)
        streak = (
            on_school_day
            & (pos >= STREAK_DAYS - 1)
            & (first >= self.last_streak_end[idx] + 2)
            & (cal[np.minimum(first, len(cal) - 1)] >= self.reg.registered[idx])
            & (self.rng.random(len(idx)) < 0.5)
        )
        s_idx, s_pos = idx[streak], pos[streak]
        child = np.repeat(s_idx, STREAK_DAYS)
        spos = (s_pos[:, None] + np.arange(-(STREAK_DAYS - 1), 1)).ravel()
        self._add(
            "school_absences",
            child,
            cal[spos],
            True,
            school=self.schools.current[child],
            absence_type=_code(c.ABSENCE_TYPE, "unexcused"),
            days=1.0,
        )
        # background absences on the streak days and the school day either side would blur it
        blocked = (s_pos[:, None] + np.arange(-STREAK_DAYS, 2)).ravel()
        self.blocked_absence_keys.append(absence_key(np.repeat(s_idx, STREAK_DAYS + 2), blocked))
        self.last_streak_end[s_idx] = s_pos
        d_idx, d_day = idx[~streak], day[~streak]
        self._add(
            "school_enrollment",
            d_idx,
            d_day,
            True,
            school=self.schools.current[d_idx],
            event_type=_code(c.ENROLLMENT_EVENT, "dropped_out"),
            school_type=-1,
            grade=-1,
        )
        self.school[d_idx] = 2
        self.absence_until[d_idx] = d_day

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
            event_type=_code(c.MEDICAL_EVENT, "rehab_missed"),
            diagnosis_group=_code(c.DIAGNOSIS_GROUP, "congenital"),
            cost_cny=np.nan,
            out_of_pocket_cny=np.nan,
        )
        self._add(
            "medical_events",
            idx[~run],
            day[~run],
            True,
            event_type=_code(c.MEDICAL_EVENT, "insurance_lapsed"),
            diagnosis_group=-1,
            cost_cny=np.nan,
            out_of_pocket_cny=np.nan,
        )

    def _fire_protection(self, idx, day) -> None:
        no_guardian = [c.GUARDIAN_TYPE.index("institution"), c.GUARDIAN_TYPE.index("none")]
        lost = ~np.isin(self.reg.guardian[idx], no_guardian) & (self.rng.random(len(idx)) < 0.5)
        event = np.where(
            lost,
            c.PROTECTION_EVENT.index("guardian_lost"),
            c.PROTECTION_EVENT.index("emergency_placement"),
        )
        self._add("protection_events", idx, day, True, event_type=event)

    def _recover(self, candidates, start) -> None:
        """Suspended or terminated benefits get reinstated and dropouts return, early in the month."""
        n = len(candidates)
        day = start + self.rng.integers(0, 5, size=n)
        back = (
            candidates
            & (self.welfare > 0)
            & (self.rng.random(n) < RECOVERY_P["welfare"][self.state])
        )
        idx = np.flatnonzero(back)
        self._add(
            "welfare_events",
            idx,
            day[idx],
            True,
            event_type=_code(c.WELFARE_EVENT, "reinstated"),
            benefit=self.reg.benefit[idx],
            amount_cny=np.nan,
            reason=-1,
        )
        self.welfare[idx] = 0
        self.pay_from[idx] = day[idx]
        back = (
            candidates
            & (self.school == 2)
            & (self.rng.random(n) < RECOVERY_P["school"][self.state])
        )
        idx = np.flatnonzero(back)
        self._add(
            "school_enrollment",
            idx,
            day[idx],
            True,
            school=self.schools.current[idx],
            event_type=_code(c.ENROLLMENT_EVENT, "returned"),
            school_type=self.schools.type[idx],
            grade=self.grade[idx],
        )
        self.school[idx] = 1
        self.absence_from[idx] = day[idx] + 1

    # -- signals -------------------------------------------------------------------------------
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
        self._add(
            "welfare_events",
            idx,
            pay_day[idx],
            event_type=_code(c.WELFARE_EVENT, "payment"),
            benefit=self.reg.benefit[idx],
            amount_cny=amount,
            reason=-1,
        )
        due_month = self.reg.registered.astype("datetime64[M]").astype(int) % 12
        due = present & (due_month == start.astype("datetime64[M]").astype(int) % 12)
        due &= (start - self.reg.registered) > 300
        idx = np.flatnonzero(due & (self.recert_pending_since < 0))
        self._add(
            "welfare_events",
            idx,
            start,
            event_type=_code(c.WELFARE_EVENT, "recert_due"),
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
            event_type=_code(c.WELFARE_EVENT, "recert_done"),
            benefit=self.reg.benefit[idx],
            amount_cny=np.nan,
            reason=-1,
        )
        self.recert_pending_since[idx] = -1

    def _school_signals(self, k, present, start, nxt) -> None:
        lo, hi = np.searchsorted(self.calendar, [start, nxt])
        if hi == lo:
            return
        month_days = self.calendar[lo:hi]
        enrolled = present & (self.absence_from < nxt)
        counts = self.rng.poisson(ABSENCE_RATE[self.state] * len(month_days)) * enrolled
        child = np.repeat(np.arange(len(present)), np.minimum(counts, len(month_days)))
        key = np.unique(
            absence_key(child, lo + self.rng.integers(0, len(month_days), size=len(child)))
        )
        child, pos = (key >> 20).astype(np.int64), (key & 0xFFFFF).astype(np.int64)
        if self.blocked_absence_keys:
            blocked = np.concatenate(self.blocked_absence_keys)
            keep = ~np.isin(key, blocked)
            child, pos = child[keep], pos[keep]
        date = self.calendar[pos]
        keep = (date >= self.absence_from[child]) & (date < self.absence_until[child])
        child, date = child[keep], date[keep]
        kind = _draw_rows(ABSENCE_TYPE_P[self.state[child]], self.rng)
        days = np.where(self.rng.random(len(child)) < 0.25, 0.5, 1.0)
        unexcused = kind == c.ABSENCE_TYPE.index("unexcused")
        # never a full unexcused Monday in the background: a 10-school-day run always has one
        monday = (date.astype("datetime64[D]").astype(np.int64) + 3) % 7 == 0
        days = np.where(unexcused & monday, 0.5, days)
        kind, recorded = self._as_recorded(child, kind)
        child, date = child[recorded], date[recorded]
        self._add(
            "school_absences",
            child,
            date,
            school=self.schools.current[child],
            absence_type=kind[recorded],
            days=days[recorded],
        )

    def _as_recorded(self, child, kind) -> tuple[np.ndarray, np.ndarray]:
        """Background absences as the school records them: (absence types, recorded mask)."""
        recorded = np.ones(len(child), dtype=bool)
        if self.bias is None:
            return kind, recorded
        hit = (self.reg.hukou[child] == self.bias.group) & (
            self.bias.rng.random(len(child)) < self.bias.share
        )
        if self.bias.mode == "omit":
            return kind, ~hit
        unexcused = kind == c.ABSENCE_TYPE.index("unexcused")
        return np.where(hit & unexcused, c.ABSENCE_TYPE.index("excused"), kind), recorded

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
                diagnosis_group=_code(c.DIAGNOSIS_GROUP, "congenital"),
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
                event_type=_code(c.MEDICAL_EVENT, "insurance_enrolled"),
                diagnosis_group=-1,
                cost_cny=np.nan,
                out_of_pocket_cny=np.nan,
            )
        new = np.flatnonzero(present & (self.reg_month == k) & (k % 12 != 0))
        self._add(
            "medical_events",
            new,
            self.reg.registered[new],
            event_type=_code(c.MEDICAL_EVENT, "insurance_enrolled"),
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
                event_type=_code(c.MEDICAL_EVENT, event),
                diagnosis_group=group,
                cost_cny=cost,
                out_of_pocket_cny=np.round(cost * share, 2),
            )

    def _visit_and_protection_signals(self, present, start, days) -> None:
        n = len(present)
        idx = np.flatnonzero(present & (self.rng.random(n) < VISIT_P[self.state]))
        concerns = (
            self.rng.random((len(idx), len(c.CONCERNS))) < CONCERN_P[self.state[idx]][:, None]
        ).astype(np.int8)
        mode = _draw_rows(np.tile([0.5, 0.25, 0.15, 0.1], (len(idx), 1)), self.rng)
        self._add(
            "casework_visits",
            idx,
            start + self.rng.integers(0, days, size=len(idx)),
            mode=mode,
            concerns=concerns,
        )
        idx = np.flatnonzero(present & (self.rng.random(n) < PROTECTION_P[self.state]))
        kind = _draw_rows(
            np.tile([0.2, 0.35, 0.2, 0.25], (len(idx), 1)), self.rng
        )  # background types only
        self._add(
            "protection_events",
            idx,
            start + self.rng.integers(0, days, size=len(idx)),
            event_type=kind,
        )

    # -- school registration -------------------------------------------------------------------
    def _enrol(self, k, present, start) -> None:
        """September: grades advance, new pupils enrol, school changes at grades 7 and 10."""
        sept1 = start if k > 0 else _last_september(start)
        age = (sept1 - self.reg.birth).astype(int) / 365.25
        enrolled = self.school == 1
        self.grade = np.where(enrolled, self.grade + 1, self.grade).astype(np.int8)
        leaving = enrolled & (self.grade > 12)
        self.school[leaving] = 3
        idx = np.flatnonzero(leaving & present)
        self._add(
            "school_enrollment",
            idx,
            sept1 - 58,
            True,
            school=self.schools.current[idx],
            event_type=_code(c.ENROLLMENT_EVENT, "graduated"),
            school_type=self.schools.type[idx],
            grade=12,
        )
        if k == 0:
            starts_school = (
                present
                & (age >= 6)
                & (age < 18)
                & ((age < 15) | (self.rng.random(len(age)) < 0.75))
            )
            self.grade = np.where(
                starts_school, np.clip(np.floor(age) - 5, 1, 12), self.grade
            ).astype(np.int8)
        else:
            starts_school = present & (self.school == 0) & (age >= 6) & (age < 7)
            self.grade = np.where(starts_school, 1, self.grade).astype(np.int8)
        moving = enrolled & ~leaving & np.isin(self.grade, [7, 10])
        self.school[starts_school] = 1
        self.schools.assign(self.grade)
        self.absence_from = np.where(self.school == 1, start, self.absence_until)
        for idx, event in (
            (np.flatnonzero(starts_school), "enrolled"),
            (np.flatnonzero(moving), "transferred"),
        ):
            date = np.maximum(sept1, self.reg.registered[idx])
            self._add(
                "school_enrollment",
                idx,
                date,
                True,
                school=self.schools.current[idx],
                event_type=_code(c.ENROLLMENT_EVENT, event),
                school_type=self.schools.type[idx],
                grade=self.grade[idx],
            )

    def _enrol_new_registrants(self, k, present) -> None:
        """Children registered during the span who are of school age are enrolled on that day."""
        if k == 0:
            return
        new = present & (self.reg_month == k) & (self.school == 0)
        age = (self.reg.registered - self.reg.birth).astype(int) / 365.25
        new &= (age >= 6) & ((age < 15) | (self.rng.random(len(age)) < 0.75))
        idx = np.flatnonzero(new)
        self.grade[idx] = np.clip(np.floor(age[idx]) - 5, 1, 12)
        self.school[idx] = 1
        self.schools.assign(self.grade)
        self._add(
            "school_enrollment",
            idx,
            self.reg.registered[idx],
            True,
            school=self.schools.current[idx],
            event_type=_code(c.ENROLLMENT_EVENT, "enrolled"),
            school_type=self.schools.type[idx],
            grade=self.grade[idx],
        )
        self.absence_from[idx] = self.reg.registered[idx]


class SchoolMap:
    """Schools by level: a primary school per community; junior, senior and special per county."""

    def __init__(self, registry: Registry):
        communities, counties = registry.community_codes, registry.county_codes
        self.ids = np.concatenate(
            [
                np.char.add("P", communities),
                np.char.add("J", counties),
                np.char.add("H", counties),
                np.char.add("T", counties),
            ]
        )
        n_com, n_cty = len(communities), len(counties)
        self._offsets = (0, n_com, n_com + n_cty, n_com + 2 * n_cty)
        self._community, self._county = registry.community, registry.county
        special = registry.disability >= 3
        self._special = special
        home = special & (np.arange(registry.n) % 5 < 2)  # 40% are taught at home
        self.type = np.where(
            home,
            c.SCHOOL_TYPE.index("home_delivery"),
            np.where(special, c.SCHOOL_TYPE.index("special_education"), 0),
        ).astype(np.int8)
        self.current = np.zeros(registry.n, dtype=np.int32)

    def assign(self, grade: np.ndarray) -> None:
        level = np.select([grade <= 6, grade <= 9], [0, 1], 2)
        idx = np.where(
            level == 0,
            self._community,
            np.where(level == 1, self._offsets[1], self._offsets[2]) + self._county,
        )
        self.current = np.where(self._special, self._offsets[3] + self._county, idx).astype(
            np.int32
        )


def absence_key(child: np.ndarray, school_day: np.ndarray) -> np.ndarray:
    """(child, school-day position) packed in one int64, for sorting and anti-joins."""
    return (np.asarray(child, dtype=np.int64) << 20) | np.asarray(school_day, dtype=np.int64)


def _last_september(day: np.datetime64) -> np.datetime64:
    year = day.astype("datetime64[Y]")
    sept = (year.astype("datetime64[M]") + 8).astype("datetime64[D]")
    return sept if sept <= day else ((year - 1).astype("datetime64[M]") + 8).astype("datetime64[D]")


def _code(codes: tuple, value: str) -> int:
    return codes.index(value)


def _draw_rows(weights: np.ndarray, rng) -> np.ndarray:
    """One categorical draw per row of non-negative weights."""
    if len(weights) == 0:
        return np.zeros(0, dtype=np.int8)
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights))[:, None] * cdf[:, -1:]
    return (u >= cdf).sum(axis=1).clip(0, weights.shape[1] - 1).astype(np.int8)
