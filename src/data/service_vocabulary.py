"""The service vocabulary: every service a child can be referred to, as a code with its
protection system and its wording (zh, en). The single source for routing (a child's
systems -> services, `src.delivery.services`), for the `services` column of the
`service_providers` contract table, and for the referral plan (`src.delivery.matching`).

One service per protection system of the 2025 State Council opinion on children in
difficult circumstances (`src.features.catalogue.SYSTEMS`), plus the general review of a
child with no routed reason (system `static`). The general review is the child director's
own visit, so it is never referred to a provider (`referred` False).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    code: str
    system: str
    zh: str
    en: str
    referred: bool = True  # False: done by the child director, never matched to a provider


VOCABULARY: tuple[Service, ...] = (
    Service("benefit_recertification", "basic_living", "协助办理低保/补贴复核认定",
            "help with benefit recertification"),
    Service("medical_enrolment_rehab", "medical", "医保参保登记、康复训练预约",
            "medical insurance enrolment and rehab scheduling"),
    Service("school_follow_up", "education", "学校跟进、控辍保学",
            "school follow-up (dropout prevention, 控辍保学)"),
    Service("psychological_support", "mental_health", "转介心理支持服务", "psychological support referral"),
    Service("child_protection", "safety", "儿童保护转介（强制报告）",
            "child protection referral (mandatory reporting)"),
    Service("guardian_assessment", "guardianship", "监护能力评估", "guardian assessment"),
    Service("general_review", "static", "综合走访评估", "general review", referred=False),
)  # fmt: skip
BY_CODE: dict[str, Service] = {s.code: s for s in VOCABULARY}
BY_SYSTEM: dict[str, Service] = {s.system: s for s in VOCABULARY}  # one service per system
CODES: tuple[str, ...] = tuple(BY_CODE)
REFERRED_CODES: tuple[str, ...] = tuple(s.code for s in VOCABULARY if s.referred)
GENERAL = BY_SYSTEM["static"]


def service_of(system: str) -> Service:
    """The service of one protection system; unknown or empty -> the general review."""
    return BY_SYSTEM.get(system, GENERAL)


def wording(code: str, language: str) -> str:
    service = BY_CODE[code]
    return service.zh if language == "zh" else service.en
