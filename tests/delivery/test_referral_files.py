"""Referral files: safe file names per provider, formula-safe cells, the provider's minimum columns."""

from __future__ import annotations

import pandas as pd

from src.delivery import referral_files as rf


def test_a_provider_id_that_is_not_file_name_safe_becomes_a_hash():
    assert rf.provider_slug("P522421001") == "P522421001"
    slug = rf.provider_slug("../../etc/passwd")
    assert slug.startswith("p-") and "/" not in slug and slug == rf.provider_slug("../../etc/passwd")


def test_cells_are_neutralised_and_unmet_needs_say_escalate():
    listed = pd.DataFrame({"child_pid": ["a"], "child_id": ["C1"], "name": ["=1+1"], "community_code": ["v1"],
                           "caseworker_id": ["cw"], "reason_1_en": ["@reason"], "no_reason": [0]})  # fmt: skip
    plan = pd.DataFrame({"child_pid": ["a", "a"], "need_rank": [0, 1], "service_code": ["school_follow_up", "child_protection"],
                         "provider_id": ["P1", ""], "provider_name": ["+学校", ""], "provider_contact": ["-x", ""]})  # fmt: skip
    names = {"community": pd.Series({"v1": "杨柳村"}), "caseworker": pd.Series({"cw": "李芳"}), "phone": pd.Series({"cw": "139"})}
    cells = rf.referral_cells(plan, listed, names, "en")
    assert cells["name"].tolist() == ["'=1+1"] * 2 and cells["reasons"].iat[0] == "'@reason"
    assert cells["provider"].tolist() == ["'+学校", "no provider with capacity — escalate to county civil affairs"]
    assert cells["village"].iat[0] == "杨柳村 (v1)" and cells["phone"].iat[0] == "139"
    assert cells["status"].tolist() == ["matched", "escalate"] and "child_id" not in rf.PROVIDER_COLUMNS
