"""Ingest: reconciliation, encodings, structural errors, privacy of interim outputs, validate_export."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.data import ingest
from src.data.export_check import open_export, process_chunk
from src.data.export_date import SOURCE_LATEST, infer_export_date
from src.data.ingest import validate_export
from src.data.interim import ExampleSink, TableCounts
from src.data.pseudonymise import KEY_ENV_VAR
from src.data.raw_files import detect_encoding, iter_text_chunks, open_raw_file
from src.data.row_checks import DuplicateFilter, Registry, reason_order
from src.errors import SafetynetError
from tests.data.conftest import CONFORMANCE_RAW, VALID_ROWS, text_frame, write_csv, write_export

EXPORT = dt.date(2024, 12, 31)
NAMES = ["张三", '王"小,明', "李四\n第二行", "=HYPERLINK(1)", "<b>赵</b>"]


def run_ingest(tmp_path, raw, params):
    summary = ingest.run(
        raw, tmp_path / "interim", tmp_path / "reports" / "data_quality.json", params
    )
    quality = json.loads((tmp_path / "reports" / "data_quality.json").read_text(encoding="utf-8"))
    return summary, quality


# --------------------------------------------------------------------------- conformance


def test_conformance_export_ingests_cleanly(tmp_path, params):
    summary, quality = run_ingest(tmp_path, CONFORMANCE_RAW, params)
    assert quality["export_date"] == "2024-12-31"
    for table, q in quality["tables"].items():
        assert q["rows_quarantined"]["total"] == 0, table
        assert q["reconciles"]
        assert q["duplicates_collapsed"] == (1 if table == "school_absences" else 0)
    assert summary["rows"]["children"] == 14 and summary["rows"]["school_absences"] == 30
    assert quality["tables"]["school_calendar"]["default_calendar"]
    calendar = pd.read_parquet(tmp_path / "interim" / "school_calendar.parquet")
    assert calendar["date"].min() >= pd.Timestamp("2020-01-01") and calendar[
        "date"
    ].max() <= pd.Timestamp(EXPORT)


def test_interim_outputs_are_typed_as_documented(tmp_path, params):
    run_ingest(tmp_path, CONFORMANCE_RAW, params)
    interim = tmp_path / "interim"
    children = pd.read_parquet(interim / "children.parquet")
    assert list(children.columns[:2]) == ["child_pid", "sex"]
    assert children["disability_level"].dtype == "Int64"
    assert children["birth_date"].dtype == "datetime64[us]"
    visits = pd.read_parquet(interim / "casework_visits.parquet")
    assert (visits[[c for c in visits if c.startswith("concern_")]].dtypes == "int8").all()
    assert pd.read_parquet(interim / "school_enrollment.parquet")["grade"].dtype == "Int64"
    manifest = json.loads((interim / "manifest.json").read_text())
    assert manifest["export_date"] == "2024-12-31" and manifest["pid_key"] in ("env", "development")
    assert set(manifest["sha256"]) == {p.stem for p in interim.glob("*.parquet")}


def test_identity_lives_only_in_identity_parquet(tmp_path, params, monkeypatch):
    monkeypatch.setenv(KEY_ENV_VAR, "test-secret")
    children = [
        {**VALID_ROWS["children"], "child_id": f"KID{i}", "name": n, "id_number": f"ID{i:016d}"}
        for i, n in enumerate(NAMES)
    ]
    raw = write_export(tmp_path / "raw", {"children": children})
    _, quality = run_ingest(tmp_path, raw, params)
    assert quality["pid_key"] == "env"
    identity = pd.read_parquet(tmp_path / "interim" / "identity.parquet")
    assert identity["name"].tolist() == NAMES  # hostile names survive the round trip
    secrets = [
        *(c["child_id"] for c in children),
        *(c["id_number"] for c in children),
        "张三",
        "赵",
    ]
    outputs = [
        p for p in (tmp_path / "interim").glob("*") if p.is_file() and p.name != "identity.parquet"
    ]
    outputs.append(tmp_path / "reports" / "data_quality.json")
    for path in outputs:
        text = (
            pd.read_parquet(path).to_csv()
            if path.suffix == ".parquet"
            else path.read_text(encoding="utf-8")
        )
        assert not [s for s in secrets if s in text], path.name


def test_pid_key_status_is_recorded_as_development_without_key(tmp_path, params, monkeypatch):
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    _, quality = run_ingest(tmp_path, CONFORMANCE_RAW, params)
    assert quality["pid_key"] == "development"


def test_same_input_gives_byte_identical_outputs(tmp_path, params):
    run_ingest(tmp_path / "a", CONFORMANCE_RAW, params)
    run_ingest(tmp_path / "b", CONFORMANCE_RAW, params)
    for name in ("manifest.json", "quarantine/school_absences.csv"):
        assert (tmp_path / "a" / "interim" / name).read_bytes() == (
            tmp_path / "b" / "interim" / name
        ).read_bytes()


# --------------------------------------------------------------------------- quarantine and reconciliation


def test_bad_rows_are_quarantined_with_raw_text_and_reason(tmp_path, params):
    welfare = [
        VALID_ROWS["welfare_events"],
        {
            **VALID_ROWS["welfare_events"],
            "event_type": "suspended",
            "amount_cny": "",
            "reason": "=cmd|x",
        },
        {**VALID_ROWS["welfare_events"], "child_id": "NOPE"},
        VALID_ROWS["welfare_events"],
    ]
    raw = write_export(tmp_path / "raw", {"welfare_events": welfare})
    _, quality = run_ingest(tmp_path, raw, params)
    q = quality["tables"]["welfare_events"]
    assert q["rows_read"] == 4 and q["rows_accepted"] == 1 and q["duplicates_collapsed"] == 1
    assert q["rows_quarantined"] == {
        "total": 2,
        "by_reason": {"unknown_child": 1, "unknown_code:reason": 1},
    }
    path = tmp_path / "interim" / "quarantine" / "welfare_events.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    bad = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert list(bad.columns[:4]) == ["source_file", "source_row", "child_pid", "reason"]
    assert "raw_reason" in bad.columns and "child_id" not in bad.columns
    assert bad["raw_reason"].tolist() == ["'=cmd|x", ""]  # formula defused
    assert bad["source_row"].tolist() == ["2", "3"]
    assert (
        bad["source_file"].eq("welfare_events.csv").all()
        and bad["child_pid"].str.len().eq(64).all()
    )


def test_registry_history_is_pseudonymised_and_its_broken_chains_quarantined(tmp_path, params):
    good = VALID_ROWS["registry_history"]  # both_parents -> grandparents, the exported value
    history = [
        good,
        good,  # an exact duplicate: collapsed
        # ends off the exported category (low_income)
        {**good, "field": "category", "old_value": "orphan", "new_value": "left_behind"},
        {**good, "field": "disability_level", "old_value": "0", "new_value": "x"},
    ]
    raw = write_export(tmp_path / "raw", {"registry_history": history})
    _, quality = run_ingest(tmp_path, raw, params)
    q = quality["tables"]["registry_history"]
    assert q["found"] and q["reconciles"] and q["rows_read"] == 4 and q["rows_accepted"] == 1
    assert q["duplicates_collapsed"] == 1
    assert q["rows_quarantined"]["by_reason"] == {
        "inconsistent_chain:new_value": 1, "unknown_code:new_value": 1}  # fmt: skip
    accepted = pd.read_parquet(tmp_path / "interim" / "registry_history.parquet")
    assert list(accepted.columns) == ["child_pid", "field", "old_value", "new_value", "change_date"]
    assert accepted["child_pid"].str.len().eq(64).all()
    assert accepted["change_date"].dtype == "datetime64[us]"
    bad = pd.read_csv(tmp_path / "interim" / "quarantine" / "registry_history.csv", dtype=str,
                      encoding="utf-8-sig", keep_default_na=False)  # fmt: skip
    assert "child_id" not in bad.columns and bad["source_row"].tolist() == ["3", "4"]


def test_an_absent_registry_history_writes_no_table(tmp_path, params):
    _, quality = run_ingest(tmp_path, write_export(tmp_path / "raw"), params)
    assert not quality["tables"]["registry_history"]["found"]
    assert not (tmp_path / "interim" / "registry_history.parquet").exists()
    assert (tmp_path / "interim" / "protection_events.parquet").exists()  # absent: empty table


def test_children_quarantine_cascades_to_their_events(tmp_path, params):
    children = [VALID_ROWS["children"], {**VALID_ROWS["children"], "child_id": "C2", "sex": "x"}]
    welfare = [VALID_ROWS["welfare_events"], {**VALID_ROWS["welfare_events"], "child_id": "C2"}]
    raw = write_export(tmp_path / "raw", {"children": children, "welfare_events": welfare})
    _, quality = run_ingest(tmp_path, raw, params)
    assert quality["tables"]["children"]["rows_quarantined"]["by_reason"] == {"unknown_code:sex": 1}
    assert quality["tables"]["welfare_events"]["rows_quarantined"]["by_reason"] == {
        "child_quarantined": 1
    }


def test_quarantine_holds_no_raw_identity(tmp_path, params):
    children = [
        {**VALID_ROWS["children"], "child_id": "C7", "name": "=王小明", "sex": "x"},
        {**VALID_ROWS["children"], "child_id": "", "name": "", "id_number": "", "sex": "x"},
    ]
    raw = write_export(tmp_path / "raw", {"children": children})
    run_ingest(tmp_path, raw, params)
    path = tmp_path / "interim" / "quarantine" / "children.csv"
    bad = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert not {"child_id", "name", "id_number"} & set(bad.columns)
    assert bad["source_row"].tolist() == ["1", "2"] and bad["child_pid"].str.len().tolist() == [
        64,
        0,
    ]
    text = path.read_text(encoding="utf-8-sig")
    assert (
        "王小明" not in text
        and "C7" not in text
        and VALID_ROWS["children"]["id_number"] not in text
    )


DEFECTS = {
    "good": {},
    "unknown_code": {"event_type": "paid"},
    "malformed_date": {"event_date": "31/12/2024"},
    "future_date": {"event_date": "2031-01-01"},
    "unknown_child": {"child_id": "C999"},
    "negative_amount": {"amount_cny": "-1"},
    "missing_required": {"benefit": ""},
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(sorted(DEFECTS)), min_size=1, max_size=40),
    amounts=st.lists(st.integers(0, 3), min_size=40, max_size=40),
    chunk=st.integers(1, 15),
)
def test_counts_reconcile_for_any_mix_of_rows(kinds, amounts, chunk):
    rows = [
        {**VALID_ROWS["welfare_events"], "amount_cny": str(a), **DEFECTS[k]}
        for k, a in zip(kinds, amounts, strict=False)
    ]
    raw = text_frame(rows)
    counts, dedup, sink = TableCounts(), DuplicateFilter(), ExampleSink()
    for start in range(0, len(raw), chunk):
        process_chunk(
            raw.iloc[start : start + chunk],
            "welfare_events",
            EXPORT,
            _registry(),
            dedup,
            counts,
            sink,
        )
    counts.check_reconciles("welfare_events")
    distinct = raw.drop_duplicates()
    assert counts.duplicates_collapsed == len(raw) - len(distinct)
    good = [k == "good" for k in kinds]
    assert counts.rows_accepted == len(distinct[pd.Series(good, index=raw.index)[distinct.index]])
    assert set(counts.by_reason) <= set(reason_order("welfare_events"))


def _registry():
    return Registry.build(["C1"], ["p" * 64])


# --------------------------------------------------------------------------- encodings and formats


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030")],
)
def test_encoding_is_detected_and_names_decode(tmp_path, encoding, expected):
    rows = [{**VALID_ROWS["children"], "child_id": f"C{i}", "name": n} for i, n in enumerate(NAMES)]
    path = write_csv(tmp_path / "children.csv", rows, encoding)
    assert detect_encoding(path.read_bytes()) == expected
    raw_file = open_raw_file("children", path)
    assert raw_file.encoding == expected and raw_file.columns[0] == "child_id"
    assert pd.concat(iter_text_chunks(raw_file, 2))["name"].tolist() == NAMES


def test_gb18030_export_ingests_end_to_end(tmp_path, params):
    raw = write_export(
        tmp_path / "raw", {"children": [{**VALID_ROWS["children"], "name": "欧阳娜娜"}]}, "gb18030"
    )
    _, quality = run_ingest(tmp_path, raw, params)
    assert quality["tables"]["children"]["encoding"] == "gb18030"
    assert pd.read_parquet(tmp_path / "interim" / "identity.parquet")["name"].tolist() == [
        "欧阳娜娜"
    ]


def test_parquet_input_gives_the_same_tables_as_csv(tmp_path, params):
    raw = tmp_path / "raw"
    shutil.copytree(CONFORMANCE_RAW, raw)
    csv_path = raw / "medical_events.csv"
    medical = pd.read_csv(csv_path, dtype={"cost_cny": float}, parse_dates=["event_date"])
    medical.to_parquet(raw / "medical_events.parquet")
    csv_path.unlink()
    run_ingest(tmp_path / "p", raw, params)
    run_ingest(tmp_path / "c", CONFORMANCE_RAW, params)
    read = lambda run: pd.read_parquet(tmp_path / run / "interim" / "medical_events.parquet")  # noqa: E731
    pd.testing.assert_frame_equal(read("p"), read("c"))


def test_export_date_ignores_dates_after_today(tmp_path, make_params):
    welfare = [
        VALID_ROWS["welfare_events"],
        {**VALID_ROWS["welfare_events"], "event_date": "2031-01-01"},
    ]
    raw = write_export(tmp_path / "raw", {"welfare_events": welfare})
    params = make_params()
    raw_files = open_export(raw, params, strict=True).raw_files
    inference = infer_export_date(raw_files, params.ingest, dt.date(2025, 6, 1))
    assert inference.export_date == dt.date(2024, 3, 4)  # one row a table: the latest date
    assert inference.source == SOURCE_LATEST
    assert inference.tables["welfare_events"].rows_after_today == 1
    _, quality = run_ingest(tmp_path, raw, make_params(ingest={"chunk_rows": 7}))
    assert quality["tables"]["welfare_events"]["rows_quarantined"]["by_reason"] == {
        "beyond_export_date:event_date": 1
    }


def test_truth_is_pseudonymised(tmp_path, params):
    raw = write_export(tmp_path / "raw")
    truth = pd.DataFrame(
        {
            "child_id": ["C1", "GHOST"],
            "as_of": pd.to_datetime(["2024-01-01"] * 2),
            "p_true": [0.1, 0.2],
        }
    )
    truth.to_parquet(raw / "truth.parquet")
    run_ingest(tmp_path, raw, params)
    out = pd.read_parquet(tmp_path / "interim" / "truth.parquet")
    children = pd.read_parquet(tmp_path / "interim" / "children.parquet")
    assert list(out.columns) == ["child_pid", "as_of", "p_true"]
    assert out["child_pid"].iloc[0] == children["child_pid"].iloc[0]
    assert out["child_pid"].str.len().eq(64).all()


# --------------------------------------------------------------------------- structural errors


def _one_line_error(raw, params, tmp_path) -> str:
    with pytest.raises(SafetynetError) as info:
        run_ingest(tmp_path, raw, params)
    message = str(info.value)
    assert "\n" not in message and "fix:" in message
    assert not (tmp_path / "interim").exists()
    return message


def test_missing_required_table(tmp_path, params):
    raw = write_export(tmp_path / "raw")
    (raw / "medical_events.csv").unlink()
    assert "medical_events.csv" in _one_line_error(raw, params, tmp_path)


def test_missing_required_column(tmp_path, params):
    row = {k: v for k, v in VALID_ROWS["school_absences"].items() if k != "days"}
    raw = write_export(tmp_path / "raw", {"school_absences": [row]})
    message = _one_line_error(raw, params, tmp_path)
    assert "school_absences.csv" in message and "'days'" in message


def test_file_that_is_another_table(tmp_path, params):
    raw = write_export(tmp_path / "raw", {"school_absences": [VALID_ROWS["welfare_events"]]})
    message = _one_line_error(raw, params, tmp_path)
    assert (
        "school_absences.csv" in message
        and "welfare_events" in message
        and "absence_date" in message
    )


def test_protection_file_holding_medical_events(tmp_path, params):
    raw = write_export(tmp_path / "raw", {"protection_events": [VALID_ROWS["medical_events"]]})
    assert "medical_events" in _one_line_error(raw, params, tmp_path)


def test_unreadable_csv(tmp_path, params):
    raw = write_export(tmp_path / "raw")
    with (raw / "casework_visits.csv").open("a", encoding="utf-8") as fh:
        fh.write("C1,2023-11-11,CW1,home,0,0,0,0,0,0,EXTRA,张三\n")
    message = _one_line_error(raw, params, tmp_path)
    assert "casework_visits.csv" in message and "张三" not in message


def test_wrong_encoding_setting(tmp_path, make_params):
    raw = write_export(
        tmp_path / "raw", {"children": [{**VALID_ROWS["children"], "name": "张三"}]}, "gb18030"
    )
    params = make_params(base={"export_date": "2024-12-31"}, data={"encoding": "utf-8"})
    assert "children.csv" in _one_line_error(raw, params, tmp_path)


def test_csv_and_parquet_for_one_table(tmp_path, params):
    raw = write_export(tmp_path / "raw")
    pd.DataFrame([VALID_ROWS["casework_visits"]]).to_parquet(raw / "casework_visits.parquet")
    assert "casework_visits" in _one_line_error(raw, params, tmp_path)


# --------------------------------------------------------------------------- validate_export


def test_validate_export_lists_problems_without_writing(tmp_path, params):
    welfare = [
        VALID_ROWS["welfare_events"],
        {**VALID_ROWS["welfare_events"], "benefit": "cash", "extra": "x"},
    ]
    raw = write_export(tmp_path / "raw", {"welfare_events": welfare})
    (raw / "school_absences.csv").unlink()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    report = validate_export(raw, params)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not report.ok and not report.ingestible
    text = report.render()
    assert "school_absences.csv" in text and "unknown_code:benefit: 1 (e.g. source rows 2)" in text
    assert "extra columns (ignored, values not read): extra" in text and "NOT INGESTIBLE" in text


def test_validate_export_on_conforming_export(params):
    report = validate_export(CONFORMANCE_RAW, params)
    assert report.ok, report.render()


def test_reviews_go_through_ingest_with_notes_kept_out_of_quarantine(tmp_path, params):
    """casework_reviews: gb18030 detected, bad rows quarantined with reasons but without the note,
    counts reconcile, child identity pseudonymised; the note stays in its interim table only."""
    good = VALID_ROWS["casework_reviews"]
    bad = {**good, "outcome": "confirmed", "note": "坏行备注 SECRETNOTE"}
    elsewhere = tmp_path / "reviews"
    elsewhere.mkdir()
    raw = write_export(tmp_path / "raw", {"casework_reviews": []})
    (raw / "casework_reviews.csv").unlink()
    write_csv(elsewhere / "casework_reviews.csv", [good, bad, {**good, "child_id": "C404"}], "gb18030")
    moved = params.__class__(**{**vars(params), "data": params.data.__class__(**{**vars(params.data),
                                                                              "reviews_dir": str(elsewhere)})})  # fmt: skip
    ingest.run(raw, tmp_path / "interim", tmp_path / "q.json", moved)
    quality = json.loads((tmp_path / "q.json").read_text())["tables"]["casework_reviews"]
    assert quality["encoding"] == "gb18030" and quality["reconciles"] and quality["rows_accepted"] == 1
    assert quality["rows_quarantined"]["by_reason"] == {"unknown_code:outcome": 1, "unknown_child": 1}
    quarantine = (tmp_path / "interim/quarantine/casework_reviews.csv").read_text(encoding="utf-8-sig")
    assert "SECRETNOTE" not in quarantine and "note" not in quarantine.splitlines()[0].split(",")
    interim = pd.read_parquet(tmp_path / "interim/casework_reviews.parquet")
    assert "child_id" not in interim and interim["child_pid"].str.len().eq(64).all()
    assert interim["note"].tolist() == [good["note"]] and interim["services"].tolist() == [good["services"]]
