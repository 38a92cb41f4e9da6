"""Protection system -> the service a caseworker should consider bringing (Chinese and English).

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
