"""School: enrolment and grades, absences as the school records them, dropout and return.

A school-dropout outcome is either a 10-school-day streak of unexcused absences ending on the
event day or a `dropped_out` enrolment record. Background absences are shaped so that they can
never form such a streak: an unexcused full-day absence never falls on a Monday (a 10-school-day
run always spans one), and none is kept on or next to a streak's days.
"""

from __future__ import annotations

import numpy as np

from src.data import contract as c
from src.data.synthetic.base import SimulationBase, code_index, draw_rows
from src.data.synthetic.recording import RecordingBias
from src.data.synthetic.registry import Registry

# Signals by latent state (stable, strained, crisis).
ABSENCE_RATE = np.array([0.025, 0.06, 0.14])  # absences per school day
ABSENCE_TYPE_P = np.array(
    [[0.6, 0.3, 0.1], [0.45, 0.25, 0.3], [0.3, 0.2, 0.5]]
)  # sick, excused, unexcused
SCHOOL_RECOVERY_P = np.array([0.35, 0.2, 0.08])  # dropouts returning per month
STREAK_DAYS = 10


class SchoolSystem(SimulationBase):
    """Enrolment, grade and school of each child; absences, dropout streaks and returns."""

    def _init_school(self, calendar: np.ndarray, bias: RecordingBias | None) -> None:
        n = self.reg.n
        self.calendar = calendar  # school days of the span, datetime64[D], sorted
        self.bias = bias
        # 0 not enrolled, 1 enrolled, 2 dropped out, 3 left
        self.school = np.zeros(n, dtype=np.int8)
        self.grade = np.zeros(n, dtype=np.int8)
        self.last_streak_end = np.full(n, -100)
        self.blocked_absence_keys: list[np.ndarray] = []
        self.schools = SchoolMap(self.reg)

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
            absence_type=code_index(c.ABSENCE_TYPE, "unexcused"),
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
            event_type=code_index(c.ENROLLMENT_EVENT, "dropped_out"),
            school_type=-1,
            grade=-1,
        )
        self.school[d_idx] = 2
        self.absence_until[d_idx] = d_day

    def _return_to_school(self, candidates, day) -> None:
        """Dropouts return to their school on `day` (early in the month)."""
        n = len(candidates)
        back = (
            candidates & (self.school == 2) & (self.rng.random(n) < SCHOOL_RECOVERY_P[self.state])
        )
        idx = np.flatnonzero(back)
        self._add(
            "school_enrollment",
            idx,
            day[idx],
            True,
            school=self.schools.current[idx],
            event_type=code_index(c.ENROLLMENT_EVENT, "returned"),
            school_type=self.schools.type[idx],
            grade=self.grade[idx],
        )
        self.school[idx] = 1
        self.absence_from[idx] = day[idx] + 1

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
        kind = draw_rows(ABSENCE_TYPE_P[self.state[child]], self.rng)
        days = np.where(self.rng.random(len(child)) < 0.25, 0.5, 1.0)
        kind, recorded = self._as_recorded(child, kind)
        unexcused = kind == c.ABSENCE_TYPE.index("unexcused")
        # never a full unexcused Monday in the background: a 10-school-day run always has one
        monday = (date.astype("datetime64[D]").astype(np.int64) + 3) % 7 == 0
        days = np.where(unexcused & monday, 0.5, days)
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
        if self.bias is None:
            return kind, np.ones(len(child), dtype=bool)
        excused, unexcused = (c.ABSENCE_TYPE.index(t) for t in ("excused", "unexcused"))
        state = self.state[child]
        return self.bias.absences(
            self.reg, child, state, kind, ABSENCE_RATE, ABSENCE_TYPE_P, excused, unexcused
        )

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
            event_type=code_index(c.ENROLLMENT_EVENT, "graduated"),
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
                event_type=code_index(c.ENROLLMENT_EVENT, event),
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
            event_type=code_index(c.ENROLLMENT_EVENT, "enrolled"),
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
