"""Changes to the registry over time, and the registry tables: `children` exports the values
after the last change, `registry_history` the changes.

Two kinds of change, each dated and chained per (child, field) (old value = the previous new):

- after an outcome: a `guardian_lost` is followed, weeks later, by a new guardian_type (and
  often by the category `de_facto_unsupported`); an `emergency_placement` often by the
  guardian_type `institution`. The children table shows the value as of the export, so
  without the history those outcomes leak into every earlier row of the child.
- in the background: a few children a year change category, guardian_type or disability level
  for reasons unrelated to any outcome.

The world does not change: the chain, the outcomes and p_true read the values the child was
registered with; only what the registry records (and exports) moves. Changes dated after the
span's last day are not recorded yet. The draws come from their own random stream.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from src.data import contract as c
from src.data.synthetic import export as ex
from src.data.synthetic.registry import CATEGORY_SHARE, GUARDIAN_GIVEN_CATEGORY, Registry

FIELDS = tuple(c.REGISTRY_HISTORY_FIELDS)  # category, guardian_type, disability_level
CATEGORY, GUARDIAN, DISABILITY = range(3)
# Who takes over after a guardian is lost (GUARDIAN_TYPE order).
GUARDIAN_AFTER_LOSS = (0.0, 0.0, 0.45, 0.30, 0.20, 0.05)
UNSUPPORTED_AFTER_LOSS = 0.35  # P(category becomes de_facto_unsupported) after a guardian_lost
INSTITUTION_AFTER_PLACEMENT = 0.5  # P(guardian_type becomes institution) after a placement
LAG_DAYS = (7, 60)  # the registry is updated this many days after the event (uniform)
# Background changes per child-year, by field.
BACKGROUND_PER_YEAR = {CATEGORY: 0.02, GUARDIAN: 0.01, DISABILITY: 0.015}
TARGET, REDRAW = 0, 1  # proposal kinds: a fixed new value, or a draw unlike the current one


@dataclass(frozen=True)
class Changes:
    """Recorded changes as parallel arrays, sorted by child, field, date; values are codes."""

    child: np.ndarray
    field: np.ndarray  # index into FIELDS
    old: np.ndarray  # code index (disability: the level)
    new: np.ndarray
    date: np.ndarray  # datetime64[D]

    @property
    def n(self) -> int:
        return len(self.child)


def draw_changes(
    registry: Registry, protection: dict[str, np.ndarray], span_end: np.datetime64, rng
) -> Changes:
    """Outcome-driven and background changes, chained from the registered values."""
    proposals = [*_after_outcomes(registry, protection, rng), *_background(registry, span_end, rng)]
    child, field, date, kind, value = (np.concatenate(p) for p in zip(*proposals, strict=True))
    keep = date <= span_end
    order = np.lexsort((value, date, field, child))
    order = order[keep[order]]
    return _chain(registry, child[order], field[order], date[order], kind[order], value[order], rng)


def _after_outcomes(registry: Registry, protection: dict[str, np.ndarray], rng) -> list[tuple]:
    protected = protection["protected"].astype(bool)
    event = protection["event_type"].astype(np.int64)
    lost = protected & (event == c.PROTECTION_EVENT.index("guardian_lost"))
    placed = protected & (event == c.PROTECTION_EVENT.index("emergency_placement"))
    child = protection["child"].astype(np.int64)
    day = protection["date"].astype("datetime64[D]")
    out = []
    who, when = child[lost], day[lost] + _lag(lost.sum(), rng)
    guardian = (rng.random(len(who))[:, None] > np.cumsum(GUARDIAN_AFTER_LOSS)).sum(axis=1)
    out.append(_proposals(who, GUARDIAN, when, TARGET, guardian))
    unsupported = rng.random(len(who)) < UNSUPPORTED_AFTER_LOSS
    target = c.CATEGORY.index("de_facto_unsupported")
    out.append(_proposals(who[unsupported], CATEGORY, when[unsupported], TARGET, target))
    institution = placed & (rng.random(len(placed)) < INSTITUTION_AFTER_PLACEMENT)
    when = day[institution] + _lag(institution.sum(), rng)
    out.append(
        _proposals(child[institution], GUARDIAN, when, TARGET, c.GUARDIAN_TYPE.index("institution"))
    )
    return out


def _background(registry: Registry, span_end: np.datetime64, rng) -> list[tuple]:
    years = (span_end - registry.registered).astype(np.int64).clip(min=0) / 365.25
    out = []
    for field, rate in BACKGROUND_PER_YEAR.items():
        counts = rng.poisson(rate * years)
        who = np.repeat(np.arange(registry.n), counts)
        offset = (rng.random(len(who)) * years[who] * 365.25).astype(np.int64)
        out.append(_proposals(who, field, registry.registered[who] + offset + 1, REDRAW, -1))
    return out


def _lag(n: int, rng) -> np.ndarray:
    return rng.integers(LAG_DAYS[0], LAG_DAYS[1] + 1, size=int(n)).astype("timedelta64[D]")


def _proposals(child, field, date, kind, value) -> tuple:
    n = len(child)
    return (
        np.asarray(child, dtype=np.int64),
        np.full(n, field, dtype=np.int8),
        np.asarray(date, dtype="datetime64[D]"),
        np.full(n, kind, dtype=np.int8),
        np.broadcast_to(np.asarray(value, dtype=np.int64), (n,)).copy(),
    )


def _chain(registry: Registry, child, field, date, kind, value, rng) -> Changes:
    """Walk each (child, field) in date order from the registered value; drop no-op changes
    and second changes on one day (the export could not order them)."""
    current = {CATEGORY: registry.category.copy(), GUARDIAN: registry.guardian.copy(),
               DISABILITY: registry.disability.copy()}  # fmt: skip
    u = rng.random(len(child))
    kept, old, new = (
        np.zeros(len(child), bool),
        np.zeros(len(child), np.int64),
        np.zeros(len(child), np.int64),
    )
    last_kept = None  # (child, field, date) of the latest kept change
    for i in range(len(child)):
        ch, f = child[i], field[i]
        if last_kept == (ch, f, date[i]):
            continue
        before = int(current[f][ch])
        after = int(value[i]) if kind[i] == TARGET else _redraw(f, before, registry, ch, u[i])
        if after == before:
            continue
        kept[i], old[i], new[i] = True, before, after
        current[f][ch] = after
        last_kept = (ch, f, date[i])
    return Changes(child[kept], field[kept], old[kept], new[kept], date[kept])


def _redraw(field: int, before: int, registry: Registry, child: int, u: float) -> int:
    """A background change: another category or guardian by the registry's mix; a level +-1."""
    if field == DISABILITY:
        return 1 if before == 0 else int(np.clip(before + (1 if u < 0.6 else -1), 0, 4))
    if field == CATEGORY:
        weights = np.array([CATEGORY_SHARE[name] for name in c.CATEGORY])
    else:
        weights = np.array(GUARDIAN_GIVEN_CATEGORY[c.CATEGORY[registry.category[child]]])
    weights[before] = 0.0
    cdf = np.cumsum(weights) / weights.sum()
    return int(min(np.searchsorted(cdf, u, side="right"), len(cdf) - 1))


def as_exported(registry: Registry, changes: Changes) -> Registry:
    """The registry with each changed field at its last recorded value (what `children` shows)."""
    values = {CATEGORY: registry.category.copy(), GUARDIAN: registry.guardian.copy(),
              DISABILITY: registry.disability.copy()}  # fmt: skip
    for f, array in values.items():  # changes are sorted by date within a field: last one wins
        hit = changes.field == f
        array[changes.child[hit]] = changes.new[hit]
    return dataclasses.replace(
        registry, category=values[CATEGORY], guardian=values[GUARDIAN],
        disability=values[DISABILITY],
    )  # fmt: skip


def value_text(field: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Codes as the contract's text values (the field's code list; a disability level as digits)."""
    out = np.empty(len(code), dtype=object)
    for f, name in enumerate(FIELDS):
        hit = field == f
        out[hit] = np.asarray(c.REGISTRY_HISTORY_FIELDS[name], dtype=object)[code[hit]]
    return out


def history_table(registry: Registry, changes: Changes) -> tuple[pa.Table, dict]:
    """registry_history in the contract's columns; its defects are spoiled extra copies (every
    row links a chain, so none may be lost)."""
    fields = np.asarray(list(c.REGISTRY_HISTORY_FIELDS), dtype=object)[changes.field]
    table = pa.table(
        {
            "child_id": ex.labels(changes.child, registry.child_id),
            "field": pa.array(fields.tolist(), pa.string()),
            "old_value": pa.array(value_text(changes.field, changes.old).tolist(), pa.string()),
            "new_value": pa.array(value_text(changes.field, changes.new).tolist(), pa.string()),
            "change_date": ex.dates(changes.date),
        }
    )
    every = np.ones(changes.n, dtype=bool)
    return table, {"default": every, "duplicate": every, "copies": True}


def children_table(registry: Registry) -> pa.Table:
    """The registry in the contract's columns."""
    community = registry.community_codes[registry.community]
    return pa.table(
        {
            "child_id": pa.array(registry.child_id.tolist(), pa.string()),
            "name": pa.array(registry.name.tolist(), pa.string()),
            "id_number": pa.array(registry.id_number.tolist(), pa.string()),
            "sex": ex.codes(registry.sex, c.SEX),
            "birth_date": ex.dates(registry.birth),
            "ethnicity": ex.codes(registry.ethnicity, c.ETHNICITY),
            "hukou": ex.codes(registry.hukou, c.HUKOU),
            "county_code": ex.labels(registry.county, registry.county_codes),
            "community_code": pa.array(community.tolist(), pa.string()),
            "caseworker_id": pa.array(np.char.add("CW", community).tolist(), pa.string()),
            "category": ex.codes(registry.category, c.CATEGORY),
            "disability_level": ex.integers(registry.disability),
            "guardian_type": ex.codes(registry.guardian, c.GUARDIAN_TYPE),
            "registered_date": ex.dates(registry.registered),
        }
    )
