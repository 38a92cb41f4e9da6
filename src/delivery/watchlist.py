"""explanations.parquet + interim identity/children -> data/watchlists/<county_code>/watchlist.{csv,html} + index.html.

Per county, children scored at the snapshot are ranked by calibrated risk (highest first;
equal scores are ordered by child_pid, a keyed hash, so ties are broken reproducibly and
independently of names or registration order). The first `capacity` rows, capacity =
base.children_per_caseworker x the distinct caseworkers of the county's scored children
(`src.delivery.capacity.list_capacity`, the same definition the evaluate stage measures; a
caseworker whose children are all already out adds nothing), sit above a visible cut
line; every other child follows below it. Children already out of a net are listed in a
separate re-engage section with the net(s) they left.

Change vs the previous month (by calibrated probability, absolute difference):
`new` when the child was not on the previous month's list (not in the cohort, already out,
or no previous month), `rising` when the risk grew by >= watchlist.change_threshold,
`falling` when it fell by >= that much, else `same`.

Identity (child_id, name) exists only here. Every value a person typed is escaped in the
HTML (Jinja autoescape) and neutralised against spreadsheet formula injection in the CSV.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from src.atomic import atomic_dir
from src.delivery.capacity import list_capacity
from src.delivery.wording import CSV_COLUMNS, TEXT
from src.errors import SafetynetError
from src.features import catalogue
from src.models.promotion import read_promotion, require_passed
from src.run_facts import read_stage_json
from src.spreadsheet import neutralise_formulas

log = logging.getLogger(__name__)

BANDS = ("low", "medium", "high")
CHANGES = ("new", "rising", "falling", "same")
TEMPLATES = Path(__file__).parent / "templates"

# ----------------------------------------------------------------------------- core


def risk_band(scores: pd.Series, thresholds: tuple[float, ...]) -> pd.Series:
    """low / medium / high: below the first threshold, between, at or above the second."""
    codes = np.searchsorted(np.asarray(thresholds), scores.to_numpy(dtype=float), side="right")
    return pd.Series(np.array(BANDS, dtype=object)[codes], index=scores.index)


def change_markers(current: pd.Series, previous: pd.Series, threshold: float) -> pd.Series:
    """new / rising / falling / same; `previous` is the previous month's score aligned (NaN = not listed)."""
    delta = current - previous
    at_least = (
        threshold - 1e-9
    )  # 0.30 - 0.28 is 0.0199999... in floating point; it counts as 2 points
    marker = np.select(
        [previous.isna(), delta >= at_least, delta <= -at_least],
        ["new", "rising", "falling"],
        "same",
    )
    return pd.Series(marker, index=current.index, dtype=object)


def rank_within_counties(frame: pd.DataFrame) -> pd.DataFrame:
    """Rank by score (desc; ties by child_pid asc) within county; above_cut = rank <= capacity."""
    ranked = frame.sort_values(
        ["county_code", "score", "child_pid"], ascending=[True, False, True], kind="stable"
    )
    ranked = ranked.reset_index(drop=True)
    ranked["rank"] = ranked.groupby("county_code", sort=False).cumcount() + 1
    ranked["above_cut"] = ranked["rank"] <= ranked["capacity"]
    return ranked


def county_capacity(at_risk: pd.DataFrame, per_caseworker: int) -> pd.Series:
    """Capacity per county_code of the snapshot's scored (not already-out) children."""
    return list_capacity(at_risk, per_caseworker, keys=["county_code"])


def join_people(
    explanations: pd.DataFrame, identity: pd.DataFrame, children: pd.DataFrame
) -> pd.DataFrame:
    """Attach child_id, name, county, community and caseworker; every child must be known."""
    places = children[["child_pid", "county_code", "community_code", "caseworker_id"]]
    joined = explanations.merge(places, on="child_pid", how="left", validate="many_to_one")
    joined = joined.merge(
        identity[["child_pid", "child_id", "name"]],
        on="child_pid",
        how="left",
        validate="many_to_one",
    )
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
    dates = sorted(explanations["as_of"].unique())
    if not dates:
        raise SafetynetError("explanations.parquet: no rows; run `dvc repro explain` first")
    snapshot = join_people(explanations[explanations["as_of"] == dates[-1]], identity, children)
    previous = (
        explanations[explanations["as_of"] == dates[-2]]
        if len(dates) > 1
        else explanations.iloc[:0]
    )
    at_risk = snapshot[snapshot["already_out"] == 0].copy()
    capacity = county_capacity(at_risk, params.base.children_per_caseworker)
    at_risk = at_risk.merge(capacity, left_on="county_code", right_index=True, how="left")
    prev_score = previous.loc[previous["already_out"] == 0].set_index("child_pid")["score"]
    at_risk["previous_score"] = at_risk["child_pid"].map(prev_score)
    at_risk["change"] = change_markers(
        at_risk["score"], at_risk["previous_score"], params.watchlist.change_threshold
    )
    at_risk["band"] = risk_band(at_risk["score"], params.watchlist.risk_bands)
    ranked = rank_within_counties(at_risk)
    out = snapshot[snapshot["already_out"] == 1].sort_values(
        ["county_code", "child_pid"], kind="stable"
    )
    summary = (
        pd.DataFrame(
            {
                "n_scored": ranked.groupby("county_code").size(),
                "n_already_out": out.groupby("county_code").size(),
                "caseworkers": county_capacity(at_risk, 1),  # one child each = caseworkers
                "capacity": capacity,
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
    parts = systems.fillna("").str.split("|")
    return parts.map(lambda codes: "、".join(names.get(c, c) for c in codes if c) if language == "zh"
                     else ", ".join(names.get(c, c) for c in codes if c))  # fmt: skip


def joined_reasons(frame: pd.DataFrame, language: str) -> pd.Series:
    columns = sorted(
        c for c in frame.columns if c.startswith("reason_") and c.endswith(f"_{language}")
    )
    reasons = pd.Series("", index=frame.index, dtype=object)
    for column in columns:
        text = frame[column].fillna("").astype(str)
        reasons = reasons + np.where((reasons != "") & (text != ""), "\n", "") + text
    return reasons


def display_table(ranked: pd.DataFrame, out: pd.DataFrame, language: str) -> pd.DataFrame:
    """The watchlist as text cells in CSV_COLUMNS order (plus band/change codes for styling)."""
    text = TEXT[language]
    blank = text["none"]
    listed = pd.DataFrame(
        {
            "section": np.where(ranked["above_cut"], text["sections"]["above_cut"], text["sections"]["below_cut"]),
            "rank": ranked["rank"].astype(str),
            "risk": format_risk(ranked["score"]),
            "band": ranked["band"].map(text["bands"]),
            "change": ranked["change"].map(text["changes"]),
            "reasons": joined_reasons(ranked, language),
            "primary_system": system_label(ranked["primary_system"], language),
            "band_code": ranked["band"], "change_code": ranked["change"],
            "above_cut": ranked["above_cut"], "county_code": ranked["county_code"],
        }
    )  # fmt: skip
    lapsed = pd.DataFrame(
        {
            "section": text["sections"]["already_out"],
            "rank": "", "risk": "", "band": "", "change": "", "band_code": "", "change_code": "",
            "reasons": system_label(out["already_out_net"], language).replace("", blank),
            "primary_system": system_label(out["primary_system"], language),
            "above_cut": False, "county_code": out["county_code"],
        },
        index=out.index,
    )  # fmt: skip
    for table, source in ((listed, ranked), (lapsed, out)):
        table["child_id"] = source["child_id"].astype(str)
        table["name"] = source["name"].fillna("").astype(str)
        table["community"] = source["community_code"].fillna("").astype(str)
        table["caseworker"] = source["caseworker_id"].fillna("").astype(str)
        table["service"] = source[f"service_{language}"].fillna("").astype(str)
        table["review"] = ""
    return pd.concat([listed, lapsed], ignore_index=True)


def csv_bytes(table: pd.DataFrame, language: str) -> bytes:
    """UTF-8 with BOM (Excel opens Chinese correctly), formula-safe cells, CRLF rows."""
    cells = pd.DataFrame({c: neutralise_formulas(table[c].fillna("").astype(str)) for c in CSV_COLUMNS})
    cells.columns = [TEXT[language]["columns"][c] for c in CSV_COLUMNS]
    buffer = io.StringIO()
    cells.to_csv(buffer, index=False, lineterminator="\r\n")
    return buffer.getvalue().encode("utf-8-sig")


# ----------------------------------------------------------------------------- HTML


def template_env():
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def page_context(county: str, rows: pd.DataFrame, summary_row, as_of: str, params) -> dict:
    language = params.watchlist.language
    text = TEXT[language]
    low, high = params.watchlist.risk_bands
    listed = rows[rows["rank"] != ""]
    return {
        "t": text,
        "county": county,
        "as_of": as_of,
        "capacity_text": text["capacity"].format(
            capacity=int(summary_row["capacity"]), per=params.base.children_per_caseworker,
            n=int(summary_row["caseworkers"]),
        ),
        "cut_text": text["cut"].format(capacity=int(summary_row["capacity"])),
        "legend": text["legend"].format(
            low=f"{low:.0%}", high=f"{high:.0%}", thr=f"{100 * params.watchlist.change_threshold:g}"
        ),
        "above": listed[listed["above_cut"]].to_dict("records"),
        "below": listed[~listed["above_cut"]].to_dict("records"),
        "lapsed": rows[rows["rank"] == ""].to_dict("records"),
    }  # fmt: skip


def render_pages(table: pd.DataFrame, summary: pd.DataFrame, params) -> dict[str, str]:
    """county_code -> HTML page, plus 'index' -> the index page."""
    env = template_env()
    page = env.get_template("watchlist.html.j2")
    as_of = summary.attrs["as_of"]
    pages = {}
    for county, rows in table.groupby("county_code", sort=True):
        pages[county] = page.render(
            **page_context(county, rows, summary.loc[county], as_of, params)
        )
    counties = [
        {"county": c, **{k: int(v) for k, v in row.items()}} for c, row in summary.iterrows()
    ]
    pages["index"] = env.get_template("index.html.j2").render(
        t=TEXT[params.watchlist.language], as_of=as_of, counties=counties
    )
    return pages


# ----------------------------------------------------------------------------- I/O


def read_interim(interim_dir: Path, name: str, columns: list[str]) -> pd.DataFrame:
    path = interim_dir / name
    if not path.exists():
        raise SafetynetError(f"{path}: not found; run `dvc repro ingest` first")
    try:
        return pd.read_parquet(path, columns=columns)
    except (KeyError, ValueError) as exc:
        raise SafetynetError(
            f"{path}: missing a column ({exc}); rerun `dvc repro ingest`"
        ) from None


def run(explanations_path, models_dir, served_dir, interim_dir, out_dir, params) -> dict:
    """Write every county's watchlist (CSV + HTML) and the index, replacing out_dir whole.

    Refuses (one line, nothing written) when the model in models/ failed evaluate's gate,
    unless watchlist.allow_failed_gate is true."""
    explanations_path, interim_dir, out_dir = (
        Path(explanations_path),
        Path(interim_dir),
        Path(out_dir),
    )
    decision = read_promotion(Path(models_dir))
    served = read_stage_json(Path(served_dir) / "train_summary.json", "refit")
    if served.get("evaluated_model_digest") != decision["model_digest"]:
        raise SafetynetError(
            f"{served_dir}: the served model was not refitted from the evaluated model in "
            f"{models_dir}; rerun `dvc repro refit`"
        )
    require_passed(decision, params.watchlist.allow_failed_gate)
    if not explanations_path.exists():
        raise SafetynetError(f"{explanations_path}: not found; run `dvc repro explain` first")
    explanations = pd.read_parquet(explanations_path)
    identity = read_interim(interim_dir, "identity.parquet", ["child_pid", "child_id", "name"])
    children = read_interim(
        interim_dir,
        "children.parquet",
        ["child_pid", "county_code", "community_code", "caseworker_id"],
    )
    ranked, out, summary = build_watchlists(explanations, identity, children, params)
    language = params.watchlist.language
    table = display_table(ranked, out, language)
    pages = render_pages(table, summary, params)
    with atomic_dir(out_dir) as tmp:
        for county, rows in table.groupby("county_code", sort=True):
            folder = tmp / str(county)
            folder.mkdir()
            (folder / "watchlist.csv").write_bytes(csv_bytes(rows, language))
            (folder / "watchlist.html").write_text(pages[county], encoding="utf-8")
        (tmp / "index.html").write_text(pages["index"], encoding="utf-8")
    result = {
        "as_of": summary.attrs["as_of"],
        "counties": len(summary),
        "n_scored": int(summary["n_scored"].sum()),
        "n_above_cut": int(ranked["above_cut"].sum()),
        "n_already_out": int(summary["n_already_out"].sum()),
    }
    log.info("watchlist: %s", result)
    return result
