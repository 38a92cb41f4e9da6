"""The params sections of the linkage room (src/config.py declares them in Params).

`synthetic.departments` (src/data/synthetic/departments.py), `linkage` (src/linkage/linkage.py)
and `screening` (src/linkage/screening.py). Checked when params.yaml loads.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields

from src.errors import SafetynetError


def _shares_in_unit(section: str, obj) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float) and not 0 <= value <= 1:
            raise SafetynetError(f"{section}.{f.name} must be in [0, 1], got {value}")


@dataclass(frozen=True)
class DepartmentNoise:
    """Share of a department's person records with each error in a shared field."""

    typo: float  # one character of the name replaced by another
    homophone: float  # one character replaced by a same-sounding one (同音字)
    traditional: float  # the name written in traditional characters
    day_month_swap: float  # birth date with day and month swapped (day <= 12)
    day_off: float  # birth date one day off
    id_missing: float  # no ID number
    id_digit: float  # one ID digit mistyped
    id_transposition: float  # two adjacent ID digits swapped
    id_dropped: float  # one ID digit left out
    other_county: float = 0.0  # recorded in another county of the prefecture (school there)

    def __post_init__(self):
        _shares_in_unit("synthetic.departments.noise", self)


@dataclass(frozen=True)
class DepartmentCoverage:
    school: float  # share of children on a school roll
    health: float  # share of children with a hospital or medical insurance record


@dataclass(frozen=True)
class Departments:
    enabled: bool
    coverage: DepartmentCoverage
    ordinary_share: float  # children the registry does not list (and need not), x n_children
    unregistered_at_risk: float  # at-risk children missing from the registry, x n_children
    duplicate_share: float  # persons a department records twice, under two of its ids
    noise: DepartmentNoise

    def __post_init__(self):
        _shares_in_unit("synthetic.departments", self)
        _shares_in_unit("synthetic.departments.coverage", self.coverage)


@dataclass(frozen=True)
class Linkage:
    # splink's backend (src/linkage/comparisons.py); features.engine, when present, wins
    engine: typing.Literal["duckdb", "spark"]
    accept_probability: float  # a pair at or above: the same child
    review_probability: float  # a pair in [review, accept): the clerical review queue
    u_max_pairs: int  # random pairs sampled to estimate the u probabilities
    em_max_pairs: int  # blocked pairs sampled for each EM training session
    histogram_bins: int  # bins of the match-weight histogram in reports/linkage.json
    threads: int
    memory_gb: int
    temp_gb: int  # DuckDB's spill to disk at most: too many pairs fail instead of filling it

    def __post_init__(self):
        if not 0 < self.review_probability <= self.accept_probability < 1:
            raise SafetynetError(
                "linkage: need 0 < review_probability <= accept_probability < 1, got "
                f"{self.review_probability} and {self.accept_probability}"
            )


@dataclass(frozen=True)
class Screening:
    language: typing.Literal["zh", "en"]  # of the rule wording in the screening lists
    lookback_days: int  # a department record counts if dated within this many days of the export
