"""The feature catalogue: every feature column described once.

Name, protection system, description, whether a caseworker can act on it, the plain-language
reason templates (Chinese and English), and what the value means to a social worker: its
`role` (risk: a warning sign; exposure: being in a system, e.g. receiving the benefit;
background: age, category, guardian type, protected attributes), its risk `direction` (+1 /
-1 / 0; categoricals have none, at most a list of `risk_values`) and its `normal` range
(e.g. a payment within the last 35 days). src/delivery/reasons.py turns these into the rule
for which contributions are shown as reasons (docs/architecture.md, "Reasons"); training
constrains the directional features to their direction (train.monotone_constraints). Explanations, the model card and
the README's feature table all read from here; a test fails when a column of
features.parquet has no entry or an entry has no column.

Every feature at as-of date t sees only records dated on or before t. Counts and rates
cover a window ending at t (30/90/180/365 days), so old events age out; "days since"
features are capped at 365 days (older than a year or never reads as 365); status features
(benefit, enrollment, insurance) follow the latest event, so a later event restores them.
Nothing marks a child forever. Unknown values are explicit: NaN where documented in
``FeatureSpec.missing`` (e.g. absence rates for a child not in school), or an explicit
category ('no_record', 'unknown', 'never'), never a silent zero.

History. As-of dates start one month after the export's history start (``features.first_as_of``
overrides), so early as-of dates have less history behind them than a 365-day window needs.
The history start at t is the first day of the month of the latest first record among the
tables that an export fills month by month (``HISTORY_TABLES``), counting only tables with a
record on or before t. It is the export's, not the child's: a child with no record in a month
was observed to have none, while a status record carried over from before the export (a
school enrolment from years back) says nothing about when recording began. A feature with a
look-back window (``FeatureSpec.window_days``) is unknown, never zero, when the window reaches
before the history start: NaN for numbers and indicators, 'unknown' for the one windowed
category. "Days since" features stay known when the event itself was observed.
``months_of_history`` tells the model how much history there is.

Schedules. ``month_of_year``, ``school_period`` and ``days_until_recert_due`` read the
calendar, the school calendar (a published schedule, not a record about the child: it is read
for the week from t) and the child's annual recertification schedule (from the registration
date and the latest ``recert_due`` on or before t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from src.data.contract import CATEGORY, ETHNICITY, EXIT_REASON, GUARDIAN_TYPE, HUKOU, SEX

# The six protection systems of the 2025 State Council opinion, plus static attributes.
SYSTEMS: dict[str, tuple[str, str]] = {
    "basic_living": ("基本生活保障", "basic living"),
    "medical": ("医疗康复保障", "medical care and rehabilitation"),
    "education": ("教育保障", "education"),
    "mental_health": ("心理健康", "mental health"),
    "safety": ("人身安全", "personal safety"),
    "guardianship": ("监护保障", "legal guardianship"),
    "static": ("基本情况", "background"),
}

KEY_COLUMNS = ("child_pid", "as_of")
RULE_COLUMNS = ("benefit_lapse", "school_dropout", "medical_lapse", "protection_crisis")
LABEL_COLUMNS = (*RULE_COLUMNS, "label", "days_to_outcome", "label_observed", "already_out", "already_out_net")
# Travel beside the features for auditing and routing; never model inputs.
AUDIT_COLUMNS = ("county_code", "community_code", "age_band", "disability")
PROTECTED = ("sex", "ethnicity", "hukou")
# What each test prediction carries for the fairness audit (fairness.attributes must be among them)
AUDIT_ATTRIBUTES = (
    "sex",
    "hukou",
    "ethnicity",
    "disability",
    "category",
    "county_code",
    "age_band",
)

KINDS = ("numeric", "indicator", "categorical")
ROLES = ("risk", "exposure", "background")
IN_BENEFIT = ("benefit_status", ("active", "suspended", "terminated"))
FORMATS = ("int", "float1", "pct", "code", "none")


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    system: str
    description: str  # one English sentence for the docs and the model card
    actionable: bool  # can a caseworker do something about it?
    kind: str  # numeric | indicator | categorical
    fmt: str  # how {value} is rendered: int | float1 | pct | code | none
    template_zh: str  # e.g. "近90天无故缺课 {value} 天"
    template_en: str  # e.g. "{value} unexcused absence days in the last 90 days"
    missing: str = "never missing"  # how an unknown value is represented (NaN, indicator, ...)
    categories: tuple[str, ...] = ()  # fixed category order for categorical features
    protected: bool = False  # model input only when features.protected_as_features is true
    window_days: int | None = None  # look-back that must lie after the history start, else unknown
    # What the value means for a social worker (docs/architecture.md, "Reasons"):
    role: str = "background"  # risk (a warning sign) | exposure (being in a system) | background
    direction: int = 0  # +1 risk rises with the value, -1 risk falls with it, 0 no direction
    normal: tuple[float | None, float | None] | None = None  # (low, high) normal range; None = open
    risk_values: tuple[str, ...] = ()  # categorical values that are a warning sign
    # (feature, values): the value means something only when that feature has one of these
    # values, e.g. payment features only for a child in the benefit system (a child never
    # paid reads days_since_last_payment = 365, which is no lapse).
    only_when: tuple[str, tuple[str, ...]] | None = None
    routes: bool = True  # as a reason, its system chooses a service (not for any-topic concerns)


# Windows (days) that the catalogue's feature names use. params.features.windows_days must
# list exactly these: a feature's name carries its window, so changing a window means
# changing the catalogue too (the stage says so if they disagree).
WINDOWS_DAYS: tuple[int, ...] = (30, 90, 180, 365)

# "Days since" features are capped at this many days: an event older than the longest
# window, or no event at all, reads as the cap. So no event marks a child forever; with less
# than a year of history and no event observed, the value is unknown (NaN).
DAYS_SINCE_CAP = 365

# Tables an export fills month by month: the latest of their first records starts the history.
HISTORY_TABLES: dict[str, str] = {
    "welfare_events": "event_date",
    "school_absences": "absence_date",
    "medical_events": "event_date",
    "casework_visits": "visit_date",
}
# months_of_history is capped here: from 12 months on, every window is observed.
HISTORY_CAP_MONTHS = 12

_SHORT_HISTORY = "NaN when the {days}-day window reaches before the export's history start (see months_of_history)"
_DAYS_SINCE = (
    f"capped at {DAYS_SINCE_CAP}: no such record in the last {DAYS_SINCE_CAP} days (or never) reads as "
    f"{DAYS_SINCE_CAP}; NaN when no such record was observed and the history behind as_of is shorter "
    f"than {DAYS_SINCE_CAP} days"
)
_COUNT = "0 when there is no such record in the window (a count of records, not an unknown)"
_IN_SCHOOL = (
    "NaN when the child is not in school at as_of (latest enrollment event is dropped_out or "
    "graduated, or no enrollment record and no absence in the last 365 days) or the window "
    "holds no school days"
)
_ON_BENEFIT = (
    "NaN when the child has no welfare record on or before as_of (not in the benefit system)"
)


def _short(missing: str, days: int) -> str:
    """A windowed feature's missing text: its own rule, then the history rule."""
    return f"{missing}; {_SHORT_HISTORY.format(days=days)}"


def _window(name: str) -> int:
    """The window a feature's name carries (``..._90d`` -> 90)."""
    return int(name.rsplit("_", 1)[1].removesuffix("d"))


# A count of warning events: risk rises with it, and none is normal (unless told otherwise).
_NONE = (None, 0)


def _count(name, system, what, zh, en, actionable=True, missing=_COUNT, role="risk", direction=1,
           normal=_NONE, routes=True):  # fmt: skip
    days = _window(name)
    return FeatureSpec(
        name, system, what, actionable, "numeric", "int", zh, en, _short(missing, days),
        window_days=days, role=role, direction=direction, normal=normal, routes=routes,
    )  # fmt: skip


def _days_since(name, system, what, zh, en, role, direction=0, normal=None, actionable=True,
                only_when=None):  # fmt: skip
    return FeatureSpec(
        name, system, what, actionable, "numeric", "int", zh, en, _DAYS_SINCE,
        window_days=DAYS_SINCE_CAP, role=role, direction=direction, normal=normal,
        only_when=only_when,
    )  # fmt: skip


def _concern(concern, system, zh_topic, en_topic):
    return _count(
        f"visit_concern_{concern}_180d",
        system,
        f"Casework visits in the last 180 days that recorded a {en_topic} concern.",
        f"近180天走访记录{zh_topic}方面问题 {{value}} 次",
        f"{{value}} visits in the last 180 days recorded a {en_topic} concern",
    )


def _absence_rate(kind, window, normal_high):
    zh_kind = {"all": "", "unexcused": "无故", "excused": "请假", "sick": "病假"}[kind]
    en_kind = {"all": "", "unexcused": "unexcused ", "excused": "excused ", "sick": "sick "}[kind]
    what = "of any type" if kind == "all" else f"recorded as {kind}"
    return FeatureSpec(
        f"absence_rate_{kind}_{window}d",
        "education",
        f"Absence days {what} / school days in the last {window} days (school_calendar; capped at 1).",
        True,
        "numeric",
        "pct",
        f"近{window}天{zh_kind}缺课率 {{value}}",
        f"{en_kind}absence rate {{value}} in the last {window} days",
        _short(_IN_SCHOOL, window),
        window_days=window,
        role="risk",
        direction=1 if normal_high is not None else 0,
        normal=(None, normal_high) if normal_high is not None else None,
    )


_BASIC_LIVING = (
    FeatureSpec(
        "benefit_status",
        "basic_living",
        "Benefit status from the latest enrolled/reinstated/suspended/terminated event on or before as_of (any benefit); active when there is none but a payment in the last 365 days.",
        True,
        "categorical",
        "code",
        "低保/津贴状态：{value}",
        "benefit status: {value}",
        "'never' when the child has no status event and no payment in the last 365 days",
        categories=("active", "suspended", "terminated", "never"),
        role="exposure",
    ),
    FeatureSpec(
        "payment_ratio_180d",
        "basic_living",
        "Calendar months with a payment / months the child was in the benefit system, over the last 180 days (capped at 1).",
        True,
        "numeric",
        "pct",
        "近180天按月足额领取比例仅 {value}",
        "payments received in only {value} of expected months (last 180 days)",
        _short(_ON_BENEFIT, 180),
        window_days=180,
        role="risk",
        direction=-1,
        normal=(0.8, None),
    ),
    _days_since(
        "days_since_last_payment",
        "basic_living",
        "Days since the last benefit payment.",
        "距上次领取补助已 {value} 天",
        "{value} days since the last benefit payment",
        only_when=IN_BENEFIT,
        role="exposure",  # paid monthly: among children in the system it says "receives the benefit"
        normal=(None, 35),
    ),
    FeatureSpec(
        "payment_gap_max_365d",
        "basic_living",
        "Longest run of days without a payment in the last 365 days, the open run up to as_of included (capped at 365).",
        True,
        "numeric",
        "int",
        "近一年最长 {value} 天未领到补助",
        "longest gap between payments in the last year: {value} days",
        _short(_ON_BENEFIT, 365),
        window_days=365,
        role="risk",
        direction=1,
        normal=(None, 45),
    ),
    FeatureSpec(
        "recert_overdue",
        "basic_living",
        "1 when a recert_due dated in the last 365 days (and before as_of) has no recert_done since; older dues age out.",
        True,
        "indicator",
        "none",
        "资格复核已逾期未办理",
        "benefit recertification is overdue",
        "0 when no recert_due is open; NaN when no recert_due was observed in the last 365 days "
        "and the history behind as_of is shorter than 365 days",
        window_days=365,
        role="risk",
        direction=1,
        normal=(None, 0),
    ),
    _days_since(
        "days_since_recert",
        "basic_living",
        "Days since the last recert_done or benefit enrollment (annual recertification falls due near 365).",
        "距上次资格复核已 {value} 天",
        "{value} days since the last benefit recertification",
        only_when=IN_BENEFIT,
        role="exposure",
    ),
    FeatureSpec(
        "days_until_recert_due",
        "basic_living",
        "Days from as_of to the next annual recertification due date: the first day of the "
        "anniversary month of the latest recert_due on or before as_of, or, without one, of the "
        "registration month (the first a year after registering); 0 when it falls due on as_of.",
        True,
        "numeric",
        "int",
        "距下次资格复核还有 {value} 天",
        "benefit recertification falls due in {value} days",
        "never missing: the registration date always gives a schedule",
        only_when=IN_BENEFIT,
        role="exposure",
    ),
    _count(
        "suspensions_365d",
        "basic_living",
        "Benefit suspensions or terminations (any reason) in the last 365 days.",
        "近一年补助被暂停或终止 {value} 次",
        "benefit suspended or terminated {value} times in the last year",
    ),
    FeatureSpec(
        "last_suspension_reason",
        "basic_living",
        "Reason of the latest benefit suspension or termination in the last 365 days.",
        True,
        "categorical",
        "code",
        "近一年补助暂停原因：{value}",
        "benefit last suspended for: {value}",
        "'none' when there was no suspension or termination in the last 365 days; 'unknown' when "
        "none was observed and the 365-day window reaches before the export's history start",
        categories=("none", *EXIT_REASON, "unknown"),
        window_days=365,
        role="risk",
        risk_values=("recert_missed", "documents_missing", "contact_lost"),
    ),
    FeatureSpec(
        "payment_amount_change_90d",
        "basic_living",
        "Relative change of the mean payment amount: last 90 days vs the 90 days before.",
        True,
        "numeric",
        "pct",
        "补助金额较前期变化 {value}",
        "benefit amount changed by {value} vs the previous quarter",
        _short("NaN when either 90-day window has no payment with an amount", 180),
        window_days=180,
        role="risk",
        direction=-1,
        normal=(-0.2, None),
    ),
    FeatureSpec(
        "payment_delay_90d",
        "basic_living",
        "Mean day of the month on which payments arrived in the last 90 days, minus the earliest such day in the last 365 days: how much later than its own schedule the child's benefit now arrives.",
        True,
        "numeric",
        "float1",
        "近90天补助比往常平均晚到 {value} 天",
        "benefit payments arrived {value} days later than usual in the last 90 days",
        _short("NaN when there is no payment in the last 90 days", 90),
        window_days=90,
        role="risk",
        direction=1,
        normal=(None, 5),
        only_when=IN_BENEFIT,
    ),
    _concern("basic_needs", "basic_living", "基本生活", "basic needs"),
)

_EDUCATION = (
    FeatureSpec(
        "enrollment_status",
        "education",
        "School registration status from the latest enrollment event on or before as_of (transferred/returned count as enrolled).",
        True,
        "categorical",
        "code",
        "学籍状态：{value}",
        "school enrollment status: {value}",
        "'no_record' when there is no enrollment event",
        categories=("enrolled", "suspended", "dropped_out", "graduated", "no_record"),
        role="risk",
        risk_values=("suspended", "dropped_out"),
    ),
    FeatureSpec(
        "school_type",
        "education",
        "School type from the latest enrollment event that records one.",
        True,
        "categorical",
        "code",
        "就学方式：{value}",
        "school type: {value}",
        "'unknown' when no enrollment event records a school type",
        categories=("regular", "special_education", "home_delivery", "unknown"),
        role="exposure",
    ),
    FeatureSpec(
        "grade_gap",
        "education",
        "Current grade (latest recorded grade plus school years since) minus the grade expected for age (age on 1 Sept - 5); negative = behind.",
        True,
        "numeric",
        "int",
        "年级比同龄应读年级相差 {value} 级",
        "grade differs from the grade expected for age by {value}",
        "NaN when no enrollment event records a grade",
        role="risk",
        direction=-1,
        normal=(-1, None),
    ),
    _absence_rate("all", 30, 0.1),
    _absence_rate("all", 90, 0.1),
    _absence_rate("all", 365, 0.1),
    _absence_rate("unexcused", 90, 0.03),
    _absence_rate("excused", 90, None),  # excused or sick: no warning sign a director acts on
    _absence_rate("sick", 90, None),
    FeatureSpec(
        "unexcused_days_90d",
        "education",
        "Unexcused absence days (half days count 0.5) on school days in the last 90 days.",
        True,
        "numeric",
        "float1",
        "近90天无故缺课 {value} 天",
        "{value} unexcused absence days in the last 90 days",
        _short(_IN_SCHOOL, 90),
        window_days=90,
        role="risk",
        direction=1,
        normal=(None, 2),
    ),
    FeatureSpec(
        "absence_trend_90d",
        "education",
        "Absence rate (any type) in the last 90 days minus the rate in the 90 days before; positive = getting worse.",
        True,
        "numeric",
        "pct",
        "缺课率较前一季度上升 {value}",
        "absence rate rose by {value} vs the previous quarter",
        _short(_IN_SCHOOL + " (either window)", 180),
        window_days=180,
        role="risk",
        direction=1,
        normal=(None, 0.05),
    ),
    FeatureSpec(
        "longest_unexcused_streak_90d",
        "education",
        "Longest run of consecutive school days with a full-day unexcused absence in the last 90 days (weekends and holidays do not break a run).",
        True,
        "numeric",
        "int",
        "近90天最长连续无故缺课 {value} 个上学日",
        "{value} school days in a row of unexcused absence (last 90 days)",
        _short(_IN_SCHOOL, 90),
        window_days=90,
        role="risk",
        direction=1,
        normal=(None, 2),
    ),
    _days_since(
        "days_since_last_absence",
        "education",
        "Days since the last recorded absence of any type.",
        "距上次缺课 {value} 天",
        "{value} days since the last absence",
        role="exposure",
    ),
    _count(
        "school_transfers_365d",
        "education",
        "School transfers in the last 365 days.",
        "近一年转学 {value} 次",
        "{value} school transfers in the last year",
        normal=(None, 1),
    ),
    _count(
        "school_suspensions_365d",
        "education",
        "School suspensions (休学) in the last 365 days.",
        "近一年休学 {value} 次",
        "{value} school suspensions in the last year",
    ),
    _concern("education", "education", "就学", "education"),
    FeatureSpec(
        "school_period",
        "education",
        "Term or holiday at as_of: 'term' when the school calendar has a school day in the 7 days "
        "from as_of, else 'holiday' (school_calendar, or the contract's default calendar when the "
        "export has none).",
        False,
        "categorical",
        "code",
        "学校日历：{value}",
        "school calendar: {value}",
        "'unknown' when those 7 days hold no school day and the calendar lists none before as_of "
        "or none after them (it lists school days only, so it may simply end there)",
        categories=("term", "holiday", "unknown"),
        role="exposure",
    ),
)

_MEDICAL = (
    _count(
        "outpatient_visits_180d",
        "medical",
        "Outpatient visits in the last 180 days.",
        "近180天门诊 {value} 次",
        "{value} outpatient visits in the last 180 days",
        actionable=False,
        role="exposure",
        direction=0,
        normal=None,
    ),
    _count(
        "emergency_visits_180d",
        "medical",
        "Emergency visits in the last 180 days.",
        "近180天急诊 {value} 次",
        "{value} emergency visits in the last 180 days",
    ),
    _count(
        "inpatient_stays_365d",
        "medical",
        "Inpatient admissions in the last 365 days.",
        "近一年住院 {value} 次",
        "{value} hospital admissions in the last year",
    ),
    _count(
        "rehab_missed_180d",
        "medical",
        "Missed rehabilitation sessions in the last 180 days.",
        "近180天缺席康复训练 {value} 次",
        "{value} missed rehabilitation sessions in the last 180 days",
        normal=(None, 1),
    ),
    FeatureSpec(
        "rehab_attendance_ratio_180d",
        "medical",
        "Attended / (attended + missed) rehabilitation sessions in the last 180 days.",
        True,
        "numeric",
        "pct",
        "近180天康复训练出勤率仅 {value}",
        "rehabilitation attendance only {value} in the last 180 days",
        _short("NaN when there was no rehabilitation session in the last 180 days", 180),
        window_days=180,
        role="risk",
        direction=-1,
        normal=(0.8, None),
    ),
    FeatureSpec(
        "rehab_missed_streak",
        "medical",
        "Missed rehabilitation sessions since the last attended one, within the last 365 days "
        "(one session per day and outcome; on a day with both, the attended one comes first), "
        "as the medical_lapse label counts them.",
        True,
        "numeric",
        "int",
        "已连续 {value} 次缺席康复训练",
        "{value} rehabilitation sessions missed in a row",
        _short(
            "0 when the latest session in the last 365 days was attended, or there was none", 365
        ),
        window_days=365,
        role="risk",
        direction=1,
        normal=(None, 1),
    ),
    FeatureSpec(
        "insurance_status",
        "medical",
        "Medical insurance status from the latest insurance_enrolled/insurance_lapsed event.",
        True,
        "categorical",
        "code",
        "医保状态：{value}",
        "medical insurance status: {value}",
        "'no_record' when there is no insurance event",
        categories=("insured", "lapsed", "no_record"),
        role="risk",
        risk_values=("lapsed",),
    ),
    _days_since(
        "days_since_insurance_lapse",
        "medical",
        "Days since the last insurance_lapsed event.",
        "医保中断已 {value} 天",
        "medical insurance lapsed {value} days ago",
        role="risk",
        direction=-1,
        normal=(365, None),
    ),
    FeatureSpec(
        "out_of_pocket_cny_365d",
        "medical",
        "Out-of-pocket medical spending (CNY) in the last 365 days.",
        True,
        "numeric",
        "int",
        "近一年自付医疗费用 {value} 元",
        "CNY {value} paid out of pocket for medical care in the last year",
        _short("0 when there was no medical event with a recorded out-of-pocket amount", 365),
        window_days=365,
        role="risk",
        direction=1,
        normal=(None, 2000),
    ),
    FeatureSpec(
        "out_of_pocket_share_365d",
        "medical",
        "Out-of-pocket / total cost of medical events in the last 365 days (events with both amounts).",
        True,
        "numeric",
        "pct",
        "近一年医疗费用自付比例 {value}",
        "{value} of medical costs paid out of pocket in the last year",
        _short("NaN when no medical event in the last 365 days records a positive cost", 365),
        window_days=365,
        role="risk",
        direction=0,  # the model reads a high share as lower risk (coverage, not hardship)
        normal=None,
    ),
    _concern("health", "medical", "健康", "health"),
)

_MENTAL_HEALTH = (
    _count(
        "mental_health_contacts_180d",
        "mental_health",
        "Mental-health service contacts (medical event mental_health) in the last 180 days.",
        "近180天心理健康服务 {value} 次",
        "{value} mental-health contacts in the last 180 days",
        role="exposure",
        direction=0,
        normal=None,
    ),
    _days_since(
        "days_since_mental_health_contact",
        "mental_health",
        "Days since the last mental-health contact.",
        "距上次心理健康服务 {value} 天",
        "{value} days since the last mental-health contact",
        role="exposure",
    ),
    _count(
        "mental_diagnosis_events_365d",
        "mental_health",
        "Medical events with diagnosis group 'mental' in the last 365 days.",
        "近一年心理/精神类就诊 {value} 次",
        "{value} medical events with a mental-health diagnosis in the last year",
        actionable=False,
        direction=0,
    ),
    _concern("mental_health", "mental_health", "心理健康", "mental-health"),
)

_SAFETY = (
    _count(
        "abuse_reports_365d",
        "safety",
        "Abuse reports in the last 365 days.",
        "近一年受虐待报告 {value} 次",
        "{value} abuse reports in the last year",
    ),
    _count(
        "neglect_reports_365d",
        "safety",
        "Neglect reports in the last 365 days.",
        "近一年受忽视报告 {value} 次",
        "{value} neglect reports in the last year",
    ),
    _count(
        "runaways_365d",
        "safety",
        "Runaway events in the last 365 days.",
        "近一年离家出走 {value} 次",
        "ran away {value} times in the last year",
    ),
    _count(
        "police_contacts_365d",
        "safety",
        "Police contacts in the last 365 days.",
        "近一年涉警 {value} 次",
        "{value} police contacts in the last year",
    ),
    _days_since(
        "days_since_protection_event",
        "safety",
        "Days since the last protection event of any type.",
        "距上次保护事件 {value} 天",
        "{value} days since the last child-protection event",
        role="risk",
        direction=-1,
        normal=(180, None),
    ),
    _concern("safety", "safety", "人身安全", "safety"),
)

_GUARDIANSHIP = (
    FeatureSpec(
        "guardian_type",
        "guardianship",
        "Guardian type in the registry at as_of (from registry_history; without it, as of export and left out of the model by default).",
        True,
        "categorical",
        "code",
        "监护情况：{value}",
        "guardian: {value}",
        categories=GUARDIAN_TYPE,
        role="background",
    ),
    _count(
        "guardian_lost_365d",
        "guardianship",
        "guardian_lost events in the last 365 days.",
        "近一年失去监护人 {value} 次",
        "lost a guardian {value} times in the last year",
    ),
    _count(
        "emergency_placements_365d",
        "guardianship",
        "Emergency placements in the last 365 days.",
        "近一年临时紧急安置 {value} 次",
        "{value} emergency placements in the last year",
    ),
    _count(
        "visit_concerns_30d",
        "guardianship",
        "Casework visits in the last 30 days that recorded any concern.",
        "近30天走访发现问题 {value} 次",
        "{value} casework visits in the last 30 days recorded a concern",
        routes=False,  # a concern of any topic: the topic's own concern feature routes
    ),
    FeatureSpec(
        "concerns_per_visit",
        "guardianship",
        "Concerns recorded per casework visit over every visit on or before as_of (all topics; a visit can record several): a lasting pattern, not this month's.",
        True,
        "numeric",
        "float1",
        "历次走访平均每次发现 {value} 项问题",
        "{value} concerns recorded per casework visit over the child's history",
        "NaN when no casework visit is recorded on or before as_of",
        role="risk",
        direction=1,
        normal=(None, 0.5),
        routes=False,
    ),
    _count(
        "visit_concerns_90d",
        "guardianship",
        "Casework visits in the last 90 days that recorded any concern.",
        "近90天走访发现问题 {value} 次",
        "{value} casework visits in the last 90 days recorded a concern",
        routes=False,  # a concern of any topic: the topic's own concern feature routes
    ),
    _concern("guardianship", "guardianship", "监护", "guardianship"),
    _count(
        "visits_180d",
        "guardianship",
        "Casework visits (any mode) in the last 180 days.",
        "近180天儿童主任走访 {value} 次",
        "{value} casework visits in the last 180 days",
        role="exposure",
        direction=0,
        normal=None,
    ),
    _days_since(
        "days_since_last_visit",
        "guardianship",
        "Days since the last casework visit.",
        "距儿童主任上次走访已 {value} 天",
        "{value} days since the last casework visit",
        role="risk",
        direction=1,
        normal=(None, 90),
    ),
)

_STATIC = (
    FeatureSpec(
        "age_years",
        "static",
        "Age at as_of in years.",
        False,
        "numeric",
        "float1",
        "年龄 {value} 岁",
        "aged {value}",
    ),
    FeatureSpec(
        "category",
        "static",
        "Primary registry category at as_of (from registry_history; without it, as of export and left out of the model by default).",
        False,
        "categorical",
        "code",
        "儿童类别：{value}",
        "registry category: {value}",
        categories=CATEGORY,
    ),
    FeatureSpec(
        "disability_level",
        "static",
        "Disability level 0-4 (0 = none) at as_of (from registry_history; without it, as of export).",
        False,
        "numeric",
        "int",
        "残疾等级 {value} 级",
        "disability level {value}",
    ),
    FeatureSpec(
        "months_in_registry",
        "static",
        "Calendar months from entering the registry to as_of.",
        False,
        "numeric",
        "int",
        "纳入保障 {value} 个月",
        "{value} months in the registry",
    ),
    FeatureSpec(
        "months_of_history",
        "static",
        "Calendar months from the export's history start (the first month of the latest first "
        f"record among {', '.join(HISTORY_TABLES)}) to as_of, capped at {HISTORY_CAP_MONTHS}: "
        "how much of the look-back windows the export can observe.",
        False,
        "numeric",
        "int",
        "可用历史数据 {value} 个月",
        "{value} months of recorded history",
        "0 when none of those tables has a record on or before as_of",
    ),
    FeatureSpec(
        "month_of_year",
        "static",
        "Calendar month of as_of (1-12): the season.",
        False,
        "numeric",
        "int",
        "{value} 月",
        "month {value}",
    ),
    FeatureSpec(
        "sex",
        "static",
        "Sex (protected attribute).",
        False,
        "categorical",
        "code",
        "性别：{value}",
        "sex: {value}",
        categories=SEX,
        protected=True,
    ),
    FeatureSpec(
        "ethnicity",
        "static",
        "Ethnicity (protected attribute).",
        False,
        "categorical",
        "code",
        "民族：{value}",
        "ethnicity: {value}",
        "'unknown' when not recorded",
        categories=(*ETHNICITY, "unknown"),
        protected=True,
    ),
    FeatureSpec(
        "hukou",
        "static",
        "Household registration (protected attribute).",
        False,
        "categorical",
        "code",
        "户籍：{value}",
        "hukou: {value}",
        categories=HUKOU,
        protected=True,
    ),
)

CATALOGUE: tuple[FeatureSpec, ...] = (
    *_BASIC_LIVING,
    *_EDUCATION,
    *_MEDICAL,
    *_MENTAL_HEALTH,
    *_SAFETY,
    *_GUARDIANSHIP,
    *_STATIC,
)

CODE_LABELS_ZH: dict[str, str] = {
    # benefit_status, enrollment_status, insurance_status
    "active": "正常领取",
    "suspended": "已暂停",
    "terminated": "已终止",
    "never": "未纳入",
    "enrolled": "在籍",
    "dropped_out": "辍学",
    "graduated": "已毕业",
    "no_record": "无记录",
    "insured": "已参保",
    "lapsed": "已断保",
    "none": "无",
    "unknown": "未知",
    # exit reasons
    "aged_out": "超龄",
    "income_above_line": "收入超标",
    "adopted": "被收养",
    "moved_away": "迁出",
    "deceased": "死亡",
    "recert_missed": "未按时复核",
    "documents_missing": "材料缺失",
    "contact_lost": "失去联系",
    "other": "其他",
    # school_period
    "term": "学期中",
    "holiday": "假期",
    # school type
    "regular": "普通学校",
    "special_education": "特殊教育学校",
    "home_delivery": "送教上门",
    # guardian type
    "both_parents": "父母双方监护",
    "single_parent": "单亲监护",
    "grandparents": "祖父母监护",
    "other_relatives": "其他亲属监护",
    "institution": "机构养育",
    # category
    "orphan": "孤儿",
    "de_facto_unsupported": "事实无人抚养儿童",
    "left_behind": "留守儿童",
    "low_income": "低收入家庭儿童",
    "extreme_poverty": "特困儿童",
    "disabled": "残疾儿童",
    "seriously_ill": "重病儿童",
    # protected attributes
    "f": "女",
    "m": "男",
    "han": "汉族",
    "minority": "少数民族",
    "rural": "农村户籍",
    "urban": "城镇户籍",
}


def spec(name: str) -> FeatureSpec:
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    raise KeyError(f"feature '{name}' is not in the catalogue")


def feature_names() -> list[str]:
    return [entry.name for entry in CATALOGUE]


def model_features(protected_as_features: bool = False, excluded=()) -> list[str]:
    """Model inputs in catalogue order; `excluded` (e.g. ``registry_excluded``) are left out."""
    return [
        e.name
        for e in CATALOGUE
        if (protected_as_features or not e.protected) and e.name not in excluded
    ]


def categorical_features(protected_as_features: bool = False, excluded=()) -> list[str]:
    return [
        e.name
        for e in CATALOGUE
        if e.kind == "categorical"
        and (protected_as_features or not e.protected)
        and e.name not in excluded
    ]


# --- the registry as of export ------------------------------------------------------------
# Registry fields that an outcome itself can update: a guardian_lost or an emergency_placement
# (the protection_crisis outcome) is followed by a new guardian_type, and a child who loses a
# guardian is re-registered as de_facto_unsupported (the synthetic generator does both, as
# civil-affairs offices do: src/data/synthetic/registry_changes.py). Read as of export, they
# carry a later outcome into every earlier row. disability_level changes only in the
# background (a reassessment), so it stays. Without a registry_history table and with
# features.registry_as_of_export = exclude, these are not model inputs.
REGISTRY_FIELDS_AFTER_OUTCOMES = ("guardian_type", "category")


def registry_reading(history_present: bool, mode: str) -> dict:
    """How the features read the registry fields, for features_summary.json: ``history`` (the
    registry_history table was exported), ``read`` (``as_of_each_date`` or ``as_of_export``),
    ``mode`` (features.registry_as_of_export) and the model features ``excluded``."""
    excluded = [] if history_present or mode == "keep" else list(REGISTRY_FIELDS_AFTER_OUTCOMES)
    return {
        "history": history_present,
        "read": "as_of_each_date" if history_present else "as_of_export",
        "mode": mode,
        "excluded": excluded,
    }


def registry_excluded(features_summary: dict) -> tuple[str, ...]:
    """The model features the features stage excluded (``registry_reading``); none in older summaries."""
    return tuple(features_summary.get("registry", {}).get("excluded", ()))


def format_value(entry: FeatureSpec, value, language: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "未知" if language == "zh" else "unknown"
    if entry.fmt == "int":
        return f"{round(float(value)):d}"
    if entry.fmt == "float1":
        return f"{float(value):.1f}"
    if entry.fmt == "pct":
        return f"{100 * float(value):.0f}%"
    if entry.fmt == "code":
        return (
            CODE_LABELS_ZH.get(str(value), str(value))
            if language == "zh"
            else str(value).replace("_", " ")
        )
    return ""


def render_reason(name: str, value, language: str) -> str:
    """The plain-language reason for one feature value, in 'zh' or 'en'."""
    entry = spec(name)
    template = entry.template_zh if language == "zh" else entry.template_en
    return template.format(value=format_value(entry, value, language))
