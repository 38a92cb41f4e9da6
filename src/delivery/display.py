"""The watchlist as text: every child's cells (risk, band, change, reasons, context, director) in words.

Pure and vectorised over the whole province: a text rule that depends on one value (a
system's name, a code's label, a director's page name, a director's or village's name from
the contract's optional lookups) runs once per distinct value, not once per child.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from src.delivery.review_loop import FLAGS as REVIEW_FLAGS
from src.delivery.review_loop import list_ref
from src.delivery.services import referred_codes
from src.delivery.wording import TEXT
from src.features import catalogue
from src.spreadsheet import neutralise_formulas, printable

# The optional lookups (data/interim/<table>.parquet): what a name labels -> (table, key column).
LOOKUPS = {"caseworker": ("caseworkers", "caseworker_id"), "community": ("communities", "community_code")}


def per_distinct(values: pd.Series, rule) -> pd.Series:
    """`rule(value)` for each value of `values` (text; missing as ""), computed once per distinct value."""
    codes, uniques = pd.factorize(values.fillna("").astype(str).to_numpy(dtype=object))
    mapped = np.array([rule(u) for u in uniques] or [""], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def format_risk(scores: pd.Series) -> pd.Series:
    pct = (scores.to_numpy(dtype=float) * 100).round().astype(int).astype(str)
    return pd.Series(
        np.where(scores.to_numpy() < 0.005, "<1%", np.char.add(pct, "%")), index=scores.index
    )


def system_label(systems: pd.Series, language: str) -> pd.Series:
    names = {code: (zh if language == "zh" else en) for code, (zh, en) in catalogue.SYSTEMS.items()}
    sep = "、" if language == "zh" else ", "
    return per_distinct(systems, lambda text: sep.join(names.get(c, c) for c in text.split("|") if c))


def joined_reasons(frame: pd.DataFrame, language: str) -> pd.Series:
    """Reasons, one a line; the honest no-reason line when explain found no qualifying reason."""
    columns = sorted(c for c in frame.columns if c.startswith("reason_") and c.endswith(f"_{language}"))
    texts = [frame[c].fillna("").astype(str).tolist() for c in columns]
    reasons = pd.Series(["\n".join(t for t in row if t) for row in zip(*texts, strict=True)] if texts
                        else [""] * len(frame), index=frame.index, dtype=object)  # fmt: skip
    if "no_reason" in frame.columns:
        flagged = frame["no_reason"].fillna(0).astype(int).to_numpy() == 1
        reasons = reasons.where(~flagged, TEXT[language]["no_reason"])
    return reasons


def code_label(codes: pd.Series, language: str) -> pd.Series:
    if language == "zh":
        return per_distinct(codes, lambda c: catalogue.CODE_LABELS_ZH.get(c, c))
    return per_distinct(codes, lambda c: c.replace("_", " "))


def context_cells(source: pd.DataFrame, as_of: pd.Timestamp, language: str) -> dict[str, pd.Series]:
    """age (whole years at the snapshot), sex, guardian, category and the exposure context line."""
    birth = pd.to_datetime(source["birth_date"])
    before_birthday = (birth.dt.month * 100 + birth.dt.day) > (as_of.month * 100 + as_of.day)
    age = (as_of.year - birth.dt.year - before_birthday.astype(int)).astype("Int64").astype(str)
    context = source[f"context_{language}"] if f"context_{language}" in source else pd.Series("", index=source.index)
    return {
        "age": age.replace("<NA>", ""),
        "sex": source["sex"].map(TEXT[language]["sexes"]).fillna(""),
        "guardian": code_label(source["guardian_type"], language),
        "category": code_label(source["category"], language),
        "context": context.fillna("").astype(str),
    }


def named(codes: pd.Series, names: pd.Series) -> tuple[pd.Series, pd.Series]:
    """("name (code)" where `names` (code -> name) has the code, else the code; whether it did).

    Once per distinct code; control characters in a name are escaped (`printable`), so no
    page, CSV or sheet can be broken by one. Missing codes stay "" (not named)."""
    lookup = names.dropna().astype(str).to_dict()
    labels = per_distinct(codes, lambda c: f"{printable(lookup[c])} ({c})" if c in lookup else c)
    return labels, codes.isin(list(lookup)) & codes.notna()


def director_slug(county: pd.Series, caseworker: pd.Series) -> pd.Series:
    """A file-name-safe, stable name for each director's page; `unassigned` without a director."""
    key = county.astype(str) + "\x1f" + caseworker.fillna("").astype(str)
    slugs = per_distinct(key, lambda k: "d-" + hashlib.sha256(k.encode()).hexdigest()[:12])
    return slugs.where(caseworker.notna(), "unassigned")


def display_table(ranked: pd.DataFrame, out: pd.DataFrame, language: str, as_of: str,
                  names: dict[str, pd.Series] | None = None) -> pd.DataFrame:  # fmt: skip
    """The watchlist as text cells (CSV_COLUMNS, plus codes and keys for the pages): the ranked
    children in `ranked`'s order, then the already-out children in `out`'s order.

    `names`: code -> name per `LOOKUPS` label ("caseworker", "community") and "phone"
    (caseworker_id -> phone); directors and villages without one are shown by their code."""
    text, names = TEXT[language], names or {}
    empty = pd.Series(dtype=object)
    phones = names.get("phone", empty).dropna().astype(str).to_dict()
    sections = np.where(ranked["above_cut"], text["sections"]["above_cut"], text["sections"]["below_cut"])
    flags = ranked["review_flag"].to_numpy(dtype=object) if "review_flag" in ranked else np.full(len(ranked), "")
    sections = np.select([flags == f for f in REVIEW_FLAGS], [text["sections"][f] for f in REVIEW_FLAGS], sections)
    listed = pd.DataFrame(
        {
            "section": sections, "rank": ranked["rank"].astype(str), "risk": format_risk(ranked["score"]),
            "band": ranked["band"].map(text["bands"]), "change": ranked["change"].map(text["changes"]),
            "reasons": joined_reasons(ranked, language),
            "primary_system": system_label(ranked["primary_system"], language),
            "band_code": ranked["band"], "change_code": ranked["change"], "above_cut": ranked["above_cut"],
            "review_flag": flags,
        }
    )  # fmt: skip
    lapsed = pd.DataFrame(
        {
            "section": text["sections"]["already_out"], "rank": "", "risk": "", "band": "", "change": "",
            "band_code": "", "change_code": "", "above_cut": False, "review_flag": "",
            "reasons": system_label(out["already_out_net"], language).replace("", text["none"]),
            "primary_system": system_label(out["primary_system"], language),
        },
        index=out.index,
    )  # fmt: skip
    for table, source in ((listed, ranked), (lapsed, out)):
        table["county_code"] = source["county_code"].astype(str)
        table["child_pid"] = source["child_pid"].astype(str)
        table["anchor"] = "c-" + table["child_pid"].str[:16]
        table["child_id"] = source["child_id"].astype(str)
        table["name"] = source["name"].fillna("").astype(str)
        for label, (_, key) in LOOKUPS.items():
            codes = source[key].astype(object).where(source[key].notna())
            table[f"{label}_code"] = codes
            table[label], table[f"{label}_named"] = named(codes, names.get(label, empty))
        table["caseworker"] = table["caseworker"].where(source["caseworker_id"].notna(), text["unassigned"])
        table["phone"] = per_distinct(source["caseworker_id"], lambda c: printable(phones.get(c, "")))
        table["director"] = director_slug(source["county_code"], source["caseworker_id"])
        table["service"] = source[f"service_{language}"].fillna("").astype(str)
        for column, values in context_cells(source, pd.Timestamp(as_of), language).items():
            table[column] = values
        table["review"] = table["review_date"] = table["review_note"] = table["next_review_date"] = ""
        table["list_date"], table["list_ref"] = as_of, list_ref(table["child_pid"], as_of)
        table["caseworker_id"] = source["caseworker_id"].fillna("").astype(str)
        systems = source["systems"] if "systems" in source else pd.Series("", index=source.index)
        table["service_codes"] = per_distinct(systems, lambda v: "|".join(referred_codes(v)))
        table["provider_id"] = ""
    return pd.concat([listed, lapsed], ignore_index=True)


def names_notes(table: pd.DataFrame, language: str) -> dict[str, str]:
    """Per county, the legend's line saying how directors and villages are shown: all by
    name (code), some of them (how many by code only), or all by code."""
    text = TEXT[language]
    notes: dict[str, list[str]] = {str(c): [] for c in table["county_code"].unique()}
    for label in LOOKUPS:
        shown = table.loc[table[f"{label}_code"].notna(), ["county_code", f"{label}_code", f"{label}_named"]]
        counts = shown.drop_duplicates(["county_code", f"{label}_code"]).groupby("county_code")[f"{label}_named"]
        named_n, total = counts.sum(), counts.size()
        what = text["lookup_what"][label]
        for county in notes:
            n, of = int(named_n.get(county, 0)), int(total.get(county, 0))
            state = "named_none" if n == 0 else "named_all" if n == of else "named_some"
            notes[county].append(text[state].format(what=what, n=of - n))
    return {county: " ".join(lines) for county, lines in notes.items()}


def neutralised(table: pd.DataFrame, columns) -> pd.DataFrame:
    """`columns` of `table` as formula-safe text (the CSV and XLSX cells), neutralised once for all rows."""
    return pd.DataFrame({c: neutralise_formulas(table[c].fillna("").astype(str)).astype(object) for c in columns},
                        index=table.index)  # fmt: skip
