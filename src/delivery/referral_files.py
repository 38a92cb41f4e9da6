"""A county's referral files: one plan for the child directors, one file per provider.

`<county>/referrals.{csv,xlsx}`: every need of the county's listed children (DIRECTOR_COLUMNS),
the XLSX with a sheet per child director. `<county>/providers/<slug>.{csv,xlsx}`: one provider's
own referred children only, with the minimum it needs (PROVIDER_COLUMNS): the child's name and
village, the child director to call (name and phone; the contract holds no guardian contact),
the need and the reasons shown. A provider's slug is its id when that is file-name safe, else a
hash of it. Every cell has control characters escaped and formulas neutralised
(`src.spreadsheet`); the XLSX is deterministic (`src.delivery.xlsx`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd

from src.data import service_vocabulary as vocabulary
from src.delivery.display import joined_reasons, named
from src.delivery.fragments import csv_header, csv_lines
from src.delivery.matching import UNMET
from src.delivery.referral_plan import WORDS
from src.delivery.xlsx import cell_widths, column_widths, rows_workbook
from src.spreadsheet import escape_controls, neutralise_formulas

HEADINGS = {
    "zh": {"child_id": "儿童编号", "name": "姓名", "village": "村（社区）", "caseworker": "儿童主任",
           "phone": "儿童主任电话", "need": "需求顺序", "service": "服务", "reasons": "主要原因",
           "provider": "服务机构", "contact": "机构联系方式", "status": "状态"},
    "en": {"child_id": "child_id", "name": "name", "village": "village", "caseworker": "child director",
           "phone": "director phone", "need": "need", "service": "service", "reasons": "reasons",
           "provider": "provider", "contact": "provider contact", "status": "status"},
}  # fmt: skip
STATUS = {"zh": ("已匹配", "待上报"), "en": ("matched", "escalate")}
NEED = {"zh": ("主要", "次要"), "en": ("primary", "secondary")}
DIRECTOR_COLUMNS = ["child_id", "name", "village", "caseworker", "need", "service", "reasons", "provider",
                    "contact", "status"]  # fmt: skip
PROVIDER_COLUMNS = ["name", "village", "caseworker", "phone", "service", "reasons"]
SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def provider_slug(provider_id: str) -> str:
    if SAFE_ID.fullmatch(provider_id):
        return provider_id
    return "p-" + hashlib.sha256(provider_id.encode("utf-8")).hexdigest()[:12]


def referral_cells(plan: pd.DataFrame, listed: pd.DataFrame, names: dict, language: str) -> pd.DataFrame:
    """The text cells of `plan`'s rows (DIRECTOR_COLUMNS + phone), formula-safe, in plan order."""
    people = listed.set_index("child_pid").loc[plan["child_pid"]]
    empty = pd.Series(dtype=object)
    matched = plan["provider_id"].ne(UNMET).to_numpy()
    caseworker, _ = named(people["caseworker_id"].astype(object).where(people["caseworker_id"].notna()),
                          names.get("caseworker", empty))  # fmt: skip
    phones = names.get("phone", empty).dropna().astype(str)
    cells = pd.DataFrame({
        "child_id": people["child_id"].to_numpy(), "name": people["name"].fillna("").to_numpy(),
        "village": named(people["community_code"].astype(object), names.get("community", empty))[0].to_numpy(),
        "caseworker": caseworker.to_numpy(), "phone": people["caseworker_id"].map(phones).fillna("").to_numpy(),
        "need": [NEED[language][min(int(r), 1)] for r in plan["need_rank"]],
        "service": plan["service_code"].map(lambda c: vocabulary.wording(c, language)).to_numpy(),
        "reasons": joined_reasons(people, language).str.replace("\n", WORDS[language]["sep"]).to_numpy(),
        "provider": plan["provider_name"].where(matched, WORDS[language]["escalate"]).to_numpy(),
        "contact": plan["provider_contact"].fillna("").to_numpy(),
        "status": [STATUS[language][0 if m else 1] for m in matched],
    }, index=plan.index)  # fmt: skip
    return cells.apply(lambda c: neutralise_formulas(escape_controls(c.fillna("").astype(str))))


def _write(folder: Path, stem: str, cells: pd.DataFrame, widths: pd.DataFrame, columns: list[str],
           sheets: pd.Series, language: str, as_of: str) -> None:  # fmt: skip
    """`stem`.csv and `stem`.xlsx of `cells` (neutralised text; `widths`: each cell's display width)."""
    headers = {c: HEADINGS[language][c] for c in columns}
    text = "\ufeff" + csv_header(headers.values()) + "".join(csv_lines(cells[columns]))
    (folder / f"{stem}.csv").write_bytes(text.encode("utf-8"))
    rows = cells[columns].to_numpy(dtype=object)
    groups = cells.groupby(sheets.to_numpy()).indices
    by_sheet = {str(name): rows[groups[name]].tolist() for name in sorted(groups)}
    sized = column_widths(widths[columns].max().tolist(), list(headers.values()))
    (folder / f"{stem}.xlsx").write_bytes(rows_workbook(by_sheet, headers, sized, language, pd.Timestamp(as_of).date()))


def write_county(folder: Path, plan: pd.DataFrame, listed: pd.DataFrame, names: dict, as_of: str,
                 language: str) -> None:  # fmt: skip
    """`folder`/referrals.{csv,xlsx} and providers/<slug>.{csv,xlsx} of one county's plan rows."""
    cells = referral_cells(plan, listed, names, language)
    widths = pd.DataFrame({c: cell_widths(cells[c]) for c in cells.columns}, index=cells.index)
    folder.mkdir()
    _write(folder, "referrals", cells, widths, DIRECTOR_COLUMNS, cells["caseworker"], language, as_of)
    matched = plan["provider_id"].ne(UNMET)
    if matched.any():
        (folder / "providers").mkdir()
    for provider_id, rows in plan[matched].groupby("provider_id", sort=True).groups.items():
        mine = cells.loc[rows]
        _write(folder / "providers", provider_slug(str(provider_id)), mine, widths.loc[rows], PROVIDER_COLUMNS,
               pd.Series("referrals", index=mine.index), language, as_of)  # fmt: skip
