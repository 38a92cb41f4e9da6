"""Routing follows the reasons shown: one service per system, primary first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.delivery import services


def test_systems_come_from_the_reasons_shown_in_order_without_repeats():
    shown = np.array([
        ["unexcused_days_90d", "payment_gap_max_365d", "absence_rate_all_90d"],
        ["", "", ""],
        ["abuse_reports_365d", "", ""],
    ], dtype=object)  # fmt: skip
    systems, primary = services.systems_from_reasons(shown)
    assert systems.tolist() == ["education|basic_living", "", "safety"]
    assert primary.tolist() == ["education", "static", "safety"]


def test_a_concern_of_any_topic_is_shown_but_routes_nowhere_by_itself():
    shown = np.array([["visit_concerns_90d", ""], ["visit_concerns_90d", "abuse_reports_365d"]], dtype=object)
    systems, primary = services.systems_from_reasons(shown)
    assert systems.tolist() == ["", "safety"] and primary.tolist() == ["static", "safety"]


def test_every_system_gets_its_service_and_no_reason_means_general_review():
    systems = pd.Series(["education|basic_living", "", "safety"])
    zh = services.services_for(systems, "zh")
    assert zh.tolist() == ["学校跟进、控辍保学；协助办理低保/补贴复核认定", "综合走访评估", "儿童保护转介（强制报告）"]
    en = services.services_for(systems, "en")
    assert en[0] == "school follow-up (dropout prevention, 控辍保学); help with benefit recertification"
    assert "benefit" not in en[1] + en[2]


def test_referred_codes_follow_the_systems_primary_first_without_the_general_review():
    assert services.referred_codes("education|basic_living") == ["school_follow_up", "benefit_recertification"]
    assert services.referred_codes("") == [] and services.referred_codes("static|safety") == ["child_protection"]
