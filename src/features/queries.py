"""The feature SQL: prepared event tables, the per-batch as-of table and one query per family.

SQL fragments (windows, latest-event keys, code ranks) come from ``src/features/sql.py``; the
feature columns of the final select from ``src/features/columns.py``.

Portability: standard SQL (CTEs, window functions, ``FILTER``, ``INTERVAL 'n' DAY``,
``EXTRACT``, ``CAST``). Exceptions, available under the same names in DuckDB, Trino and
Spark: ``date_diff('day', a, b)`` (Spark: ``datediff(b, a)``; only whole days are ever
asked for, where engines agree), ``LEAST``/``GREATEST`` and ``date_trunc('month', d)``;
``make_date(y, m, 1)`` is DuckDB's and Spark's (Trino: ``date(format('%d-%02d-01', y, m))``).
Ages and months are computed with ``EXTRACT`` because engines disagree on what
``date_diff('year', ...)`` counts.
"Latest event" features avoid engine-specific ``arg_max``: each event gets the sortable key
``days_since_1970 * 10 + rank`` (rank breaks same-day ties: the restoring event wins), and
``MAX(key)`` recovers both the date and the code in one pass.

Leakage: every family joins an event to an as-of date only when ``d <= as_of``; windowed
aggregates add ``d > from_n`` (``as_of - INTERVAL 'n' DAY`` as a DATE), so old events age out.
The history start at as_of (``f_dates.hist_start``, see the catalogue) reads only the first
records of tables that have one on or before as_of, so a record after as_of cannot move it.
The school calendar is a schedule, not a record: ``school_period`` reads the week from as_of.
Prepared tables may hold values computed over a child's whole history (the previous
payment, the running count of missed rehab sessions, runs of absent school days) only when
the value on a row depends on rows dated on or before it; a run that continues past
``as_of`` is clipped at ``as_of``. Those runs (unexcused school-day streaks, rehab
sessions) are defined once in ``src/features/runs.py`` and shared with the labels, so a
feature tracks the same run its label rule reads.
"""

from __future__ import annotations

from src.data.contract import REGISTRY_HISTORY_FIELDS
from src.features.catalogue import HISTORY_CAP_MONTHS, HISTORY_TABLES, WINDOWS_DAYS
from src.features.columns import AUDIT_SELECT, ENROLLMENT_STATUS, SELECT_FEATURES
from src.features.runs import rehab_sessions_sql, school_days_sql, streak_days_sql, streak_runs_sql
from src.features.sql import (
    BENEFIT_STATUS_RANK,
    ENROLLMENT_RANK,
    INSURANCE_RANK,
    REASON_RANK,
    SCHOOL_TYPE_RANK,
    absent,
    before,
    concerns,
    epoch_days,
    in_codes,
    n_events,
    rank_case,
    registry_ranks,
    school_year,
    since,
    window_start,
)

# The school days a dropout streak counts (src/features/runs.py), per child_idx.
STREAK_DAYS = streak_days_sql(
    "(SELECT child_idx, d AS absence_date, absence_type, days FROM f_abs)", "child_idx", "f_cal"
)

# Days from as_of over which school_period looks for a school day (term time or a break).
TERM_LOOKAHEAD_DAYS = 7


def history_starts_sql() -> str:
    """One row per history table with a record: its first record day and that month's first day.

    Reads the interim tables (``catalogue.HISTORY_TABLES``). ``features.as_of_dates`` starts the
    default as-of dates one month after the latest ``start_month``.
    """
    firsts = " UNION ALL ".join(
        f"SELECT '{table}' AS tbl, MIN(CAST({col} AS DATE)) AS first_d FROM {table}"
        for table, col in HISTORY_TABLES.items()
    )
    return f"""
        SELECT tbl, first_d, CAST(date_trunc('month', first_d) AS DATE) AS start_month
        FROM ({firsts}) AS s WHERE first_d IS NOT NULL"""


PREPARE = {
    "f_starts": history_starts_sql(),
    "f_kids": """
        SELECT CAST(ROW_NUMBER() OVER (ORDER BY child_pid) AS INTEGER) AS child_idx, child_pid,  -- in pid order
               CAST(birth_date AS DATE) AS birth_date, CAST(registered_date AS DATE) AS registered_date,
               category, CAST(disability_level AS DOUBLE) AS disability_level, guardian_type, sex,
               COALESCE(ethnicity, 'unknown') AS ethnicity, hukou, county_code, community_code
        FROM children""",
    "f_cal": school_days_sql(),
    "f_welfare": """
        SELECT k.child_idx, CAST(w.event_date AS DATE) AS d, w.event_type, w.reason,
               CAST(ROUND(w.amount_cny * 100) AS BIGINT) AS amount
        FROM welfare_events AS w JOIN f_kids AS k ON k.child_pid = w.child_pid""",
    # Days since the previous payment (earlier rows only; PAYMENTS clips it to 365 days); first_in_month marks a month's first.
    "f_payments": """
        SELECT child_idx, d, amount, date_diff('day', LAG(d) OVER (PARTITION BY child_idx ORDER BY d), d) AS gap,
               CASE WHEN ROW_NUMBER() OVER (PARTITION BY child_idx, EXTRACT(YEAR FROM d), EXTRACT(MONTH FROM d)
                                            ORDER BY d) = 1 THEN 1 ELSE 0 END AS first_in_month
        FROM f_welfare WHERE event_type = 'payment'""",
    # The earliest welfare record; at as_of it counts only when dated on or before as_of.
    "f_welfare_start": "SELECT child_idx, MIN(d) AS first_d FROM f_welfare GROUP BY child_idx",
    "f_enroll": """
        SELECT k.child_idx, CAST(e.event_date AS DATE) AS d, e.event_type, e.school_type,
               CAST(e.grade AS INTEGER) AS grade
        FROM school_enrollment AS e JOIN f_kids AS k ON k.child_pid = e.child_pid""",
    # Absences on school days only: a rate is over school days, and a streak counts them.
    "f_abs": """
        SELECT k.child_idx, c.d, c.sd_idx, a.absence_type, CAST(a.days AS DOUBLE) AS days
        FROM school_absences AS a
        JOIN f_kids AS k ON k.child_pid = a.child_pid
        JOIN f_cal AS c ON c.d = CAST(a.absence_date AS DATE)""",
    # Runs of school days with a full-day unexcused absence: the dropout label's streaks too.
    "f_streaks": streak_runs_sql(f"({STREAK_DAYS})", "child_idx"),
    # Money in whole fen (BIGINT): integer sums are exact, so results never depend on thread order.
    "f_med": """
        SELECT k.child_idx, CAST(m.event_date AS DATE) AS d, m.event_type, m.diagnosis_group,
               CAST(ROUND(m.cost_cny * 100) AS BIGINT) AS cost,
               CAST(ROUND(m.out_of_pocket_cny * 100) AS BIGINT) AS oop
        FROM medical_events AS m JOIN f_kids AS k ON k.child_pid = m.child_pid""",
    # Rehab sessions (one per child, day and outcome) with the run of misses the medical_lapse
    # label reads: the same sessions, the same tie rule.
    "f_rehab": rehab_sessions_sql(
        "(SELECT child_idx, d AS event_date, event_type FROM f_med)", "child_idx"
    ),
    "f_visits": """
        SELECT k.child_idx, CAST(v.visit_date AS DATE) AS d,
               CAST(v.concern_basic_needs AS INTEGER) AS c_basic_needs, CAST(v.concern_health AS INTEGER) AS c_health,
               CAST(v.concern_education AS INTEGER) AS c_education,
               CAST(v.concern_mental_health AS INTEGER) AS c_mental_health,
               CAST(v.concern_safety AS INTEGER) AS c_safety, CAST(v.concern_guardianship AS INTEGER) AS c_guardianship
        FROM casework_visits AS v JOIN f_kids AS k ON k.child_pid = v.child_pid""",
    "f_prot": """
        SELECT k.child_idx, CAST(p.event_date AS DATE) AS d, p.event_type
        FROM protection_events AS p JOIN f_kids AS k ON k.child_pid = p.child_pid""",
    # Changes of category, guardian_type and disability_level (none when the export has no
    # registry_history: the registry is then as of export).
    "f_registry": """
        SELECT k.child_idx, CAST(r.change_date AS DATE) AS d, r.field, r.old_value, r.new_value
        FROM registry_history AS r JOIN f_kids AS k ON k.child_pid = r.child_pid""",
}


def as_of_table_sql(keys: str) -> str:
    """One row per as-of date: school-day index of as_of, school days per window, the day before
    each window (``from_<days>``, a DATE), the history start with months_hist (capped), one
    ``ok_<days>`` flag per window (it lies after the history start; NULL without history) and
    the school period of the week from as_of.

    The calendar lists school days only: a week without one is a holiday when the calendar lists
    school days on both sides of it, and unknown when the calendar may simply have ended.
    """
    sd = "SELECT COUNT(*) FROM f_cal AS c WHERE c.d <= "
    ahead = f"a.as_of + INTERVAL '{TERM_LOOKAHEAD_DAYS}' DAY"
    # the window (as_of - w, as_of] starts on as_of - w + 1, which must not precede hist_start
    ok = "".join(
        f", CAST(h.as_of - INTERVAL '{w}' DAY AS DATE) AS from_{w}"
        f", date_diff('day', h.hist_start, h.as_of) >= {w - 1} AS ok_{w}"
        for w in WINDOWS_DAYS
    )
    months = (
        "(EXTRACT(YEAR FROM h.as_of) - EXTRACT(YEAR FROM h.hist_start)) * 12 "
        "+ EXTRACT(MONTH FROM h.as_of) - EXTRACT(MONTH FROM h.hist_start)"
    )
    return f"""
        SELECT h.*{ok},
               CAST(CASE WHEN h.hist_start IS NULL THEN 0 ELSE LEAST({HISTORY_CAP_MONTHS}, {months}) END
                    AS DOUBLE) AS months_hist,
               CASE WHEN h.term_days > 0 THEN 'term' WHEN h.cal_covers THEN 'holiday'
                    ELSE 'unknown' END AS school_period
        FROM (
        SELECT as_of,
               ({sd} a.as_of) AS idx_asof,
               ({sd} {before(90)}) AS idx_90,
               ({sd} a.as_of) - ({sd} {before(30)}) AS sd_30,
               ({sd} a.as_of) - ({sd} {before(90)}) AS sd_90,
               ({sd} {before(90)}) - ({sd} {before(180)}) AS sd_prev_90,
               ({sd} a.as_of) - ({sd} {before(365)}) AS sd_365,
               (SELECT MAX(s.start_month) FROM f_starts AS s WHERE s.first_d <= a.as_of) AS hist_start,
               (SELECT COUNT(*) FROM f_cal AS c WHERE c.d >= a.as_of AND c.d < {ahead}) AS term_days,
               (SELECT MIN(c.d) FROM f_cal AS c) <= a.as_of
                   AND (SELECT MAX(c.d) FROM f_cal AS c) >= {ahead} AS cal_covers
        FROM (SELECT DISTINCT CAST(as_of AS DATE) AS as_of FROM {keys}) AS a
        ) AS h"""


WELFARE = f"""
    SELECT e.child_idx, a.as_of,
        MAX({epoch_days("e.d")} * 10 + {rank_case("e.event_type", BENEFIT_STATUS_RANK)})
            FILTER (WHERE {in_codes("e.event_type", BENEFIT_STATUS_RANK)}) AS status_key,
        MAX(e.d) FILTER (WHERE e.event_type = 'recert_due' AND e.d < a.as_of AND {since(365)}) AS last_due,
        MAX(e.d) FILTER (WHERE e.event_type = 'recert_done') AS last_done,
        MAX(e.d) FILTER (WHERE e.event_type = 'recert_due') AS any_due,
        MAX(e.d) FILTER (WHERE e.event_type IN ('recert_done', 'enrolled') AND {since(365)}) AS last_recert,
        COUNT(*) FILTER (WHERE e.event_type IN ('suspended', 'terminated') AND {since(365)}) AS susp_365,
        MAX({epoch_days("e.d")} * 10 + {rank_case("e.reason", REASON_RANK)})
            FILTER (WHERE e.event_type IN ('suspended', 'terminated') AND {since(365)}) AS reason_key
    FROM f_welfare AS e JOIN f_dates AS a ON e.d <= a.as_of
    WHERE e.event_type <> 'payment'
    GROUP BY e.child_idx, a.as_of"""

PAYMENTS = f"""
    SELECT e.child_idx, a.as_of,
        MAX(LEAST(e.gap, date_diff('day', {window_start(365)}, e.d))) AS gap_max,
        COUNT(*) FILTER (WHERE e.first_in_month = 1 AND {since(180)}) AS paid_months_180,
        MAX(e.d) AS last_payment,
        AVG(EXTRACT(DAY FROM e.d)) FILTER (WHERE {since(90)}) - MIN(EXTRACT(DAY FROM e.d)) AS delay_90,
        SUM(e.amount) FILTER (WHERE {since(90)}) AS amount_90,
        COUNT(e.amount) FILTER (WHERE {since(90)}) AS n_amount_90,
        SUM(e.amount) FILTER (WHERE e.d <= {window_start(90)} AND {since(180)}) AS amount_prev_90,
        COUNT(e.amount) FILTER (WHERE e.d <= {window_start(90)} AND {since(180)}) AS n_amount_prev_90
    FROM f_payments AS e JOIN f_dates AS a ON e.d <= a.as_of AND {since(365)}
    GROUP BY e.child_idx, a.as_of"""


# Grade advanced one per school year since it was recorded, minus the grade for age
# (age on 1 September minus 5): both sides grow by one a year, so the school year cancels.
# grade_key packs the record's day with it, so MAX picks the latest record's value.
GRADE_NORM = f"CAST(e.grade - {school_year('e.d')} + 5000 AS BIGINT)"

ENROLLMENT = f"""
    SELECT e.child_idx, a.as_of,
        MAX({epoch_days("e.d")} * 10 + {rank_case("e.event_type", ENROLLMENT_RANK)}) AS enroll_key,
        MAX({epoch_days("e.d")} * 10 + {rank_case("e.school_type", SCHOOL_TYPE_RANK)})
            FILTER (WHERE e.school_type IS NOT NULL) AS school_type_key,
        MAX({epoch_days("e.d")} * 10000 + {GRADE_NORM}) FILTER (WHERE e.grade IS NOT NULL) AS grade_key,
        COUNT(*) FILTER (WHERE e.event_type = 'transferred' AND {since(365)}) AS transfers_365,
        COUNT(*) FILTER (WHERE e.event_type = 'suspended' AND {since(365)}) AS school_susp_365
    FROM f_enroll AS e JOIN f_dates AS a ON e.d <= a.as_of
    GROUP BY e.child_idx, a.as_of"""


ABSENCES = f"""
    SELECT e.child_idx, a.as_of,
        {absent(30)} AS all_30, {absent(90)} AS all_90, {absent(365)} AS all_365,
        {absent(90, "unexcused")} AS unexcused_90, {absent(90, "excused")} AS excused_90,
        {absent(90, "sick")} AS sick_90, {absent(180, until=90)} AS all_prev_90,
        MAX(e.d) AS last_absence
    FROM f_abs AS e JOIN f_dates AS a ON e.d <= a.as_of AND {since(365)}
    GROUP BY e.child_idx, a.as_of"""

# A run overlapping the window (idx_90, idx_asof] counts only its school days inside it.
STREAKS = """
    SELECT s.child_idx, a.as_of,
        MAX(LEAST(s.end_idx, a.idx_asof) - GREATEST(s.start_idx, a.idx_90 + 1) + 1) AS streak_90
    FROM f_streaks AS s JOIN f_dates AS a ON s.start_idx <= a.idx_asof AND s.end_idx > a.idx_90
    GROUP BY s.child_idx, a.as_of"""


MEDICAL = f"""
    SELECT e.child_idx, a.as_of,
        {n_events("outpatient", 180)} AS outpatient_180, {n_events("emergency", 180)} AS emergency_180,
        {n_events("inpatient", 365)} AS inpatient_365, {n_events("rehab_missed", 180)} AS rehab_missed_180,
        {n_events("rehab_attended", 180)} AS rehab_attended_180,
        MAX(e.d) FILTER (WHERE e.event_type = 'insurance_lapsed' AND {since(365)}) AS last_lapse,
        SUM(e.oop) FILTER (WHERE {since(365)}) AS oop_365,
        SUM(e.oop) FILTER (WHERE {since(365)} AND e.cost > 0 AND e.oop IS NOT NULL) AS oop_costed_365,
        SUM(e.cost) FILTER (WHERE {since(365)} AND e.cost > 0 AND e.oop IS NOT NULL) AS cost_365,
        {n_events("mental_health", 180)} AS mh_180,
        MAX(e.d) FILTER (WHERE e.event_type = 'mental_health' AND {since(365)}) AS last_mh,
        COUNT(*) FILTER (WHERE e.diagnosis_group = 'mental' AND {since(365)}) AS mental_dx_365
    FROM f_med AS e JOIN f_dates AS a ON e.d <= a.as_of AND {since(365)}
    GROUP BY e.child_idx, a.as_of"""

# The latest rehab session in the last 365 days (the highest session_no) and its run of misses,
# plus the missed sessions in the window: a run that began before the window is clipped to them.
REHAB = f"""
    SELECT e.child_idx, a.as_of,
        MAX(e.session_no * 1000 + LEAST(e.missed_run, 999)) AS rehab_key,
        COUNT(*) FILTER (WHERE e.event_type = 'rehab_missed') AS missed_sessions_365
    FROM f_rehab AS e JOIN f_dates AS a ON e.d <= a.as_of AND {since(365)}
    GROUP BY e.child_idx, a.as_of"""

# Insurance status follows the latest insurance event however old (a later event restores it).
INSURANCE = f"""
    SELECT e.child_idx, a.as_of,
        MAX({epoch_days("e.d")} * 10 + {rank_case("e.event_type", INSURANCE_RANK)}) AS insurance_key
    FROM f_med AS e JOIN f_dates AS a ON e.d <= a.as_of
    WHERE {in_codes("e.event_type", INSURANCE_RANK)}
    GROUP BY e.child_idx, a.as_of"""


ANY_CONCERN = "(e.c_basic_needs + e.c_health + e.c_education + e.c_mental_health + e.c_safety + e.c_guardianship)"

VISITS = f"""
    SELECT e.child_idx, a.as_of,
        COUNT(*) FILTER (WHERE {since(180)}) AS visits_180,
        MAX(e.d) AS last_visit,
        COUNT(*) FILTER (WHERE {since(30)} AND {ANY_CONCERN} > 0) AS concerns_30,
        COUNT(*) FILTER (WHERE {since(90)} AND {ANY_CONCERN} > 0) AS concerns_90,
        {concerns("c_basic_needs", 180)} AS c_basic_needs_180, {concerns("c_health", 180)} AS c_health_180,
        {concerns("c_education", 180)} AS c_education_180,
        {concerns("c_mental_health", 180)} AS c_mental_health_180,
        {concerns("c_safety", 180)} AS c_safety_180, {concerns("c_guardianship", 180)} AS c_guardianship_180
    FROM f_visits AS e JOIN f_dates AS a ON e.d <= a.as_of AND {since(365)}
    GROUP BY e.child_idx, a.as_of"""

# Every visit on or before as_of, not a window: each visit counts from the first as-of date on
# or after its day (visits before the first date count from it), and running sums over each
# child's dates carry the totals to every later date; no visit x date product is built.
VISIT_HISTORY = f"""
    WITH bounds AS (SELECT as_of, COALESCE(LAG(as_of) OVER (ORDER BY as_of), DATE '1900-01-01') AS prev FROM f_dates),
    added AS (  -- each visit in exactly one interval (prev, as_of]: a range join, no product
        SELECT e.child_idx, b.as_of, SUM({ANY_CONCERN}) AS concerns, COUNT(*) AS visits
        FROM f_visits AS e JOIN bounds AS b ON e.d > b.prev AND e.d <= b.as_of GROUP BY e.child_idx, b.as_of
    ),
    grid AS (SELECT k.child_idx, a.as_of FROM (SELECT DISTINCT child_idx FROM added) AS k CROSS JOIN f_dates AS a)
    SELECT g.child_idx, g.as_of,
        SUM(COALESCE(n.concerns, 0)) OVER w AS concerns, SUM(COALESCE(n.visits, 0)) OVER w AS visits
    FROM grid AS g LEFT JOIN added AS n ON n.child_idx = g.child_idx AND n.as_of = g.as_of
    WINDOW w AS (PARTITION BY g.child_idx ORDER BY g.as_of ROWS UNBOUNDED PRECEDING)"""

PROTECTION = f"""
    SELECT e.child_idx, a.as_of,
        {n_events("abuse_report", 365)} AS abuse_365, {n_events("neglect_report", 365)} AS neglect_365,
        {n_events("runaway", 365)} AS runaway_365, {n_events("police_contact", 365)} AS police_365,
        {n_events("guardian_lost", 365)} AS guardian_lost_365, {n_events("emergency_placement", 365)} AS placement_365,
        MAX(e.d) AS last_protection
    FROM f_prot AS e JOIN f_dates AS a ON e.d <= a.as_of AND {since(365)}
    GROUP BY e.child_idx, a.as_of"""


def _registry_keys() -> str:
    """Per field: the latest change on or before as_of and the earliest after it, as keys."""
    keys = []
    for field in REGISTRY_HISTORY_FIELDS:
        ranks = registry_ranks(field)
        key = f"{epoch_days('e.d')} * 10 + {{rank}}"
        new, old = rank_case("e.new_value", ranks), rank_case("e.old_value", ranks)
        keys.append(
            f"MAX({key.format(rank=new)}) FILTER (WHERE e.field = '{field}' AND e.d <= a.as_of) "
            f"AS {field}_then,\n        "
            f"MIN({key.format(rank=old)}) FILTER (WHERE e.field = '{field}' AND e.d > a.as_of) "
            f"AS {field}_before"
        )
    return ",\n        ".join(keys)


# The registry at as_of: a change after as_of gives only the value it replaced (its old value),
# which was in force at as_of; nothing it changed to can reach the row.
REGISTRY = f"""
    SELECT e.child_idx, a.as_of,
        {_registry_keys()}
    FROM f_registry AS e CROSS JOIN f_dates AS a
    GROUP BY e.child_idx, a.as_of"""

FAMILIES = {
    "wf": WELFARE,
    "pg": PAYMENTS,
    "en": ENROLLMENT,
    "ab": ABSENCES,
    "st": STREAKS,
    "md": MEDICAL,
    "rh": REHAB,
    "ins": INSURANCE,
    "vi": VISITS,
    "vh": VISIT_HISTORY,
    "pr": PROTECTION,
    "rg": REGISTRY,
}


def feature_query(keys: str, passthrough: list[str]) -> str:
    """Features (and audit columns) for every row of the relation ``keys`` (child_pid, as_of, ...).

    Expects the prepared ``f_*`` tables and ``f_dates`` (``as_of_table_sql``) on the connection.
    Rows come out ordered by as_of, child_pid (child_idx follows pid order); ``passthrough`` columns of ``keys`` are kept.
    """
    joins = "\n".join(
        f"LEFT JOIN {alias} ON {alias}.child_idx = k.child_idx AND {alias}.as_of = k.as_of"
        for alias in FAMILIES
    )
    columns = {**AUDIT_SELECT, **SELECT_FEATURES}
    select = ",\n".join(f"{expr} AS {name}" for name, expr in columns.items())
    kept = "".join(f", l.{col}" for col in passthrough)
    kept_out = "".join(f", k.{col}" for col in passthrough)
    ctes = ",\n".join(f"{alias} AS ({sql})" for alias, sql in FAMILIES.items())
    return f"""
    WITH {ctes},
    k AS (
        SELECT c.child_idx, l.child_pid, CAST(l.as_of AS DATE) AS as_of,
               EXTRACT(YEAR FROM CAST(l.as_of AS DATE)) - EXTRACT(YEAR FROM c.birth_date)
               - CASE WHEN EXTRACT(MONTH FROM c.birth_date) * 100 + EXTRACT(DAY FROM c.birth_date)
                       > EXTRACT(MONTH FROM CAST(l.as_of AS DATE)) * 100 + EXTRACT(DAY FROM CAST(l.as_of AS DATE))
                      THEN 1 ELSE 0 END AS age{kept}
        FROM {keys} AS l JOIN f_kids AS c ON c.child_pid = l.child_pid
    ),
    flags AS (
        SELECT k.child_idx, k.as_of,
               ({ENROLLMENT_STATUS} IN ('enrolled', 'suspended')
                OR ({ENROLLMENT_STATUS} = 'no_record' AND ab.all_365 IS NOT NULL)) AS in_school
        FROM k LEFT JOIN en ON en.child_idx = k.child_idx AND en.as_of = k.as_of
               LEFT JOIN ab ON ab.child_idx = k.child_idx AND ab.as_of = k.as_of
    )
    SELECT k.child_pid, CAST(k.as_of AS TIMESTAMP) AS as_of{kept_out},
    {select}
    FROM k
    JOIN f_kids AS c ON c.child_idx = k.child_idx
    JOIN f_dates AS a ON a.as_of = k.as_of
    JOIN flags AS fl ON fl.child_idx = k.child_idx AND fl.as_of = k.as_of
    LEFT JOIN f_welfare_start AS ws ON ws.child_idx = k.child_idx AND ws.first_d <= k.as_of
    {joins}
    ORDER BY k.as_of, k.child_idx"""
