"""The feature columns of the final select: SQL expressions over the family aggregates.

``feature_query`` (``src/features/queries.py``) selects ``AUDIT_SELECT`` and ``SELECT_FEATURES``
from the row key ``k``, the child ``c``, the as-of table ``a`` and one alias per family
(``wf``, ``pg``, ``en``, ...). ``SELECT_FEATURES`` names are the catalogue's, in its order.

History: a feature with a look-back window (``FeatureSpec.window_days``) is NULL where the
window reaches before the export's history start (``observed``, from the as-of table's
``ok_<days>`` flags), except those that decide it themselves because an observed event keeps
them known: the "days since" features, ``recert_overdue`` and ``last_suspension_reason``.
"""

from __future__ import annotations

from src.features.catalogue import DAYS_SINCE_CAP, spec
from src.features.sql import (
    REASON_RANK,
    SCHOOL_TYPE_RANK,
    count0,
    days_since,
    decode_case,
    month_index,
    observed,
    rate,
    registry_value,
)

ENROLLMENT_STATUS = decode_case(
    "en.enroll_key % 10",
    {1: "dropped_out", 2: "suspended", 3: "graduated", 4: "enrolled", 5: "enrolled", 6: "enrolled"},
    "no_record",
)

BIRTH_LATE = "CASE WHEN EXTRACT(MONTH FROM c.birth_date) > 9 OR (EXTRACT(MONTH FROM c.birth_date) = 9 AND EXTRACT(DAY FROM c.birth_date) > 1) THEN 1 ELSE 0 END"

# The next recertification falls due on the first day of an anniversary month of the anchor:
# the latest recert_due on or before as_of or, without one, the registration month (then at
# least a year on). The first such month start on or after as_of, as a month index.
_ANCHOR = f"COALESCE({month_index('wf.any_due')}, {month_index('c.registered_date')})"
_MIN_YEARS = "CASE WHEN wf.any_due IS NULL THEN 1 ELSE 0 END"
_FROM = f"({month_index('k.as_of')} + CASE WHEN EXTRACT(DAY FROM k.as_of) = 1 THEN 0 ELSE 1 END)"
_DUE = f"({_ANCHOR} + 12 * GREATEST({_MIN_YEARS}, CAST(CEIL(({_FROM} - {_ANCHOR}) / 12.0) AS BIGINT)))"
RECERT_DUE_DATE = (
    f"make_date(CAST(FLOOR({_DUE} / 12.0) AS BIGINT), CAST({_DUE} - 12 * FLOOR({_DUE} / 12.0) + 1 AS BIGINT), 1)"
)

# Columns computed from the family aggregates; names are the catalogue's.
_COLUMNS = {
    # Without a status event, payments in the last year show a benefit that began before the data.
    "benefit_status": "CASE WHEN wf.status_key IS NULL AND pg.last_payment IS NOT NULL THEN 'active' ELSE "
    + decode_case(
        "wf.status_key % 10", {1: "suspended", 2: "terminated", 3: "active", 4: "active"}, "never"
    )
    + " END",
    "payment_ratio_180d": "CASE WHEN ws.first_d IS NOT NULL THEN LEAST(1.0, COALESCE(pg.paid_months_180, 0) "
    "/ LEAST(6.0, GREATEST(1.0, CEIL(date_diff('day', ws.first_d, k.as_of) / 30.44)))) END",
    "days_since_last_payment": days_since("pg.last_payment"),
    "payment_gap_max_365d": f"CASE WHEN ws.first_d IS NOT NULL THEN CAST(LEAST({DAYS_SINCE_CAP}, "
    f"GREATEST(COALESCE(pg.gap_max, 0), COALESCE(date_diff('day', pg.last_payment, k.as_of), {DAYS_SINCE_CAP}))) "
    "AS DOUBLE) END",
    # An open due is seen whatever the history; "none open" needs the whole 365-day look-back.
    "recert_overdue": "CASE WHEN wf.last_due IS NOT NULL THEN (CASE WHEN wf.last_done IS NULL "
    "OR wf.last_done < wf.last_due THEN 1.0 ELSE 0.0 END) WHEN a.ok_365 THEN 0.0 END",
    "days_since_recert": days_since("wf.last_recert"),
    "days_until_recert_due": f"CAST(date_diff('day', k.as_of, {RECERT_DUE_DATE}) AS DOUBLE)",
    "suspensions_365d": count0("wf.susp_365"),
    "last_suspension_reason": "CASE WHEN wf.reason_key IS NULL AND NOT COALESCE(a.ok_365, FALSE) "
    "THEN 'unknown' ELSE "
    + decode_case(
        "wf.reason_key % 10", {rank: reason for reason, rank in REASON_RANK.items()}, "none"
    )
    + " END",
    # Means of whole-fen sums: integer sums are exact, so the result never depends on thread order.
    "payment_amount_change_90d": "CASE WHEN pg.amount_prev_90 > 0 AND pg.n_amount_90 > 0 THEN "
    "(CAST(pg.amount_90 AS DOUBLE) / pg.n_amount_90) / (CAST(pg.amount_prev_90 AS DOUBLE) / pg.n_amount_prev_90) "
    "- 1 END",
    "payment_delay_90d": "CAST(pg.delay_90 AS DOUBLE)",
    "visit_concern_basic_needs_180d": count0("vi.c_basic_needs_180"),
    "enrollment_status": ENROLLMENT_STATUS,
    "school_type": decode_case(
        "en.school_type_key % 10",
        {rank: code for code, rank in SCHOOL_TYPE_RANK.items()},
        "unknown",
    ),
    "grade_gap": f"CAST(en.grade_key % 10000 - 5000 + EXTRACT(YEAR FROM c.birth_date) + {BIRTH_LATE} + 5 AS DOUBLE)",
    "absence_rate_all_30d": rate("ab.all_30", "a.sd_30"),
    "absence_rate_all_90d": rate("ab.all_90", "a.sd_90"),
    "absence_rate_all_365d": rate("ab.all_365", "a.sd_365"),
    "absence_rate_unexcused_90d": rate("ab.unexcused_90", "a.sd_90"),
    "absence_rate_excused_90d": rate("ab.excused_90", "a.sd_90"),
    "absence_rate_sick_90d": rate("ab.sick_90", "a.sd_90"),
    "unexcused_days_90d": "CASE WHEN in_school AND a.sd_90 > 0 THEN COALESCE(ab.unexcused_90, 0) END",
    "absence_trend_90d": f"{rate('ab.all_90', 'a.sd_90')} - {rate('ab.all_prev_90', 'a.sd_prev_90')}",
    "longest_unexcused_streak_90d": "CASE WHEN in_school AND a.sd_90 > 0 THEN CAST(COALESCE(st.streak_90, 0) "
    "AS DOUBLE) END",
    "days_since_last_absence": days_since("ab.last_absence"),
    "school_transfers_365d": count0("en.transfers_365"),
    "school_suspensions_365d": count0("en.school_susp_365"),
    "visit_concern_education_180d": count0("vi.c_education_180"),
    "school_period": "a.school_period",
    "outpatient_visits_180d": count0("md.outpatient_180"),
    "emergency_visits_180d": count0("md.emergency_180"),
    "inpatient_stays_365d": count0("md.inpatient_365"),
    "rehab_missed_180d": count0("md.rehab_missed_180"),
    "rehab_attendance_ratio_180d": "CASE WHEN md.rehab_attended_180 + md.rehab_missed_180 > 0 THEN "
    "CAST(md.rehab_attended_180 AS DOUBLE) / (md.rehab_attended_180 + md.rehab_missed_180) END",
    # The run of the latest rehab session, bounded by the missed sessions still in the window.
    "rehab_missed_streak": "CAST(COALESCE(LEAST(rh.rehab_key % 1000, rh.missed_sessions_365), 0) AS DOUBLE)",
    "insurance_status": decode_case(
        "ins.insurance_key % 10", {1: "lapsed", 2: "insured"}, "no_record"
    ),
    "days_since_insurance_lapse": days_since("md.last_lapse"),
    "out_of_pocket_cny_365d": "COALESCE(md.oop_365, 0) / 100.0",
    "out_of_pocket_share_365d": "CASE WHEN md.cost_365 > 0 THEN "
    "LEAST(1.0, CAST(md.oop_costed_365 AS DOUBLE) / md.cost_365) END",
    "visit_concern_health_180d": count0("vi.c_health_180"),
    "mental_health_contacts_180d": count0("md.mh_180"),
    "days_since_mental_health_contact": days_since("md.last_mh"),
    "mental_diagnosis_events_365d": count0("md.mental_dx_365"),
    "visit_concern_mental_health_180d": count0("vi.c_mental_health_180"),
    "abuse_reports_365d": count0("pr.abuse_365"),
    "neglect_reports_365d": count0("pr.neglect_365"),
    "runaways_365d": count0("pr.runaway_365"),
    "police_contacts_365d": count0("pr.police_365"),
    "days_since_protection_event": days_since("pr.last_protection"),
    "visit_concern_safety_180d": count0("vi.c_safety_180"),
    "guardian_type": registry_value("guardian_type", "c.guardian_type"),
    "guardian_lost_365d": count0("pr.guardian_lost_365"),
    "emergency_placements_365d": count0("pr.placement_365"),
    "visit_concerns_30d": count0("vi.concerns_30"),
    "concerns_per_visit": "CAST(vh.concerns AS DOUBLE) / NULLIF(vh.visits, 0)",
    "visit_concerns_90d": count0("vi.concerns_90"),
    "visit_concern_guardianship_180d": count0("vi.c_guardianship_180"),
    "visits_180d": count0("vi.visits_180"),
    "days_since_last_visit": days_since("vi.last_visit"),
    "age_years": "date_diff('day', c.birth_date, k.as_of) / 365.25",
    "category": registry_value("category", "c.category"),
    "disability_level": registry_value("disability_level", "c.disability_level"),
    "months_in_registry": "CAST((EXTRACT(YEAR FROM k.as_of) - EXTRACT(YEAR FROM c.registered_date)) * 12 "
    "+ EXTRACT(MONTH FROM k.as_of) - EXTRACT(MONTH FROM c.registered_date) AS DOUBLE)",
    "months_of_history": "a.months_hist",
    "month_of_year": "CAST(EXTRACT(MONTH FROM k.as_of) AS DOUBLE)",
    "sex": "c.sex",
    "ethnicity": "c.ethnicity",
    "hukou": "c.hukou",
}

# Windowed features whose expression decides an unobserved window itself (see the docstring).
DECIDE_HISTORY = ("recert_overdue", "last_suspension_reason")


def with_history(columns: dict[str, str]) -> dict[str, str]:
    """Each windowed feature wrapped in ``observed`` unless it decides its history itself."""
    out = {}
    for name, expr in columns.items():
        days = spec(name).window_days
        own = name in DECIDE_HISTORY or name.startswith("days_since_")
        out[name] = observed(days, expr) if days and not own else expr
    return out


SELECT_FEATURES = with_history(_COLUMNS)

AUDIT_SELECT = {
    "county_code": "c.county_code",
    "community_code": "c.community_code",
    "age_band": "CASE WHEN k.age < 6 THEN '0-5' WHEN k.age < 12 THEN '6-11' WHEN k.age < 15 THEN '12-14' "
    "ELSE '15-17' END",
    "disability": f"CASE WHEN {registry_value('disability_level', 'c.disability_level')} > 0 "
    "THEN 'disabled' ELSE 'none' END",
}
