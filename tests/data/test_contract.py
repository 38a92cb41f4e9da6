"""The contract schemas (through ingest's row validation) accept valid rows and name each defect."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from src.data import contract
from src.data.row_checks import (
    Registry,
    chain_failures,
    first_reasons,
    reason_order,
    validate_rows,
)
from tests.data.conftest import VALID_ROWS, text_frame

EXPORT = dt.date(2024, 12, 31)
REGISTRY = Registry.build(
    ["C1"], ["p" * 64], ["CQ"], pd.to_datetime(["2012-05-05"]), values={"county_code": ["110101"]}
)


def reasons_for(table: str, **changes) -> list:
    row = {**VALID_ROWS[table], **changes}
    _, reasons = validate_rows(text_frame([row]), table, EXPORT, REGISTRY)
    return reasons.tolist()


@pytest.mark.parametrize("table", list(contract.TABLES))
def test_valid_example_of_every_table_is_accepted(table):
    parsed, reasons = validate_rows(text_frame([VALID_ROWS[table]]), table, EXPORT, REGISTRY)
    assert reasons.isna().all(), reasons.tolist()
    date_column = contract.TABLES[table].date_column
    assert date_column is None or parsed.dtypes[date_column] == "datetime64[us]"


@pytest.mark.parametrize(
    ("table", "changes", "reason"),
    [
        ("welfare_events", {"event_type": "paid"}, "unknown_code:event_type"),
        ("registry_history", {"field": "sex"}, "unknown_code:field"),
        ("registry_history", {"old_value": "orphan"}, "unknown_code:old_value"),
        ("registry_history", {"field": "disability_level", "old_value": "0", "new_value": "5"},
         "unknown_code:new_value"),
        ("registry_history", {"new_value": ""}, "missing_required:new_value"),
        ("registry_history", {"change_date": "2025-01-01"}, "beyond_export_date:change_date"),
        ("registry_history", {"change_date": "2012-05-04"}, "before_birth:change_date"),
        ("registry_history", {"child_id": "C404"}, "unknown_child"),
        ("children", {"sex": "F"}, "unknown_code:sex"),
        ("school_absences", {"days": "2"}, "unknown_code:days"),
        ("welfare_events", {"event_date": "2024/01/02"}, "malformed_date:event_date"),
        ("welfare_events", {"event_date": "2024-02-30"}, "malformed_date:event_date"),
        ("welfare_events", {"event_date": "2024-1-2"}, "malformed_date:event_date"),
        ("welfare_events", {"event_date": "2025-01-01"}, "beyond_export_date:event_date"),
        ("children", {"birth_date": "2090-01-01"}, "beyond_export_date:birth_date"),
        ("children", {"birth_date": "1989-12-31"}, "date_before_1990:birth_date"),
        ("welfare_events", {"child_id": "C404"}, "unknown_child"),
        ("welfare_events", {"child_id": "CQ"}, "child_quarantined"),
        ("welfare_events", {"amount_cny": "-5"}, "out_of_range:amount_cny"),
        ("welfare_events", {"amount_cny": "lots"}, "malformed_number:amount_cny"),
        ("welfare_events", {"amount_cny": "1e12"}, "implausible_amount:amount_cny"),
        ("medical_events", {"cost_cny": "2e7"}, "implausible_amount:cost_cny"),
        ("welfare_events", {"event_date": "2012-05-04"}, "before_birth:event_date"),
        ("casework_visits", {"visit_date": "2001-01-01"}, "before_birth:visit_date"),
        ("children", {"registered_date": "2012-05-04"}, "before_birth:registered_date"),
        ("children", {"hukou": ""}, "missing_required:hukou"),
        ("casework_visits", {"mode": "  "}, "missing_required:mode"),
        ("welfare_events", {"event_type": "enrolled"}, "amount_not_allowed:amount_cny"),
        ("welfare_events", {"amount_cny": ""}, "amount_required:amount_cny"),
        ("welfare_events", {"event_type": "suspended", "amount_cny": ""}, "reason_required:reason"),
        ("welfare_events", {"reason": "moved_away"}, "reason_not_allowed:reason"),
        (
            "medical_events",
            {"out_of_pocket_cny": "300.01"},
            "out_of_pocket_above_cost:out_of_pocket_cny",
        ),
        ("children", {"child_id": "C 1"}, "invalid_format:child_id"),
        ("children", {"child_id": "C" * 33}, "invalid_format:child_id"),
        ("children", {"county_code": "11010"}, "invalid_format:county_code"),
        ("children", {"county_code": "11010x"}, "invalid_format:county_code"),
        ("children", {"disability_level": "5"}, "out_of_range:disability_level"),
        ("children", {"disability_level": "1.5"}, "malformed_number:disability_level"),
        ("school_enrollment", {"grade": "13"}, "out_of_range:grade"),
        ("casework_visits", {"concern_safety": "2"}, "out_of_range:concern_safety"),
        ("caseworkers", {"name": " "}, "missing_required:name"),
        ("caseworkers", {"caseworker_id": ""}, "missing_required:caseworker_id"),
        ("communities", {"county_code": "999999"}, "not_in_children:county_code"),
        ("communities", {"county_code": "1101"}, "invalid_format:county_code"),
        ("service_providers", {"services": "school_follow_up|tutoring"}, "unknown_code:services"),
        ("service_providers", {"services": "school_follow_up|"}, "unknown_code:services"),
        ("service_providers", {"monthly_capacity": "0"}, "out_of_range:monthly_capacity"),
        ("service_providers", {"monthly_capacity": "-3"}, "out_of_range:monthly_capacity"),
        ("service_providers", {"kind": "church"}, "unknown_code:kind"),
        ("service_providers", {"county_code": "999999"}, "not_in_children:county_code"),
        ("service_providers", {"active_to": "2023-12-31"}, "period_reversed:active_to"),
        ("service_providers", {"active_from": "2099-01-01", "active_to": ""}, "beyond_export_date:active_from"),
    ],
)
def test_each_defect_gets_its_reason(table, changes, reason):
    assert reasons_for(table, **changes) == [reason]


def test_optional_values_may_be_empty_or_absent():
    assert pd.isna(reasons_for("children", name="", ethnicity="", caseworker_id="")[0])
    row = {
        k: v
        for k, v in VALID_ROWS["medical_events"].items()
        if k not in ("cost_cny", "diagnosis_group")
    }
    _, reasons = validate_rows(text_frame([row]), "medical_events", EXPORT, REGISTRY)
    assert reasons.isna().all()


def test_codes_and_dates_are_stripped_but_ids_are_not():
    assert pd.isna(
        reasons_for("welfare_events", event_type=" payment ", event_date=" 2024-01-02")[0]
    )
    assert reasons_for("welfare_events", child_id=" C1") == ["invalid_format:child_id"]


def test_first_reason_wins_in_the_documented_order():
    # malformed date (parse) beats an unknown code (column check) beats an unknown child
    assert reasons_for("welfare_events", event_date="x", event_type="??", child_id="C9") == [
        "malformed_date:event_date"
    ]
    assert reasons_for("welfare_events", event_type="??", child_id="C9") == [
        "unknown_code:event_type"
    ]
    order = reason_order("welfare_events")
    assert order.index("malformed_date:event_date") < order.index("missing_required:child_id")
    assert order[-3:] == ["unknown_child", "child_quarantined", "before_birth:event_date"]


def test_duplicate_child_ids_with_different_rows_are_all_quarantined():
    rows = [
        VALID_ROWS["children"],
        {**VALID_ROWS["children"], "sex": "m"},
        {**VALID_ROWS["children"], "child_id": "C2"},
    ]
    _, reasons = validate_rows(text_frame(rows), "children", EXPORT)
    assert reasons.tolist()[:2] == ["duplicate_child_id", "duplicate_child_id"]
    assert pd.isna(reasons.iloc[2])


def test_a_repeated_lookup_key_quarantines_every_row_of_it():
    rows = [VALID_ROWS["caseworkers"], {**VALID_ROWS["caseworkers"], "name": "王伟"},
            {**VALID_ROWS["caseworkers"], "caseworker_id": "CW2"}]  # fmt: skip
    _, reasons = validate_rows(text_frame(rows), "caseworkers", EXPORT, REGISTRY)
    assert reasons.tolist()[:2] == ["duplicate_id:caseworker_id"] * 2 and pd.isna(reasons.iloc[2])
    assert reason_order("communities")[-2:] == ["duplicate_id:community_code", "not_in_children:county_code"]


def test_a_lookup_is_not_checked_against_children_without_a_registry():
    _, reasons = validate_rows(text_frame([VALID_ROWS["communities"] | {"county_code": "999999"}]),
                               "communities", EXPORT, None)  # fmt: skip
    assert reasons.isna().all()


def test_default_school_calendar_skips_weekends_and_breaks():
    days = contract.default_school_calendar(dt.date(2024, 1, 1), dt.date(2024, 12, 31))["date"]
    assert days.dt.dayofweek.max() < 5
    assert not days.isin(pd.to_datetime(["2024-02-01", "2024-08-01", "2024-07-10"])).any()
    assert pd.to_datetime(["2024-02-21", "2024-07-09", "2024-09-02"]).isin(days).all()


# --------------------------------------------------------------------------- registry chains

EXPORTED = Registry.build(
    ["C1", "C2"], ["p" * 64, "q" * 64], (), pd.to_datetime(["2012-05-05", "2012-05-05"]),
    {"category": np.array(["orphan", "low_income"], dtype=object),
     "guardian_type": np.array(["institution", "grandparents"], dtype=object),
     "disability_level": np.array(["2", "0"], dtype=object)},
)  # fmt: skip


def change(child_id, field, old, new, date) -> dict:
    return {"child_id": child_id, "field": field, "old_value": old, "new_value": new,
            "change_date": date}  # fmt: skip


def chain_reasons(rows: list[dict]) -> list:
    parsed, reasons = validate_rows(text_frame(rows), "registry_history", EXPORT, EXPORTED)
    chains = chain_failures(parsed, reasons.isna().to_numpy(), EXPORTED)
    reasons = reasons.fillna(first_reasons(parsed.index, chains, reason_order("registry_history")))
    return [r if isinstance(r, str) else None for r in reasons]


def test_a_chain_that_links_up_to_the_exported_value_is_accepted():
    rows = [  # out of date order on purpose: chains are read in date order
        change("C1", "guardian_type", "grandparents", "institution", "2024-03-01"),
        change("C1", "guardian_type", "both_parents", "grandparents", "2023-01-01"),
        change("C1", "disability_level", "1", "2", "2022-01-01"),
        change("C2", "category", "left_behind", "low_income", "2024-06-30"),
    ]
    assert chain_reasons(rows) == [None] * 4


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # old_value of the later change is not the earlier change's new_value
        ([change("C1", "guardian_type", "both_parents", "grandparents", "2023-01-01"),
          change("C1", "guardian_type", "single_parent", "institution", "2024-03-01"),
          change("C1", "category", "low_income", "orphan", "2024-03-01")],
         ["inconsistent_chain:old_value"] * 2 + [None]),
        # two changes of one field on one day: their order is unknown
        ([change("C1", "guardian_type", "both_parents", "grandparents", "2024-03-01"),
          change("C1", "guardian_type", "grandparents", "institution", "2024-03-01")],
         ["inconsistent_chain:old_value"] * 2),
        # the last change does not end at the value the children table exports
        ([change("C2", "guardian_type", "grandparents", "both_parents", "2024-03-01")],
         ["inconsistent_chain:new_value"]),
        # a row that fails its own check leaves the rest of the chain broken
        ([change("C1", "category", "low_income", "left_behind", "2023-01-01"),
          change("C1", "category", "left_behind", "orphan", "2090-01-01"),
          change("C1", "category", "low_income", "orphan", "2024-01-01")],
         ["inconsistent_chain:old_value", "beyond_export_date:change_date",
          "inconsistent_chain:old_value"]),
    ],
)  # fmt: skip
def test_chains_that_do_not_link_up_are_quarantined_whole(rows, expected):
    assert chain_reasons(rows) == expected


def test_a_provider_may_repeat_over_time_but_not_with_overlapping_periods():
    row = VALID_ROWS["service_providers"]
    rows = [row | {"active_to": "2024-06-30"}, row | {"active_from": "2024-07-01", "active_to": ""},
            row | {"provider_id": "P2", "active_from": "", "active_to": ""},
            row | {"provider_id": "P2", "active_from": "2024-03-01", "active_to": "2024-03-31"},
            row | {"provider_id": "P3"}]  # fmt: skip
    _, reasons = validate_rows(text_frame(rows), "service_providers", EXPORT, REGISTRY)
    assert reasons.isna().tolist() == [True, True, False, False, True]
    assert set(reasons.dropna()) == {"overlapping_duplicate:provider_id"}
    assert "duplicate_id:provider_id" not in reason_order("service_providers")


def test_a_contract_may_end_after_the_export_and_services_are_stripped_one_by_one():
    assert pd.isna(reasons_for("service_providers", active_to="2099-12-31",
                               services=" school_follow_up | child_protection ")[0])  # fmt: skip
