"""The data contract (shared/data-contract.md) as code: tables, columns, codes and row rules.

The single source of truth: ingest validates against it, the generator draws its codes from it.

A row rule that fails gives a machine-readable quarantine reason ``<check>:<column>``,
for example ``unknown_code:event_type`` or ``beyond_export_date:visit_date`` (a date after the
export date, which `src.data.export_date` infers or `base.export_date` sets; a date after the
day the pipeline runs is beyond it too, so there is no separate "future date" reason).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pandera.pandas as pa

from src.data import reviews_spec
from src.data.service_vocabulary import CODES as SERVICE_CODES
from src.data.specs import CODE, DATE, ID, INT, LIST_SEPARATOR, NUMBER, TEXT, ColumnSpec, TableSpec
from src.linkage import persons_spec

MIN_DATE = dt.date(1990, 1, 1)
# Plausibility bounds (quarantine reason `implausible_amount:<column>`): the most one record
# of the table can plausibly amount to, in CNY. A value above is a typing or unit error.
MAX_WELFARE_AMOUNT_CNY = 100_000  # one benefit payment
MAX_MEDICAL_COST_CNY = 10_000_000  # one medical event, cost or out of pocket
CHILD_ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
COUNTY_CODE_PATTERN = r"^[0-9]{6}$"

SEX = ("f", "m")
ETHNICITY = ("han", "minority")
HUKOU = ("rural", "urban")
CATEGORY = (
    "orphan",
    "de_facto_unsupported",
    "left_behind",
    "low_income",
    "extreme_poverty",
    "disabled",
    "seriously_ill",
    "other",
)
GUARDIAN_TYPE = ("both_parents", "single_parent", "grandparents", "other_relatives", "institution", "none")
WELFARE_EVENT = ("enrolled", "payment", "recert_due", "recert_done", "suspended", "terminated", "reinstated")
BENEFIT = ("basic_living", "orphan_allowance", "dibao", "disability_subsidy", "other")
EXIT_REASON = (
    "aged_out",
    "income_above_line",
    "adopted",
    "moved_away",
    "deceased",
    "recert_missed",
    "documents_missing",
    "contact_lost",
    "other",
)
LEGITIMATE_EXIT_REASONS = ("aged_out", "income_above_line", "adopted", "moved_away", "deceased")
PROCEDURAL_EXIT_REASONS = ("recert_missed", "documents_missing", "contact_lost", "other")
ENROLLMENT_EVENT = ("enrolled", "transferred", "suspended", "dropped_out", "returned", "graduated")
SCHOOL_TYPE = ("regular", "special_education", "home_delivery")
ABSENCE_TYPE = ("sick", "excused", "unexcused")
ABSENCE_DAYS = (0.5, 1.0)
MEDICAL_EVENT = (
    "outpatient",
    "inpatient",
    "emergency",
    "rehab_attended",
    "rehab_missed",
    "mental_health",
    "insurance_enrolled",
    "insurance_lapsed",
)
DIAGNOSIS_GROUP = ("chronic", "injury", "mental", "infectious", "congenital", "other")
VISIT_MODE = ("home", "phone", "school", "other")
CONCERNS = (
    "concern_basic_needs",
    "concern_health",
    "concern_education",
    "concern_mental_health",
    "concern_safety",
    "concern_guardianship",
)
PROTECTION_EVENT = (
    "abuse_report",
    "neglect_report",
    "runaway",
    "police_contact",
    "guardian_lost",
    "emergency_placement",
)


def _child_id() -> ColumnSpec:
    return ColumnSpec("child_id", ID, True, pattern=CHILD_ID_PATTERN)


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "children",
            True,
            (
                _child_id(),
                ColumnSpec("name", TEXT, False, personal=True),
                ColumnSpec("id_number", TEXT, False, personal=True),
                ColumnSpec("sex", CODE, True, SEX),
                ColumnSpec("birth_date", DATE, True),
                ColumnSpec("ethnicity", CODE, False, ETHNICITY),
                ColumnSpec("hukou", CODE, True, HUKOU),
                ColumnSpec("county_code", TEXT, True, pattern=COUNTY_CODE_PATTERN),
                ColumnSpec("community_code", TEXT, True),
                ColumnSpec("caseworker_id", TEXT, False),
                ColumnSpec("category", CODE, True, CATEGORY),
                ColumnSpec("disability_level", INT, True, min_value=0, max_value=4),
                ColumnSpec("guardian_type", CODE, True, GUARDIAN_TYPE),
                ColumnSpec("registered_date", DATE, True),
            ),
            "registered_date",
        ),
        TableSpec(
            "welfare_events",
            True,
            (
                _child_id(),
                ColumnSpec("event_date", DATE, True),
                ColumnSpec("event_type", CODE, True, WELFARE_EVENT),
                ColumnSpec("benefit", CODE, True, BENEFIT),
                ColumnSpec("amount_cny", NUMBER, False, min_value=0, plausible_max=MAX_WELFARE_AMOUNT_CNY),
                ColumnSpec("reason", CODE, False, EXIT_REASON),
            ),
            "event_date",
        ),
        TableSpec("school_calendar", False, (ColumnSpec("date", DATE, True),), "date"),
        TableSpec(
            "school_enrollment",
            True,
            (
                _child_id(),
                ColumnSpec("event_date", DATE, True),
                ColumnSpec("school_id", TEXT, True),
                ColumnSpec("event_type", CODE, True, ENROLLMENT_EVENT),
                ColumnSpec("school_type", CODE, False, SCHOOL_TYPE),
                ColumnSpec("grade", INT, False, min_value=1, max_value=12),
            ),
            "event_date",
        ),
        TableSpec(
            "school_absences",
            True,
            (
                _child_id(),
                ColumnSpec("absence_date", DATE, True),
                ColumnSpec("school_id", TEXT, False),
                ColumnSpec("absence_type", CODE, True, ABSENCE_TYPE),
                ColumnSpec("days", NUMBER, True, ABSENCE_DAYS),
            ),
            "absence_date",
        ),
        TableSpec(
            "medical_events",
            True,
            (
                _child_id(),
                ColumnSpec("event_date", DATE, True),
                ColumnSpec("event_type", CODE, True, MEDICAL_EVENT),
                ColumnSpec("diagnosis_group", CODE, False, DIAGNOSIS_GROUP),
                ColumnSpec(
                    "cost_cny", NUMBER, False, min_value=0, plausible_max=MAX_MEDICAL_COST_CNY
                ),
                ColumnSpec(
                    "out_of_pocket_cny",
                    NUMBER,
                    False,
                    min_value=0,
                    plausible_max=MAX_MEDICAL_COST_CNY,
                ),
            ),
            "event_date",
        ),
        TableSpec(
            "casework_visits",
            True,
            (
                _child_id(),
                ColumnSpec("visit_date", DATE, True),
                ColumnSpec("caseworker_id", TEXT, False),
                ColumnSpec("mode", CODE, True, VISIT_MODE),
                *(ColumnSpec(c, INT, True, min_value=0, max_value=1) for c in CONCERNS),
            ),
            "visit_date",
        ),
        TableSpec(
            "protection_events",
            False,
            (
                _child_id(),
                ColumnSpec("event_date", DATE, True),
                ColumnSpec("event_type", CODE, True, PROTECTION_EVENT),
            ),
            "event_date",
        ),
    )
}

# --- registry_history (optional): the registry fields that can change, and when -----------
# category, guardian_type and disability_level in `children` are the values as of the export.
# A change recorded after an outcome (a guardian_type updated after a guardian_lost) would leak
# that outcome into every earlier row; with this table, features read the value in force at
# each as-of date. Values are the field's codes as text (disability_level "0"-"4"); a value not
# in its field's list is `unknown_code:old_value` / `unknown_code:new_value`, and a chain of
# changes that does not link up is `inconsistent_chain:*` (src.data.row_checks).
DISABILITY_LEVELS = ("0", "1", "2", "3", "4")
REGISTRY_HISTORY = "registry_history"
REGISTRY_HISTORY_FIELDS: dict[str, tuple[str, ...]] = {
    "category": CATEGORY,
    "guardian_type": GUARDIAN_TYPE,
    "disability_level": DISABILITY_LEVELS,
}
TABLES[REGISTRY_HISTORY] = TableSpec(
    REGISTRY_HISTORY,
    False,
    (
        _child_id(),
        ColumnSpec("field", CODE, True, tuple(REGISTRY_HISTORY_FIELDS)),
        ColumnSpec("old_value", CODE, True),
        ColumnSpec("new_value", CODE, True),
        ColumnSpec("change_date", DATE, True),
    ),
    "change_date",
)

# --------------------------------------------------------------------------- lookups
# Optional name lookups for the watchlists: no child_id and no date, one row per `key`.
# Names and phones are personal (identity): they stay in data/interim/<table>.parquet and
# reach only the watchlists, never quarantine files, reports, features or MLflow. A table
# that is absent (or a code it lacks) leaves the watchlists showing codes.
LOOKUP_TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "caseworkers",
        False,
        (
            ColumnSpec("caseworker_id", TEXT, True),
            ColumnSpec("name", TEXT, True, personal=True),
            ColumnSpec("phone", TEXT, False, personal=True),
        ),
        None,
        key="caseworker_id",
    ),
    TableSpec(
        "communities",
        False,
        (
            ColumnSpec("community_code", TEXT, True),
            ColumnSpec("name", TEXT, True, personal=True),
            ColumnSpec(
                "county_code", TEXT, True, pattern=COUNTY_CODE_PATTERN, registry_column="county_code"
            ),
        ),
        None,
        key="community_code",
    ),
)
TABLES.update({t.name: t for t in LOOKUP_TABLES})

# --------------------------------------------------------------------------- service directory
# Optional `service_providers`: who offers which services (codes of src.data.service_vocabulary,
# `|`-joined), in which villages (`community_codes`, `|`-joined; missing = all of the county),
# for how many children a month, from when to when (missing = open-ended; active_to may lie
# after the export date). A provider_id may repeat over time, never with overlapping periods
# (`overlapping_duplicate:provider_id`). `contact` is personal: like a lookup's names it stays
# in data/interim/service_providers.parquet and reaches only the watchlists and referral files.
PROVIDER_KINDS = ("government", "charity", "volunteer", "school", "hospital")
SERVICE_PROVIDERS = "service_providers"
TABLES[SERVICE_PROVIDERS] = TableSpec(
    SERVICE_PROVIDERS,
    False,
    (
        ColumnSpec("provider_id", TEXT, True),
        ColumnSpec("name", TEXT, True),
        ColumnSpec("kind", CODE, True, PROVIDER_KINDS),
        ColumnSpec("county_code", TEXT, True, pattern=COUNTY_CODE_PATTERN, registry_column="county_code"),
        ColumnSpec("community_codes", TEXT, False, list=True),
        ColumnSpec("services", CODE, True, SERVICE_CODES, list=True),
        ColumnSpec("monthly_capacity", INT, True, min_value=1),
        ColumnSpec("contact", TEXT, False, personal=True),
        ColumnSpec("active_from", DATE, False),
        ColumnSpec("active_to", DATE, False, future_ok=True),
    ),
    None,
    key="provider_id",
    period=("active_from", "active_to"),
)
TABLES[reviews_spec.CASEWORK_REVIEWS] = reviews_spec.reviews_table(_child_id())  # optional, src/data/reviews_spec.py
TABLES.update({t.name: t for t in persons_spec.TABLES})  # optional, keyed by source (issue 17)
# children columns whose accepted values the lookups are checked against
REGISTRY_REFERENCES = tuple(
    sorted({c.registry_column for t in (*LOOKUP_TABLES, TABLES[SERVICE_PROVIDERS])
            for c in t.columns if c.registry_column})
)  # fmt: skip

# Whole-row rules beyond single columns: name -> (columns it concerns, predicate that is True when valid).
# An event dated before the child's birth is the cross-table reason `before_birth:<date column>`
# (src.data.row_checks); within the registry it is this table's row rule.
ROW_RULES: dict[str, dict[str, tuple[str, callable]]] = {
    "children": {
        "before_birth": (
            "registered_date",
            lambda df: df["registered_date"].isna()
            | df["birth_date"].isna()
            | (df["registered_date"] >= df["birth_date"]),
        ),
    },
    "welfare_events": {
        "amount_required": ("amount_cny", lambda df: (df["event_type"] != "payment") | df["amount_cny"].notna()),
        "amount_not_allowed": ("amount_cny", lambda df: (df["event_type"] == "payment") | df["amount_cny"].isna()),
        "reason_required": (
            "reason",
            lambda df: ~df["event_type"].isin(["suspended", "terminated"]) | df["reason"].notna(),
        ),
        "reason_not_allowed": (
            "reason",
            lambda df: df["event_type"].isin(["suspended", "terminated"]) | df["reason"].isna(),
        ),
    },
    SERVICE_PROVIDERS: {
        "period_reversed": (
            "active_to",
            lambda df: df["active_to"].isna() | df["active_from"].isna() | (df["active_to"] >= df["active_from"]),
        ),
    },
    reviews_spec.CASEWORK_REVIEWS: reviews_spec.ROW_RULES,
    "medical_events": {
        "out_of_pocket_above_cost": (
            "out_of_pocket_cny",
            lambda df: df["out_of_pocket_cny"].isna()
            | df["cost_cny"].isna()
            | (df["out_of_pocket_cny"] <= df["cost_cny"]),
        ),
    },
}

PANDAS_DTYPE = {ID: str, TEXT: str, CODE: str, DATE: "datetime64[us]", INT: "Int64", NUMBER: "float64"}


def build_schema(table: str, export_date: dt.date) -> pa.DataFrameSchema:
    """The pandera schema of one table over *parsed* values (dates, numbers already typed).

    Each check is named after the quarantine reason it produces.
    """
    spec = TABLES[table]
    export_ts = pd.Timestamp(export_date)
    columns = {}
    for col in spec.columns:
        checks = []
        if col.required:
            checks.append(pa.Check(lambda s: s.notna(), name="missing_required", ignore_na=False))
        if col.codes is not None and col.list:
            checks.append(pa.Check(lambda s, codes=frozenset(col.codes): s.map(
                lambda v: all(x.strip() in codes for x in v.split(LIST_SEPARATOR))), name="unknown_code"))
        elif col.codes is not None:
            checks.append(pa.Check(lambda s, codes=col.codes: s.isin(codes), name="unknown_code"))
        if col.pattern is not None:
            checks.append(pa.Check(lambda s, p=col.pattern: s.str.fullmatch(p), name="invalid_format"))
        if col.min_value is not None:
            checks.append(pa.Check(lambda s, lo=col.min_value: s >= lo, name="out_of_range"))
        if col.max_value is not None:
            checks.append(pa.Check(lambda s, hi=col.max_value: s <= hi, name="out_of_range"))
        if col.plausible_max is not None:
            checks.append(
                pa.Check(lambda s, hi=col.plausible_max: s <= hi, name="implausible_amount")
            )
        if col.kind == DATE and not col.future_ok:
            checks.append(pa.Check(lambda s: s <= export_ts, name="beyond_export_date"))
        if col.kind == DATE:
            checks.append(pa.Check(lambda s: s >= pd.Timestamp(MIN_DATE), name="date_before_1990"))
        columns[col.name] = pa.Column(PANDAS_DTYPE[col.kind], checks=checks, nullable=True, required=col.required)
    frame_checks = [
        pa.Check(rule, name=f"{name}:{column}", ignore_na=False)
        for name, (column, rule) in ROW_RULES.get(table, {}).items()
    ]
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=False, coerce=False, name=table)


def is_default_school_day(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Monday-Friday outside 15 Jan-20 Feb (winter break) and 10 Jul-31 Aug (summer break)."""
    idx = pd.DatetimeIndex(dates)
    month_day = idx.month * 100 + idx.day
    winter = (month_day >= 115) & (month_day <= 220)
    summer = (month_day >= 710) & (month_day <= 831)
    return np.asarray((idx.dayofweek < 5) & ~winter & ~summer)


def default_school_calendar(start: dt.date, end: dt.date) -> pd.DataFrame:
    """The contract's default school days between start and end inclusive, as a `date` column."""
    days = pd.date_range(start, end, freq="D")
    return pd.DataFrame({"date": days[is_default_school_day(days)].astype("datetime64[us]")})
