"""data/linkage + data/interim department records -> data/screening/<county>/screening.{csv,xlsx,html}, reports/screening.json.

Screening for children the registry does not list (摸排): a linked child (src.linkage.linkage)
with no registry record whose department records meet a rule of src.linkage.screening_rules
goes to the list of the county of their records, for the child director to verify and
register. The lists carry identity (name, ID number, the departments' ids, so that the
director can find the child); reports/screening.json carries counts only, per rule and county.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import jinja2
import pandas as pd

from src.atomic import atomic_dir, write_json
from src.delivery.xlsx import workbook_bytes
from src.linkage import screening_rules
from src.linkage.linkage import LINKED_FILE
from src.spreadsheet import neutralise_formulas

log = logging.getLogger(__name__)

HEADERS = {
    "zh": {"screening_id": "摸排编号", "name": "姓名", "sex": "性别", "birth_date": "出生日期",
           "id_number": "身份证号", "county_code": "县（区）", "rules": "符合的困境情形",
           "records": "部门记录", "review": "核实结果", "review_date": "核实日期", "review_note": "备注"},
    "en": {"screening_id": "screening id", "name": "name", "sex": "sex", "birth_date": "birth date",
           "id_number": "ID number", "county_code": "county", "rules": "circumstances met",
           "records": "department records", "review": "verification", "review_date": "date",
           "review_note": "note"},
}  # fmt: skip
TITLE = {
    "zh": "困境儿童摸排名单（未在登记系统中）",
    "en": "Screening list: children not in the registry",
}
PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ title }} {{ county }}</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;white-space:pre-line}</style>
</head><body><h1>{{ title }}: {{ county }}</h1><p>{{ as_of }}</p>
<table><thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></body></html>
"""
)


def rules_met(events: pd.DataFrame, rules=screening_rules.RULES) -> pd.DataFrame:
    """child_pid x rule code: True where the child's events (child_pid, event_type, amount_cny) meet the rule."""
    per = events.groupby(["child_pid", "event_type"])["amount_cny"].agg(["size", "sum"])
    n, total = per["size"].unstack(fill_value=0), per["sum"].unstack(fill_value=0)
    met = pd.DataFrame(index=n.index)
    for rule in rules:
        ok = pd.Series(True, index=n.index)
        for c in rule.all_of:
            ok &= n.get(c.event_type, 0) > 0
            if c.min_amount_cny is not None:
                ok &= total.get(c.event_type, 0) >= c.min_amount_cny
        met[rule.code] = ok
    return met


def screen(
    linked: pd.DataFrame, persons: pd.DataFrame, events: pd.DataFrame, since: pd.Timestamp
) -> pd.DataFrame:
    """One row per unregistered child meeting a rule: child_pid, rule codes and identity."""
    key = linked.set_index("unique_id")
    uid = events["source"] + ":" + events["source_person_id"]
    recent = events.assign(
        child_pid=uid.map(key["child_pid"]), registered=uid.map(key["registered"])
    )
    recent = recent.loc[(recent["event_date"] >= since) & recent["registered"].eq(False)]
    met = rules_met(recent)
    met = met.loc[met.any(axis=1)]
    codes = met.apply(lambda row: [c for c in met.columns if row[c]], axis=1)
    people = persons.assign(unique_id=persons["source"] + ":" + persons["source_person_id"])
    people = people.assign(child_pid=people["unique_id"].map(key["child_pid"]))
    people = people.loc[people["child_pid"].isin(met.index)]
    # the record shown: one with an ID number first, then the smallest record id
    people = people.assign(no_id=people["id_number"].isna()).sort_values(
        ["child_pid", "no_id", "unique_id"]
    )
    shown = people.groupby("child_pid").first()
    records = people.groupby("child_pid")["unique_id"].agg(lambda s: "\n".join(sorted(s)))
    out = shown[["name", "sex", "birth_date", "id_number", "county_code"]].assign(
        rules=codes.reindex(shown.index), records=records.reindex(shown.index)
    )
    return out.reset_index().sort_values(["county_code", "child_pid"], ignore_index=True)


def list_frame(screened: pd.DataFrame, language: str) -> pd.DataFrame:
    """The list as the director reads it: wording of the rules, empty verification columns."""
    wording = {r.code: getattr(r, language) for r in screening_rules.RULES}
    frame = screened.assign(
        screening_id=screened["child_pid"].str[:12],
        birth_date=pd.to_datetime(screened["birth_date"]).dt.strftime("%Y-%m-%d"),
        rules=screened["rules"].map(lambda codes: "\n".join(wording[c] for c in codes)),
        review="",
        review_date="",
        review_note="",
    )
    return frame[list(HEADERS[language])].fillna("").astype(str)


def counts(screened: pd.DataFrame, unregistered: int) -> dict:
    """reports/screening.json: counts per rule and per county, no identity."""
    exploded = screened.explode("rules")
    return {
        "unregistered_linked_children": unregistered,
        "screened": len(screened),
        "by_rule": {
            r.code: int((exploded["rules"] == r.code).sum()) for r in screening_rules.RULES
        },
        "by_county": screened["county_code"].value_counts().sort_index().to_dict(),
        "rules": {r.code: {"zh": r.zh, "en": r.en} for r in screening_rules.RULES},
    }


def write_lists(out: Path, frame: pd.DataFrame, language: str, as_of: dt.date) -> None:
    headers = HEADERS[language]
    for county, part in frame.groupby("county_code", sort=True):
        folder = out / str(county)
        folder.mkdir()
        cells = part.apply(neutralise_formulas)
        cells.rename(columns=headers).to_csv(
            folder / "screening.csv", index=False, encoding="utf-8-sig", lineterminator="\n"
        )
        (folder / "screening.xlsx").write_bytes(
            workbook_bytes({str(county): part}, headers, language, as_of)
        )
        html = PAGE.render(lang=language, title=TITLE[language], county=county, as_of=as_of.isoformat(),
                           headers=list(headers.values()), rows=part.to_numpy().tolist())  # fmt: skip
        (folder / "screening.html").write_text(html, encoding="utf-8")


def run(interim_dir, linkage_dir, out_dir, report_path, params) -> dict:
    interim_dir = Path(interim_dir)
    as_of = dt.date.fromisoformat(
        json.loads((interim_dir / "manifest.json").read_text())["export_date"]
    )
    linked = pd.read_parquet(Path(linkage_dir) / LINKED_FILE)
    paths = [interim_dir / f"{t}.parquet" for t in ("persons", "department_events")]
    if all(p.exists() for p in paths):
        persons, events = (pd.read_parquet(p) for p in paths)
        since = pd.Timestamp(as_of) - pd.Timedelta(days=params.screening.lookback_days)
        screened = screen(linked, persons, events, since)
    else:  # no department exported anything: nobody to screen
        screened = pd.DataFrame(columns=["child_pid", "county_code", "rules"])
    unregistered = int(linked.loc[~linked["registered"], "child_pid"].nunique())
    with atomic_dir(out_dir) as tmp:
        if len(screened):
            write_lists(
                tmp,
                list_frame(screened, params.screening.language),
                params.screening.language,
                as_of,
            )
    report = counts(screened, unregistered)
    write_json(report_path, report)
    log.info("screening: %s children to verify", len(screened))
    return report
