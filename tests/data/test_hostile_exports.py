"""Hostile exports (issue #11): one table of cases, each run through validate AND ingest.

A case is one line: a mutation of a small clean generated export, the exit code validate
must give (0 clean, 1 rows to quarantine, 2 not ingestible), a fragment of the message, and
the expected reconciliation: quarantine reasons per table (``"duplicates"`` counts collapsed
rows, ``"accepted"`` appended rows that are valid). Every case also checks that

- validate and ingest agree: ingest fails exactly when the exit code is 2, with a message
  validate also reports; otherwise validate's counts equal data_quality.json's;
- counts reconcile (read = accepted + quarantined + duplicates) and equal the clean
  export's plus the appended rows;
- with a broken table, validate still checks the other tables;
- no raw identity, no value of an extra column, no control character reaches an output;
- an ingestible case keeps the clean export's export date: no stray date moves it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from src.config import load_params
from src.data import generate, ingest
from src.data.contract import TABLES
from src.data.read_errors import read_error
from src.errors import SafetynetError
from tests.data import mutations as m
from tests.params import PARAMS_FILE

SECRET = "SECRET-13800138000"  # the value of every extra column: must never be written
ESC = "\x1b[31mred\x1b[0m"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # nothing but line ends may stay raw in an output
FORMULA = '=HYPERLINK("http://evil","x")'
W, C, H = "welfare_events", "children", "registry_history"
BAD_WELFARE = {"event_type": "paid"}  # one unknown_code:event_type row
NEW_CHILD = {"child_id": "C99999999", "name": "泄露测试", "id_number": "110101201001010011"}
CW, CM = "caseworkers", "communities"  # the optional name lookups: names are identity
HOSTILE_LOOKUP_NAMES = {"=HYPERLINK(\"http://evil\",\"主任\")", "<script>alert(1)</script>村", "泄露甲", "泄露乙"}


@dataclass(frozen=True)
class Case:
    mutate: m.Mutate
    exit_code: int
    message: str
    quarantine: dict[str, dict[str, int]] = field(default_factory=dict)


CASES = {
    # 10. exit codes and the folder
    "clean": Case(m.nothing(), 0, "OK: conforms to the data contract (exit code 0)"),
    "one_bad_row": Case(m.append_rows(W, BAD_WELFARE), 1, "INGESTIBLE, with rows to quarantine (exit code 1)", {W: {"unknown_code:event_type": 1}}),
    "duplicate_row": Case(m.append_rows(W, {}), 0, "1 duplicates collapsed", {W: {"duplicates": 1}}),
    "missing_folder": Case(m.delete_folder(), 2, "the export folder does not exist"),
    "folder_is_a_file": Case(m.folder_is_a_file(), 2, "the export folder is not a folder"),
    # 1. a broken registry: reported as ingest reports it, the other tables still checked
    "children_missing": Case(m.remove(C), 2, "required table 'children' is missing"),
    "children_empty": Case(m.empty(C), 2, "children.csv: empty file, no header row"),
    "children_semicolons": Case(m.rewrite(C, sep=";"), 2, "children.csv: this file is semicolon-delimited; the contract expects commas"),
    "children_no_sex": Case(m.drop_column(C, "sex"), 2, "required column 'sex' is missing"),
    "children_truncated_parquet": Case(lambda f: (m.to_parquet(C)(f), m.truncate(C)(f)), 2, "children.parquet: not a readable Parquet file"),
    "children_fifo": Case(m.replace_with(C, "fifo"), 2, "children.csv: table 'children' was found but could not be read (it is a FIFO)"),
    # 2. read errors are verdicts, never notes; 5. they name the file, the row and a fix
    "unterminated_quote": Case(m.append_text(W, '"C00000001","2023-03-01","payment,dibao,1,\n'), 2, "a quote opened in row 3271, line 3272 is never closed; fix: quote every value"),
    "stray_quote": Case(m.append_text(W, '"C00000001","2023-03-01","pay"ment","dibao","1",""\n'), 1, "unknown_code:event_type: 1", {W: {"unknown_code:event_type": 1}}),  # read leniently
    "too_few_fields": Case(m.insert_line(W, 2, "C00000001,2023-01-01,payment\n"), 2, "welfare_events.csv: not readable as CSV: row 2 (line 3) has 3 fields where the header has 6"),
    "too_many_fields": Case(m.append_text(W, ",".join(["x"] * 15) + "\n"), 2, "has 15 fields where the header has 6"),
    "bare_cr_in_value": Case(m.append_text(W, "C00000001,2023-01-01,pay\rment,dibao,1,\n"), 2, "has 3 fields where the header has 6"),
    "cr_only_line_ends": Case(m.transform_bytes(W, lambda b: b.replace(b"\n", b"\r")), 0, "OK: conforms"),
    "crlf_line_ends": Case(m.transform_bytes(C, lambda b: b.replace(b'"\n', b'"\r\n')), 0, "OK: conforms"),
    "gb18030_bad_byte_after_4mb": Case(m.gb18030_bad_byte_after(C, 5 << 20), 2, "children.csv: not valid gb18030 text at byte"),
    "utf8_bad_byte": Case(m.transform_bytes(W, lambda b: b + b'"C1","\xff"\n'), 2, "welfare_events.csv: neither UTF-8 nor GB18030 text; fix: set data.encoding"),
    "parquet_list_column": Case(m.to_parquet(W, lambda f: f.assign(benefit=[[b] for b in f["benefit"]])), 2, "welfare_events.parquet: column 'benefit' holds list<"),
    "events_truncated_parquet": Case(lambda f: (m.to_parquet(W)(f), m.truncate(W)(f)), 2, "welfare_events.parquet: not a readable Parquet file"),
    # 6. another delimiter
    "tab_delimited": Case(m.rewrite(W, sep="\t"), 2, "welfare_events.csv: this file is tab-delimited; the contract expects commas"),
    # 4. headers and personal data
    "header_Name": Case(m.rename_column(C, "name", "Name"), 0, "column 'Name' read as 'name'"),
    "header_blanks": Case(m.rename_column(C, "child_id", " Child_ID "), 0, "column ' Child_ID ' read as 'child_id'"),
    "header_inner_blank": Case(m.rename_column(W, "event_date", "Event Date"), 0, "column 'Event Date' read as 'event_date'"),
    "header_near_miss": Case(m.rename_column(C, "birth_date", "birthdate"), 2, "column 'birthdate' is not a contract column but looks like 'birth_date'; fix: rename it"),
    "header_near_miss_optional": Case(m.rename_column(C, "id_number", "id_numbr"), 2, "looks like 'id_number'"),
    "header_twice_by_case": Case(m.rename_column(C, "sex", "NAME"), 2, "column 'name' appears twice in the header (as 'name' and 'NAME')"),
    "header_twice": Case(m.rename_column(C, "sex", "name"), 2, "column 'name' appears twice"),
    "extra_column": Case(m.add_column(C, "mother_phone", SECRET), 0, "extra columns (ignored, values not read): mother_phone"),
    "extra_column_bad_row": Case(lambda f: (m.add_column(W, "mother_phone", SECRET)(f), m.append_rows(W, BAD_WELFARE)(f)), 1, "mother_phone", {W: {"unknown_code:event_type": 1}}),
    "bad_child_row": Case(m.append_rows(C, NEW_CHILD | {"sex": "x"}), 1, "unknown_code:sex: 1", {C: {"unknown_code:sex": 1}}),
    "bad_child_id": Case(m.append_rows(C, NEW_CHILD | {"child_id": "C 1 王小明"}), 1, "invalid_format:child_id: 1", {C: {"invalid_format:child_id": 1}}),
    # 8. hostile column names
    "formula_column_name": Case(lambda f: (m.add_column(W, FORMULA, SECRET)(f), m.append_rows(W, BAD_WELFARE)(f)), 1, "HYPERLINK", {W: {"unknown_code:event_type": 1}}),
    "escape_column_name": Case(m.add_column(W, ESC, SECRET), 0, "\\x1b[31mred\\x1b[0m"),
    "control_chars_in_values": Case(m.append_rows(W, {"event_type": "pay\rment\x00" + ESC}), 1, "unknown_code:event_type", {W: {"unknown_code:event_type": 1}}),
    # 9. optional tables found but unreadable
    "optional_symlink_loop": Case(m.replace_with("protection_events", "symlink_loop"), 2, "protection_events.csv: table 'protection_events' was found but could not be read (a symlink loop)"),
    "optional_dangling_symlink": Case(m.replace_with("protection_events", "dangling"), 2, "table 'protection_events' was found but could not be read"),
    "optional_directory": Case(m.replace_with("school_calendar", "directory"), 2, "was found but could not be read (it is a directory)"),
    "optional_absent": Case(m.remove("protection_events"), 0, "[absent]  protection_events"),
    # 11. the name lookups: hostile names are data, a repeated id or an empty name is quarantined
    "lookup_formula_name": Case(m.append_rows(CW, {"caseworker_id": "CW_NEW", "name": '=HYPERLINK("http://evil","主任")'}), 0, "caseworkers: caseworkers.csv (utf-8)", {CW: {"accepted": 1}}),
    "lookup_html_name": Case(m.append_rows(CM, {"community_code": "NEW001", "name": "<script>alert(1)</script>村"}), 0, "communities: communities.csv", {CM: {"accepted": 1}}),
    "lookup_duplicate_id": Case(m.append_rows(CW, {"caseworker_id": "CWX", "name": "泄露甲"}, {"caseworker_id": "CWX", "name": "泄露乙"}), 1, "duplicate_id:caseworker_id: 2", {CW: {"duplicate_id:caseworker_id": 2}}),
    "lookup_empty_name": Case(m.append_rows(CW, {"caseworker_id": "CWY", "name": " "}), 1, "missing_required:name: 1", {CW: {"missing_required:name": 1}}),
    "lookup_unknown_county": Case(m.append_rows(CM, {"community_code": "NEW002", "county_code": "999999"}), 1, "not_in_children:county_code: 1", {CM: {"not_in_children:county_code": 1}}),
    "lookup_absent": Case(lambda f: (m.remove(CW)(f), m.remove(CM)(f)), 0, "[absent]  caseworkers (optional; watchlists show child directors by code)"),
    # 7. plausibility
    "event_before_birth": Case(m.event_before_birth(W, "event_date"), 1, "before_birth:event_date: 1", {W: {"before_birth:event_date": 1}}),
    "visit_before_birth": Case(m.event_before_birth("casework_visits", "visit_date"), 1, "before_birth:visit_date", {"casework_visits": {"before_birth:visit_date": 1}}),
    "registered_before_birth": Case(m.append_rows(C, NEW_CHILD | {"birth_date": "2015-01-02", "registered_date": "2015-01-01"}), 1, "before_birth:registered_date", {C: {"before_birth:registered_date": 1}}),
    "amount_1e12": Case(m.append_rows(W, {"amount_cny": "1e12"}), 1, "implausible_amount:amount_cny", {W: {"implausible_amount:amount_cny": 1}}),
    "medical_cost_1e9": Case(m.append_rows("medical_events", {"cost_cny": "1e9", "out_of_pocket_cny": ""}), 1, "implausible_amount:cost_cny", {"medical_events": {"implausible_amount:cost_cny": 1}}),
    # 3. the export date (the clean export ends 2023-12-31): stray dates never move it
    "stray_recent_date": Case(m.append_rows(W, {"event_date": "2026-11-30"}), 1, "last row 2026-11-30 (passed over 2026-11: 1 row after 34 months without rows)", {W: {"beyond_export_date:event_date": 1}}),
    "stray_date_next_week": Case(m.append_rows(W, {"event_date": "2024-01-05"}), 1, "passed over 2024-01: 1 row, below 0.5 x", {W: {"beyond_export_date:event_date": 1}}),
    "stray_dates_many_months": Case(m.append_rows(W, *({"event_date": f"20{y}-{mo:02d}-15"} for y in (24, 25) for mo in range(1, 13))), 1, "beyond_export_date:event_date: 24", {W: {"beyond_export_date:event_date": 24}}),
    "stray_registration": Case(m.append_rows(C, NEW_CHILD | {"registered_date": "2026-11-30"}), 1, "beyond_export_date:registered_date: 1", {C: {"beyond_export_date:registered_date": 1}}),
    "far_future_date": Case(m.append_rows(W, {"event_date": "2091-03-15"}), 1, "1 row dated after today ignored", {W: {"beyond_export_date:event_date": 1}}),
    # 11. registry_history (optional): codes by field, chains, the export date, structure
    "history_absent": Case(m.remove(H), 0, "[absent]  registry_history"),
    "history_unknown_field": Case(m.append_rows(H, {"field": "hobby"}), 1, "unknown_code:field: 1", {H: {"unknown_code:field": 1}}),
    "history_value_not_in_field": Case(m.append_rows(H, {"new_value": "martian"}), 1, "unknown_code:new_value: 1", {H: {"unknown_code:new_value": 1}}),
    "history_unknown_child": Case(m.append_rows(H, {"child_id": "C99999999"}), 1, "unknown_child: 1", {H: {"unknown_child": 1}}),
    "history_after_export": Case(m.append_rows(H, {"change_date": "2026-11-30"}), 1, "beyond_export_date:change_date: 1", {H: {"beyond_export_date:change_date": 1}}),
    "history_chain_broken": Case(m.registry_chain(broken=True), 1, "inconsistent_chain:old_value: 2", {H: {"inconsistent_chain:old_value": 2}}),
    "history_chain_ends_off_export": Case(m.registry_chain(broken=False), 1, "inconsistent_chain:new_value: 1", {H: {"inconsistent_chain:new_value": 1}}),
    "history_duplicate": Case(m.append_rows(H, {}), 0, "1 duplicates collapsed", {H: {"duplicates": 1}}),
    "history_no_old_value": Case(m.drop_column(H, "old_value"), 2, "required column 'old_value' is missing"),
    "history_semicolons": Case(m.rewrite(H, sep=";"), 2, "registry_history.csv: this file is semicolon-delimited; the contract expects commas"),
    "table_ends_early": Case(m.shift_dates("casework_visits", "visit_date", -183), 2, "export date: the tables end more than 45 days apart (ingest.export_date_tolerance_days): "),
}  # fmt: skip


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """(params, clean export folder, its identity values, its counts per table)."""
    root = tmp_path_factory.mktemp("hostile")
    params = load_params(
        PARAMS_FILE,
        {
            "synthetic": {"n_children": 300, "months": 12, "defects": dict.fromkeys(_KINDS, 0.0),
                          "prevalence_drift": 0.0, "recert_hazard_ratio": 1.0},  # row numbers are fixed
            "ingest": {"chunk_rows": 5000},
        },
    )
    generate.run(root / "exp", params)
    children = pd.read_csv(root / "exp" / "children.csv", dtype=str, keep_default_na=False)
    identity = {*children["child_id"], *children["id_number"], *NEW_CHILD.values()}
    identity |= {n for n in children["name"] if len(n) >= 2} | HOSTILE_LOOKUP_NAMES
    for table in (CW, CM):
        lookup = pd.read_csv(root / "exp" / f"{table}.csv", dtype=str, keep_default_na=False)
        identity |= {n for n in lookup["name"] if len(n) >= 2} | set(lookup.get("phone", []))
    report = ingest.validate_export(root / "exp", params)
    assert report.exit_code == 0, report.render()
    return params, root / "exp", identity, {t.table: t.counts.as_dict() for t in report.tables}


_KINDS = (
    "duplicate",
    "unknown_code",
    "malformed_date",
    "future_date",
    "unknown_child",
    "negative_amount",
    "missing_required",
)


@pytest.fixture(scope="module")
def clean_dates(clean):
    """How the clean export's date was inferred (ExportDateInference)."""
    params, source, _, _ = clean
    return ingest.validate_export(source, params).export_date_inference


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_export(name, clean, clean_dates, tmp_path, monkeypatch):
    case = CASES[name]
    params, source, identity, clean_counts = clean
    monkeypatch.setenv("SAFETYNET_PID_KEY", "hostile-test-key")
    folder = tmp_path / "exp"
    shutil.copytree(source, folder, symlinks=True)
    case.mutate(folder)

    report = ingest.validate_export(folder, params)
    text = report.render()
    assert report.exit_code == case.exit_code, text
    assert case.message in text, text
    assert "\x1b" not in text and "\r" not in text
    counts = {t.table: t.counts.as_dict() for t in report.tables}
    for table, check in ((t.table, t) for t in report.tables):
        if check.found and not check.problem and report.exit_code < 2:
            _assert_expected_counts(
                counts[table], clean_counts[table], case.quarantine.get(table, {})
            )
        elif check.found and not check.problem and table != C:  # still checked, without children
            assert counts[table]["rows_read"] == clean_counts[table]["rows_read"], table

    out = tmp_path / "interim"
    quality_path = tmp_path / "data_quality.json"
    if case.exit_code == 2:
        with pytest.raises(SafetynetError) as info:
            ingest.run(folder, out, quality_path, params)
        assert str(info.value) in report.problems and "fix:" in str(info.value)
        assert "\n" not in str(info.value) and not out.exists()
        return
    ingest.run(folder, out, quality_path, params)
    report_json = json.loads(quality_path.read_text(encoding="utf-8"))
    expected_date = clean_dates.export_date.isoformat()
    assert report.export_date == report_json["export_date"] == expected_date
    quality = report_json["tables"]
    for table in TABLES:
        ingested = {k: quality[table][k] for k in counts[table]}
        assert ingested == counts[table], table  # validate and ingest agree row for row
    _assert_nothing_leaks(out, quality_path, identity)
    if name == "header_Name":
        assert pd.read_parquet(out / "identity.parquet")["name"].notna().all()
    if name.startswith("lookup_"):  # valid names reach interim as typed, quarantined ones do not
        names = {*pd.read_parquet(out / f"{CW}.parquet")["name"], *pd.read_parquet(out / f"{CM}.parquet")["name"]}
        assert len(names & HOSTILE_LOOKUP_NAMES) == (name in ("lookup_formula_name", "lookup_html_name"))
        assert bool(names) == (name != "lookup_absent")


def _assert_expected_counts(got: dict, clean: dict, reasons: dict[str, int]) -> None:
    reasons = dict(reasons)
    duplicates, accepted = reasons.pop("duplicates", 0), reasons.pop("accepted", 0)
    added = duplicates + accepted + sum(reasons.values())
    assert got["rows_quarantined"]["by_reason"] == reasons
    assert got["duplicates_collapsed"] == clean["duplicates_collapsed"] + duplicates
    assert got["rows_read"] == clean["rows_read"] + added
    assert got["rows_accepted"] == clean["rows_accepted"] + accepted
    assert got["rows_read"] == (
        got["rows_accepted"] + got["rows_quarantined"]["total"] + got["duplicates_collapsed"]
    )


def _assert_nothing_leaks(out: Path, quality_path: Path, identity: set[str]) -> None:
    """Quarantine files and the report: no raw identity, no extra values, no live formula."""
    texts = {p: p.read_text(encoding="utf-8-sig") for p in (out / "quarantine").glob("*.csv")}
    texts[quality_path] = quality_path.read_text(encoding="utf-8")
    for path, text in texts.items():
        assert SECRET not in text and not CONTROL.search(text.replace("\n", "")), path.name
        assert not [s for s in identity if s in text], path.name
    for path in (out / "quarantine").glob("*.csv"):
        bad = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
        assert list(bad.columns[:2]) == ["source_file", "source_row"], path.name
        cells = [*bad.columns, *bad.to_numpy().ravel()]
        assert not [c for c in cells if c[:1] in ("=", "+", "@")], path.name
    for parquet in out.glob("*.parquet"):
        frame = pd.read_parquet(parquet)
        assert SECRET not in frame.to_csv(), parquet.name


def test_data_quality_says_how_the_export_date_was_inferred(
    clean, clean_dates, tmp_path, monkeypatch
):
    """Issue #11 defect 3: one stray recent date moved the export date, silently."""
    params, source, _, _ = clean
    monkeypatch.setenv("SAFETYNET_PID_KEY", "hostile-test-key")
    folder = tmp_path / "exp"
    shutil.copytree(source, folder, symlinks=True)
    m.append_rows(W, {"event_date": "2026-11-30"})(folder)
    ingest.run(folder, tmp_path / "interim", tmp_path / "data_quality.json", params)
    quality = json.loads((tmp_path / "data_quality.json").read_text(encoding="utf-8"))
    block, clean_block = quality["export_date_inference"], clean_dates.as_dict()
    assert clean_block["export_date"] == "2023-12-31"  # 12 months from 2023-01-01
    assert quality["export_date"] == block["export_date"] == clean_block["export_date"]
    assert block["source"] == "monthly volumes" and block["problem"] is None
    assert block["rule"].startswith("per table, the last date of its last month")
    welfare = block["tables"]["welfare_events"]
    assert welfare["end"] == clean_block["tables"]["welfare_events"]["end"] and welfare["votes"]
    assert welfare["last_date"] == "2026-11-30" and "passed over 2026-11" in welfare["why"]
    manifest = json.loads((tmp_path / "interim" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["export_date"] == "2023-12-31"


def test_a_file_without_read_permission_is_named_with_a_fix(tmp_path):
    """(The table above runs as any user; root reads a chmod 000 file, so this is direct.)"""
    path = tmp_path / "protection_events.csv"
    message = str(read_error(path, "utf-8", PermissionError(13, "Permission denied")))
    assert message.startswith(f"{path}: found but could not be read (PermissionError")
    assert "fix: make it a readable file" in message
