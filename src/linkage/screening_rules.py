"""The 困境 screening rules (摸排), one declarative table like the feature catalogue.

A rule holds when a linked child's department records (src.linkage.persons_spec, dated within
`screening.lookback_days` of the export) meet every condition: at least one record of the event
type and, where given, a total `amount_cny` of at least `min_amount_cny`. The wording, in
Chinese and English, is what the child director reads in the screening list.
"""

from __future__ import annotations

from dataclasses import dataclass

from src.linkage.persons_spec import DEPARTMENT_EVENT


@dataclass(frozen=True)
class Condition:
    event_type: str  # a code of persons_spec.DEPARTMENT_EVENT
    min_amount_cny: float | None = None  # the records' total amount_cny must reach this


@dataclass(frozen=True)
class Rule:
    code: str
    zh: str
    en: str
    all_of: tuple[Condition, ...]


RULES: tuple[Rule, ...] = (
    Rule(
        "guardian_died",
        "监护人死亡（死亡登记）：可能为孤儿或事实无人抚养儿童",
        "a guardian died (death record): possibly orphaned or de facto unsupported",
        (Condition("guardian_death"),),
    ),
    Rule(
        "serious_illness_low_income",
        "重病且自付医疗费用高（合计2万元以上），家庭享受医疗救助（低收入）",
        "a serious illness with high out-of-pocket costs (20,000 CNY or more in total) "
        "in a household on medical assistance (low income)",
        (Condition("serious_illness", 20_000), Condition("medical_assistance")),
    ),
    Rule(
        "dropout_with_disability",
        "持残疾证明且已辍学",
        "a certified disability and dropped out of school",
        (Condition("disability_certified"), Condition("dropped_out")),
    ),
)
BY_CODE = {r.code: r for r in RULES}


def check_rules(rules: tuple[Rule, ...] = RULES) -> None:
    """Every condition names a known event type and codes are unique (tests call this)."""
    if len({r.code for r in rules}) != len(rules):
        raise ValueError("screening rules: duplicate code")
    for rule in rules:
        for condition in rule.all_of:
            if condition.event_type not in DEPARTMENT_EVENT:
                raise ValueError(
                    f"screening rule {rule.code}: unknown event {condition.event_type}"
                )
