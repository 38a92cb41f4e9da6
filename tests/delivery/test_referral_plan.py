"""The plan as the watchlist and reports read it: service cells and the unmet-need aggregates."""

from __future__ import annotations

import pandas as pd

from src.delivery import referral_plan as rp


def plan() -> pd.DataFrame:
    return pd.DataFrame({
        "child_pid": ["a", "a", "b"], "county_code": "1", "community_code": "v", "caseworker_id": "cw",
        "score": 0.5, "need_rank": [0, 1, 0], "service_code": ["school_follow_up", "child_protection", "school_follow_up"],
        "system": ["education", "safety", "education"], "provider_id": ["P1", "", ""],
        "provider_name": ["中心学校", "", ""], "provider_contact": ["139", "", ""], "distance": [0, -1, -1],
    })  # fmt: skip


def test_service_cells_name_the_provider_or_escalate_primary_first():
    cells = rp.service_text(plan(), "en")
    assert cells["a"] == ("school follow-up (dropout prevention, 控辍保学) → 中心学校 (139); child protection referral "
                          "(mandatory reporting) → no provider with capacity — escalate to county civil affairs")  # fmt: skip
    assert cells["b"].endswith("escalate to county civil affairs")


def test_unmet_table_counts_needs_against_capacity_and_lists_services_without_need():
    directory = pd.DataFrame({"provider_id": ["P1", "P2"], "kind": "school", "county_code": "1", "community_codes": "",
                              "services": ["school_follow_up", "school_follow_up|guardian_assessment"],
                              "monthly_capacity": [1, 4]})  # fmt: skip
    table = rp.unmet_table(plan(), directory).set_index("service_code")
    assert table.loc["school_follow_up", ["needs", "matched", "unmet", "capacity"]].tolist() == [2, 1, 1, 5]
    assert table.loc["child_protection", ["needs", "unmet", "capacity"]].tolist() == [1, 1, 0]
    assert table.loc["guardian_assessment", ["needs", "capacity"]].tolist() == [0, 4]
    assert table["short"].sum() == 2 and not table.loc["guardian_assessment", "short"]
    util = rp.provider_table(plan(), directory).set_index("provider_id")
    assert util.loc["P1", "utilisation"] == 1.0 and util.loc["P2", "referred"] == 0
