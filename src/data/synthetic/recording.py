"""Measurement bias: how the school register, the caseworkers and the welfare office enter one
group's records.

`synthetic.measurement_bias` picks a hukou group (in the listed counties only, if any: a county
x hukou cell), the source systems that under-record it (`sources`: `school_absences`,
`casework_visits`, `welfare_payments`), a `share` and a `mode`:

- omit: a share of the group's background records is never entered (absences of any type;
  whole casework visits).
- relabel: a share is entered as less worrying (unexcused absences as excused; visits with
  their concern flags left blank).
- conceal: the signs of risk go unrecorded. A school protecting its dropout figures leaves out
  the absences of the pupils who are drifting away, a caseworker with a remote caseload enters
  the visits and concerns of a struggling family as if all were well, and a township enters
  its payments in a monthly batch on the due day: with probability `share`, a record of a child
  in a strained or crisis month is thinned, retyped or re-dated so that it looks like a stable
  child's (absence rate and types, visit and concern rates, payment delay of the stable state).
  Stable children's records are untouched, so the group does not stand out by having no
  records at all; its at-risk children look like its safe ones.

Payments are only re-dated by conceal (omitting or relabelling a payment would make it look
worse, not better); a missed payment stays missed.

Outcome-defining rows (dropout streaks, protection events) are never touched and the draws
come from the knob's own random stream, so the world (chain, outcomes, p_true, every other
child's records) is the same with the knob on or off and labels stay true: only what the model
sees about the group changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.data.synthetic.base import draw_rows
from src.errors import SafetynetError


@dataclass(frozen=True)
class RecordingBias:
    """The knob, resolved: the group, its counties (per county index), sources, share and mode."""

    group: int  # index into contract HUKOU
    share: float
    mode: str  # "relabel" | "omit" | "conceal"
    rng: np.random.Generator
    counties: np.ndarray  # per county index: True where the bias applies
    sources: tuple[str, ...] = ("school_absences",)

    def _hit(self, registry, child: np.ndarray, source: str) -> np.ndarray:
        """Rows of the group (in its counties) that this source under-records: a `share` of them
        (no draws for a source that is not listed, so the others' streams do not shift)."""
        if source not in self.sources:
            return np.zeros(len(child), dtype=bool)
        mine = (registry.hukou[child] == self.group) & self.counties[registry.county[child]]
        return mine & (self.rng.random(len(child)) < self.share)

    def absences(self, registry, child, state, kind, rate, type_p, excused, unexcused):
        """Background absences as the school records them: (types, recorded mask).

        `state` is each row's child's latent state, `rate` and `type_p` the absence rate and
        type mix by state (the school module's), `excused`/`unexcused` the type codes."""
        hit = self._hit(registry, child, "school_absences")
        if self.mode == "omit":
            return kind, ~hit
        if self.mode == "relabel":
            return np.where(hit & (kind == unexcused), excused, kind), np.ones(
                len(child), dtype=bool
            )
        at_risk = hit & (state > 0)
        kept = ~at_risk | (self.rng.random(len(child)) < rate[0] / rate[state])
        stable_kind = draw_rows(np.tile(type_p[0], (len(child), 1)), self.rng)
        return np.where(at_risk, stable_kind, kind), kept

    def visits(self, registry, child, state, concerns, visit_p, concern_p):
        """Casework visits as entered: (concern flags, recorded mask); `visit_p` and `concern_p`
        are the visit and concern rates by state (the protection module's)."""
        hit = self._hit(registry, child, "casework_visits")
        recorded = np.ones(len(child), dtype=bool)
        if self.mode == "omit":
            return concerns, ~hit
        if self.mode == "relabel":
            return np.where(hit[:, None], 0, concerns).astype(concerns.dtype), recorded
        at_risk = hit & (state > 0)
        recorded = ~at_risk | (self.rng.random(len(child)) < visit_p[0] / visit_p[state])
        keep_flag = self.rng.random(concerns.shape) < (concern_p[0] / concern_p[state])[:, None]
        return np.where(at_risk[:, None] & ~keep_flag, 0, concerns).astype(concerns.dtype), recorded

    def payment_days(self, registry, child, state, paid, due, stable_delay_max):
        """Payment dates as entered: conceal enters an at-risk child's late payment as a stable
        child's would be (`due` plus a delay below `stable_delay_max`, never after the real
        day), as a monthly batch entry does; the other modes leave payments alone."""
        if self.mode != "conceal":
            return paid
        hit = self._hit(registry, child, "welfare_payments") & (state > 0)
        stable = due + (self.rng.random(len(child)) * stable_delay_max).astype(int)
        return np.where(hit, np.minimum(paid, stable), paid)


def biased_counties(county_codes: np.ndarray, counties: tuple[str, ...]) -> np.ndarray:
    """Per county index, whether the recording bias hits it (no counties listed = every county)."""
    unknown = sorted(set(counties) - set(county_codes.tolist()))
    if unknown:
        raise SafetynetError(
            f"synthetic.measurement_bias.counties: {', '.join(unknown)} not among the generated "
            f"counties ({', '.join(county_codes.tolist())})"
        )
    return np.isin(county_codes, counties) if counties else np.ones(len(county_codes), dtype=bool)
