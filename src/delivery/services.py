"""Protection system -> the service a caseworker should consider bringing (Chinese and English).

Routing follows the reasons shown, never raw SHAP sums (which would count exposure and
background features): a child's systems are the systems of its shown reasons, in reason
order without repeats (the first reason's system is the primary; a reason that does not
route, a casework concern of any topic, adds none), and it gets one service per system, primary first ("；" / "; " joined). A child with no shown reason gets the general
review only, so no child is sent to benefit recertification unless a benefit reason is
shown. An already-out child gets one service per net it has left.

The mapping follows the six protection systems of the 2025 State Council opinion on
children in difficult circumstances (catalogue.SYSTEMS). It suggests; it never decides:
the watchlist header says so, and the caseworker records the decision in `review`.

| system        | service (zh)                 | service (en)                                        |
|---------------|------------------------------|-----------------------------------------------------|
| basic_living  | 协助办理低保/补贴复核认定      | help with benefit recertification                    |
| medical       | 医保参保登记、康复训练预约      | medical insurance enrolment and rehab scheduling     |
| education     | 学校跟进、控辍保学              | school follow-up (dropout prevention, 控辍保学)       |
| mental_health | 转介心理支持服务               | psychological support referral                       |
| safety        | 儿童保护转介（强制报告）         | child protection referral (mandatory reporting)      |
| guardianship  | 监护能力评估                   | guardian assessment                                  |
| static        | 综合走访评估                   | general review                                       |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.features import catalogue

SERVICES: dict[str, tuple[str, str]] = {
    "basic_living": ("协助办理低保/补贴复核认定", "help with benefit recertification"),
    "medical": ("医保参保登记、康复训练预约", "medical insurance enrolment and rehab scheduling"),
    "education": ("学校跟进、控辍保学", "school follow-up (dropout prevention, 控辍保学)"),
    "mental_health": ("转介心理支持服务", "psychological support referral"),
    "safety": ("儿童保护转介（强制报告）", "child protection referral (mandatory reporting)"),
    "guardianship": ("监护能力评估", "guardian assessment"),
    "static": ("综合走访评估", "general review"),
}


def suggested_service(system: str, language: str) -> str:
    """The service for one protection system in 'zh' or 'en'; unknown or empty -> general review."""
    zh, en = SERVICES.get(system, SERVICES["static"])
    return zh if language == "zh" else en


SEPARATOR = {"zh": "；", "en": "; "}


def systems_from_reasons(reason_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of shown reason features (n x k, '' = empty slot): '|'-joined systems in reason
    order without repeats, and the primary system ('static' when no reason is shown)."""
    system_of = {entry.name: entry.system for entry in catalogue.CATALOGUE if entry.routes}
    joined, primary = [], []
    for row in reason_features:
        systems = list(dict.fromkeys(system_of[name] for name in row if name in system_of))
        joined.append("|".join(systems))
        primary.append(systems[0] if systems else "static")
    return np.array(joined, dtype=object), np.array(primary, dtype=object)


def services_for(systems: pd.Series, language: str) -> pd.Series:
    """One service per '|'-joined system, in that order; no system -> the general review."""
    def join(value: str) -> str:
        names = [s for s in str(value).split("|") if s] or ["static"]
        return SEPARATOR[language].join(dict.fromkeys(suggested_service(s, language) for s in names))

    mapping = {value: join(value) for value in pd.unique(systems.fillna(""))}
    return systems.fillna("").map(mapping)
