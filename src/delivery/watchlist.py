"""explanations.parquet + contributions.parquet + interim identity/children -> data/watchlists/.

Per county, `data/watchlists/<county_code>/` holds `watchlist.html` (the children above each
child director's cut, grouped by director and village), `watchlist.csv` (every child),
`watchlist.xlsx` (a sheet per director to record review outcomes) and, per director,
`directors/<slug>.{html,csv}` (their printable list: every child of theirs, the cut line,
their already-out children, and a SHAP waterfall per listed child); `index.html` lists the
counties.

Each child director's list: their children scored at the snapshot, ranked by calibrated risk
(highest first; equal scores are ordered by child_pid, a keyed hash, so ties are broken
reproducibly and independently of names or registration order); the first
base.children_per_caseworker sit above the director's cut line
(`src.delivery.capacity.director_cut`). Children without a caseworker_id belong to no
director and are never above a cut. Children already out of a net are listed in a separate
re-engage section with the net(s) they left. Directors and villages are shown by their codes:
the data contract has no lookup table of their names.

Change vs the previous month (by calibrated probability, absolute difference):
`new` when the child was not on the previous month's list (not in the cohort, already out,
or no previous month), `rising` when the risk grew by >= watchlist.change_threshold,
`falling` when it fell by >= that much, else `same`.

Identity (child_id, name) exists only here. Every value a person typed is escaped in the
HTML (Jinja autoescape) and neutralised against spreadsheet formula injection in the CSV and
XLSX.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from src.atomic import atomic_dir
from src.delivery.capacity import director_cut, list_capacity
from src.delivery.pages import render_county, render_director, render_index
from src.delivery.waterfall import CONTRIBUTION_COLUMNS, waterfalls
from src.delivery.wording import CSV_COLUMNS, TEXT, XLSX_COLUMNS
from src.delivery.xlsx import workbook_bytes
from src.errors import SafetynetError
from src.features import catalogue
from src.models.promotion import read_promotion, require_passed
from src.run_facts import read_stage_json
from src.spreadsheet import neutralise_formulas

log = logging.getLogger(__name__)

BANDS = ("low", "medium", "high")
CHANGES = ("new", "rising", "falling", "same")
REQUIRED = ("child_pid", "as_of", "score", "already_out", "already_out_net", "primary_system",
            "service_zh", "service_en")  # fmt: skip
CHILD_COLUMNS = ["child_pid", "county_code", "community_code", "caseworker_id", "sex",
                 "birth_date", "guardian_type", "category"]  # fmt: skip

# ----------------------------------------------------------------------------- core


def risk_band(scores: pd.Series, thresholds: tuple[float, ...]) -> pd.Series:
    """low / medium / high: below the first threshold, between, at or above the second."""
    codes = np.searchsorted(np.asarray(thresholds), scores.to_numpy(dtype=float), side="right")
    return pd.Series(np.array(BANDS, dtype=object)[codes], index=scores.index)


def change_markers(current: pd.Series, previous: pd.Series, threshold: float) -> pd.Series:
    """new / rising / falling / same; `previous` is the previous month's score aligned (NaN = not listed)."""
    delta = current - previous
    at_least = threshold - 1e-9  # 0.30 - 0.28 is 0.0199999... in floating point: 2 points
    marker = np.select(
        [previous.isna(), delta >= at_least, delta <= -at_least],
        ["new", "rising", "falling"],
        "same",
    )
    return pd.Series(marker, index=current.index, dtype=object)


def county_capacity(at_risk: pd.DataFrame, per_caseworker: int) -> pd.Series:
    """Capacity per county_code of the snapshot's scored (not already-out) children."""
    return list_capacity(at_risk, per_caseworker, keys=["county_code"])


def check_explanations(explanations: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in explanations.columns]
    if missing:
        raise SafetynetError(
            f"explanations.parquet: missing column(s) {', '.join(missing)}; rerun `dvc repro explain`"
        )


def join_people(
    explanations: pd.DataFrame, identity: pd.DataFrame, children: pd.DataFrame
) -> pd.DataFrame:
    """Attach child_id, name, county, community, caseworker and context; every child must be known."""
    joined = explanations.merge(children[CHILD_COLUMNS], on="child_pid", how="left", validate="many_to_one")
    joined = joined.merge(identity[["child_pid", "child_id", "name"]], on="child_pid", how="left",
                          validate="many_to_one")  # fmt: skip
    for column, source in (("county_code", "children.parquet"), ("child_id", "identity.parquet")):
        unknown = joined[column].isna()
        if unknown.any():
            raise SafetynetError(
                f"data/interim/{source}: {int(unknown.sum())} explained children have no row (column "
                f"{column}); rerun `dvc repro ingest explain` so both come from the same export"
            )
    return joined


def build_watchlists(
    explanations, identity, children, params
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ranked at-risk rows, already-out rows, per-county summary) for the snapshot as-of."""
    check_explanations(explanations)
    dates = sorted(explanations["as_of"].unique())
    if not dates:
        raise SafetynetError("explanations.parquet: no rows; run `dvc repro explain` first")
    snapshot = join_people(explanations[explanations["as_of"] == dates[-1]], identity, children)
    previous = explanations[explanations["as_of"] == dates[-2]] if len(dates) > 1 else explanations.iloc[:0]
    at_risk = snapshot[snapshot["already_out"] == 0].copy()
    prev_score = previous.loc[previous["already_out"] == 0].set_index("child_pid")["score"]
    at_risk["previous_score"] = at_risk["child_pid"].map(prev_score)
    at_risk["change"] = change_markers(
        at_risk["score"], at_risk["previous_score"], params.watchlist.change_threshold
    )
    at_risk["band"] = risk_band(at_risk["score"], params.watchlist.risk_bands)
    ranked = director_cut(at_risk, params.base.children_per_caseworker)
    ranked["rank"] = ranked["director_rank"]
    out = snapshot[snapshot["already_out"] == 1].sort_values(["county_code", "child_pid"], kind="stable")
    summary = (
        pd.DataFrame(
            {
                "n_scored": ranked.groupby("county_code").size(),
                "n_already_out": out.groupby("county_code").size(),
                "caseworkers": county_capacity(at_risk, 1),  # one child each = caseworkers
                "capacity": county_capacity(at_risk, params.base.children_per_caseworker),
                "n_above_cut": ranked.groupby("county_code")["above_cut"].sum(),
            }
        )
        .fillna(0)
        .astype(int)
        .sort_index()
    )
    summary.attrs["as_of"] = pd.Timestamp(dates[-1]).date().isoformat()
    return ranked, out.reset_index(drop=True), summary


# ----------------------------------------------------------------------------- display


def format_risk(scores: pd.Series) -> pd.Series:
    pct = (scores.to_numpy(dtype=float) * 100).round().astype(int).astype(str)
    return pd.Series(
        np.where(scores.to_numpy() < 0.005, "<1%", np.char.add(pct, "%")), index=scores.index
    )


def system_label(systems: pd.Series, language: str) -> pd.Series:
    names = {code: (zh if language == "zh" else en) for code, (zh, en) in catalogue.SYSTEMS.items()}
    sep = "、" if language == "zh" else ", "
    return systems.fillna("").str.split("|").map(lambda codes: sep.join(names.get(c, c) for c in codes if c))


def joined_reasons(frame: pd.DataFrame, language: str) -> pd.Series:
    """Reasons, one a line; the honest no-reason line when explain found no qualifying reason."""
    columns = sorted(c for c in frame.columns if c.startswith("reason_") and c.endswith(f"_{language}"))
    reasons = pd.Series("", index=frame.index, dtype=object)
    for column in columns:
        text = frame[column].fillna("").astype(str)
        reasons = reasons + np.where((reasons != "") & (text != ""), "\n", "") + text
    if "no_reason" in frame.columns:
        flagged = frame["no_reason"].fillna(0).astype(int).to_numpy() == 1
        reasons = reasons.where(~flagged, TEXT[language]["no_reason"])
    return reasons


def code_label(codes: pd.Series, language: str) -> pd.Series:
    text = codes.fillna("").astype(str)
    if language == "zh":
        return text.map(lambda c: catalogue.CODE_LABELS_ZH.get(c, c))
    return text.str.replace("_", " ")


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


def director_slug(county: pd.Series, caseworker: pd.Series) -> pd.Series:
    """A file-name-safe, stable name for each director's page; `unassigned` without a director."""
    key = county.astype(str) + "\x1f" + caseworker.fillna("").astype(str)
    slugs = key.map(lambda k: "d-" + hashlib.sha256(k.encode()).hexdigest()[:12])
    return slugs.where(caseworker.notna(), "unassigned")


def display_table(ranked: pd.DataFrame, out: pd.DataFrame, language: str, as_of: str) -> pd.DataFrame:
    """The watchlist as text cells (CSV_COLUMNS, plus codes and keys for the pages)."""
    text = TEXT[language]
    sections = np.where(ranked["above_cut"], text["sections"]["above_cut"], text["sections"]["below_cut"])
    listed = pd.DataFrame(
        {
            "section": sections, "rank": ranked["rank"].astype(str), "risk": format_risk(ranked["score"]),
            "band": ranked["band"].map(text["bands"]), "change": ranked["change"].map(text["changes"]),
            "reasons": joined_reasons(ranked, language),
            "primary_system": system_label(ranked["primary_system"], language),
            "band_code": ranked["band"], "change_code": ranked["change"], "above_cut": ranked["above_cut"],
        }
    )  # fmt: skip
    lapsed = pd.DataFrame(
        {
            "section": text["sections"]["already_out"], "rank": "", "risk": "", "band": "", "change": "",
            "band_code": "", "change_code": "", "above_cut": False,
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
        table["community"] = source["community_code"].fillna("").astype(str)
        table["caseworker"] = source["caseworker_id"].fillna(text["unassigned"]).astype(str)
        table["director"] = director_slug(source["county_code"], source["caseworker_id"])
        table["service"] = source[f"service_{language}"].fillna("").astype(str)
        for column, values in context_cells(source, pd.Timestamp(as_of), language).items():
            table[column] = values
        table["review"] = table["review_date"] = table["review_note"] = ""
    return pd.concat([listed, lapsed], ignore_index=True)


def csv_cells(table: pd.DataFrame, language: str) -> pd.DataFrame:
    """CSV_COLUMNS as formula-safe text under their headings (neutralised once per county)."""
    cells = pd.DataFrame({c: neutralise_formulas(table[c].fillna("").astype(str)) for c in CSV_COLUMNS})
    cells.columns = [TEXT[language]["columns"][c] for c in CSV_COLUMNS]
    return cells


def csv_bytes(cells: pd.DataFrame) -> bytes:
    """UTF-8 with BOM (Excel opens Chinese correctly), CRLF rows."""
    buffer = io.StringIO()
    cells.to_csv(buffer, index=False, lineterminator="\r\n")
    return buffer.getvalue().encode("utf-8-sig")


def xlsx_bytes(rows: pd.DataFrame, language: str, as_of: str) -> bytes:
    """A sheet per director: their visit list and their already-out children (rows needing a review)."""
    keep = rows[rows["above_cut"] | (rows["rank"] == "")]
    sheets = {name: group for name, group in keep.groupby("caseworker", sort=True)}
    headers = {c: TEXT[language]["columns"][c] for c in XLSX_COLUMNS}
    return workbook_bytes(sheets, headers, language, pd.Timestamp(as_of).date())


# ----------------------------------------------------------------------------- I/O


def read_interim(interim_dir: Path, name: str, columns: list[str]) -> pd.DataFrame:
    path = interim_dir / name
    if not path.exists():
        raise SafetynetError(f"{path}: not found; run `dvc repro ingest` first")
    try:
        return pd.read_parquet(path, columns=columns)
    except (KeyError, ValueError) as exc:
        raise SafetynetError(f"{path}: missing a column ({exc}); rerun `dvc repro ingest`") from None


def read_contributions(path: Path, pids: list[str]) -> pd.DataFrame:
    """The contributions rows of the listed children only."""
    if not path.exists():
        raise SafetynetError(f"{path}: not found; run `dvc repro explain` first")
    try:
        return pd.read_parquet(path, columns=list(CONTRIBUTION_COLUMNS), filters=[("child_pid", "in", pids)])
    except (KeyError, ValueError) as exc:
        raise SafetynetError(f"{path}: missing a column ({exc}); rerun `dvc repro explain`") from None


def check_served(models_dir: Path, served_dir: Path, params) -> None:
    decision = read_promotion(models_dir)
    served = read_stage_json(served_dir / "train_summary.json", "refit")
    if served.get("evaluated_model_digest") != decision["model_digest"]:
        raise SafetynetError(
            f"{served_dir}: the served model was not refitted from the evaluated model in "
            f"{models_dir}; rerun `dvc repro refit`"
        )
    require_passed(decision, params.watchlist.allow_failed_gate)


def write_county(folder: Path, rows: pd.DataFrame, summary_row, charts: dict, as_of: str, params) -> None:
    language = params.watchlist.language
    folder.mkdir()
    (folder / "directors").mkdir()
    cells = csv_cells(rows, language)
    (folder / "watchlist.csv").write_bytes(csv_bytes(cells))
    (folder / "watchlist.xlsx").write_bytes(xlsx_bytes(rows, language, as_of))
    (folder / "watchlist.html").write_text(render_county(rows, summary_row, as_of, params), encoding="utf-8")
    for slug, mine in rows.groupby("director", sort=True):
        (folder / "directors" / f"{slug}.csv").write_bytes(csv_bytes(cells.loc[mine.index]))
        page = render_director(mine, summary_row.name, charts, as_of, params)
        (folder / "directors" / f"{slug}.html").write_text(page, encoding="utf-8")


def run(explanations_path, contributions_path, models_dir, served_dir, interim_dir, out_dir, params) -> dict:
    """Write every county's watchlists (CSV, XLSX, HTML, per director) and the index, replacing out_dir whole.

    Refuses (one line, nothing written) when the model in models/ failed evaluate's gate,
    unless watchlist.allow_failed_gate is true."""
    explanations_path, interim_dir, out_dir = Path(explanations_path), Path(interim_dir), Path(out_dir)
    check_served(Path(models_dir), Path(served_dir), params)
    if not explanations_path.exists():
        raise SafetynetError(f"{explanations_path}: not found; run `dvc repro explain` first")
    explanations = pd.read_parquet(explanations_path)
    identity = read_interim(interim_dir, "identity.parquet", ["child_pid", "child_id", "name"])
    children = read_interim(interim_dir, "children.parquet", CHILD_COLUMNS)
    ranked, out, summary = build_watchlists(explanations, identity, children, params)
    language, as_of = params.watchlist.language, summary.attrs["as_of"]
    listed = ranked.loc[ranked["above_cut"], "child_pid"].tolist()
    charts = waterfalls(read_contributions(Path(contributions_path), listed), language)
    table = display_table(ranked, out, language, as_of)
    with atomic_dir(out_dir) as tmp:
        for county, rows in table.groupby("county_code", sort=True):
            write_county(tmp / str(county), rows, summary.loc[county], charts, as_of, params)
        (tmp / "index.html").write_text(render_index(summary, params), encoding="utf-8")
    result = {
        "as_of": as_of, "counties": len(summary), "n_scored": int(summary["n_scored"].sum()),
        "n_above_cut": int(ranked["above_cut"].sum()), "n_already_out": int(summary["n_already_out"].sum()),
        "n_waterfalls": len(charts),
    }  # fmt: skip
    log.info("watchlist: %s", result)
    return result
