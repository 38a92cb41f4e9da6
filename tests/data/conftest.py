"""Small raw rows and params shared by the data tests (all built here, never read from data/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from src.config import load_params
from tests.params import PARAMS_FILE

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_RAW = ROOT / "tests" / "fixtures" / "conformance" / "raw"

# One valid raw (text) row per table; tests mutate one value to inject a defect.
VALID_ROWS = {
    "children": {
        "child_id": "C1",
        "name": "张三",
        "id_number": "110101201205050011",
        "sex": "f",
        "birth_date": "2012-05-05",
        "ethnicity": "han",
        "hukou": "rural",
        "county_code": "110101",
        "community_code": "110101001",
        "caseworker_id": "CW1",
        "category": "low_income",
        "disability_level": "0",
        "guardian_type": "grandparents",
        "registered_date": "2020-01-01",
    },
    "welfare_events": {
        "child_id": "C1",
        "event_date": "2024-01-02",
        "event_type": "payment",
        "benefit": "dibao",
        "amount_cny": "650.00",
        "reason": "",
    },
    "school_calendar": {"date": "2024-03-04"},
    "school_enrollment": {
        "child_id": "C1",
        "event_date": "2023-09-01",
        "school_id": "S1",
        "event_type": "enrolled",
        "school_type": "regular",
        "grade": "6",
    },
    "school_absences": {
        "child_id": "C1",
        "absence_date": "2024-03-04",
        "school_id": "S1",
        "absence_type": "unexcused",
        "days": "1",
    },
    "medical_events": {
        "child_id": "C1",
        "event_date": "2024-02-05",
        "event_type": "outpatient",
        "diagnosis_group": "chronic",
        "cost_cny": "300",
        "out_of_pocket_cny": "120.5",
    },
    "casework_visits": {
        "child_id": "C1",
        "visit_date": "2023-11-11",
        "caseworker_id": "CW1",
        "mode": "home",
        "concern_basic_needs": "0",
        "concern_health": "1",
        "concern_education": "0",
        "concern_mental_health": "0",
        "concern_safety": "0",
        "concern_guardianship": "0",
    },
    "protection_events": {"child_id": "C1", "event_date": "2024-06-29", "event_type": "runaway"},
    "registry_history": {
        "child_id": "C1",
        "field": "guardian_type",
        "old_value": "both_parents",
        "new_value": "grandparents",  # the children row's value: the chain ends at the export
        "change_date": "2023-06-01",
    },
    # the optional name lookups
    "caseworkers": {"caseworker_id": "CW1", "name": "李芳", "phone": "13800000000"},
    "communities": {"community_code": "110101001", "name": "杨柳村", "county_code": "110101"},
    # the optional service directory
    "service_providers": {
        "provider_id": "P1", "name": "县儿童福利指导中心", "kind": "government", "county_code": "110101",
        "community_codes": "110101001|110101002", "services": "benefit_recertification|guardian_assessment",
        "monthly_capacity": "20", "contact": "13900000000", "active_from": "2024-01-01", "active_to": "2026-12-31",
    },
    # the optional review outcomes (issue 15)
    "casework_reviews": {
        "child_id": "C1", "review_date": "2024-11-20", "caseworker_id": "CW1", "outcome": "referred",
        "services": "school_follow_up|psychological_support", "next_review_date": "2025-01-20",
        "provider_id": "P1", "note": "=HYPERLINK(\"x\") 奶奶说孩子常去网吧",
    },
    "persons": {
        "source": "school", "source_person_id": "XJ0001", "name": "張三", "sex": "f",
        "birth_date": "2012-05-05", "id_number": "110101201205050011", "county_code": "110101",
        "address_text": "某村3组",
    },
    "department_events": {
        "source": "health", "source_person_id": "YB0001", "event_date": "2024-03-01",
        "event_type": "serious_illness", "amount_cny": "25000",
    },
}


def text_frame(rows: list[dict]) -> pd.DataFrame:
    """Raw text rows as ingest sees them: str columns, source_row index from 1."""
    frame = pd.DataFrame(rows).astype(str)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="source_row")
    return frame


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding, lineterminator="\n")
    return path


def write_export(
    folder: Path, tables: dict[str, list[dict]] | None = None, encoding: str = "utf-8"
) -> Path:
    """A minimal valid export: one row per required table, overridden by `tables`."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        **{
            t: [r]
            for t, r in VALID_ROWS.items()
            if t not in ("school_calendar", "protection_events", "registry_history")
        },
        **(tables or {}),
    }
    for table, rows in tables.items():
        write_csv(folder / f"{table}.csv", rows, encoding)
    return folder


@pytest.fixture
def params():
    return load_params(
        PARAMS_FILE,
        overrides={"base": {"export_date": "2024-12-31"}, "ingest": {"chunk_rows": 1000}},
    )


@pytest.fixture
def make_params():
    def make(**sections):
        return load_params(PARAMS_FILE, overrides=sections)

    return make
