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
re-engage section with the net(s) they left. Directors and villages are shown as "name (code)"
where the export's optional lookups (contract tables `caseworkers`, `communities`, in
data/interim) name them, by their code otherwise; each page's legend says which.

Change vs the previous month (by calibrated probability, absolute difference):
`new` when the child was not on the previous month's list (not in the cohort, already out,
or no previous month), `rising` when the risk grew by >= watchlist.change_threshold,
`falling` when it fell by >= that much, else `same`.

Identity (child_id, name; the directors' names and phones) exists only here. Every value a person typed is escaped in the
HTML (markupsafe, as Jinja's autoescape) and neutralised against spreadsheet formula
injection in the CSV and XLSX.

Speed: the whole province is turned into text once (`display`, `neutralised`) and every
row's HTML and CSV line is built once (`fragments`); each county's and director's files are
joins of those strings (`director_groups` gives each director's rows in table order), so
the stage is one pass over the rows plus one small write per file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from src.atomic import atomic_dir
from src.delivery import fragments, review_loop
from src.delivery.capacity import director_cut, list_capacity
from src.delivery.contributions import COLUMNS as CONTRIBUTION_COLUMNS
from src.delivery.display import LOOKUPS, display_table, names_notes, neutralised
from src.delivery.pages import render_county, render_director, render_index, village_rows
from src.delivery.referral_plan import watchlist_services
from src.delivery.waterfall import svg_charts
from src.delivery.wording import CSV_COLUMNS, TEXT, XLSX_COLUMNS
from src.delivery.xlsx import cell_widths, column_widths, rows_workbook
from src.errors import SafetynetError
from src.models.promotion import read_promotion, require_passed
from src.run_facts import read_monitoring_alerts, read_stage_json

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
    explanations, identity, children, params, reviews=None, export_date=None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ranked at-risk rows, already-out rows, per-county summary) for the snapshot as-of.

    With `reviews` (casework_reviews without notes) and the export date, the reviews shape the
    lists (`review_loop`: cooldown, escalation, follow-up due; summary.attrs["coverage"])."""
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
    reviews = review_loop.empty_reviews() if reviews is None else reviews
    w, per = params.watchlist, params.base.children_per_caseworker
    at_risk = at_risk.join(review_loop.review_flags(at_risk, reviews, export_date or dates[-1], w.cooldown_days,
                                                    w.cooldown_override))  # fmt: skip
    ranked = director_cut(at_risk, per)
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
    before = at_risk.dropna(subset=["previous_score"]).drop(columns=["score", "review_priority"])
    summary.attrs["coverage"] = review_loop.coverage(director_cut(before.rename(columns={"previous_score": "score"}),
                                                                  per), reviews, export_date or dates[-1])  # fmt: skip
    return ranked, out.reset_index(drop=True), summary


# ----------------------------------------------------------------------------- display


def director_groups(table: pd.DataFrame) -> dict[str, list[tuple[str, np.ndarray]]]:
    """county -> [(director slug, row positions in table order)], both sorted."""
    groups = table.groupby(["county_code", "director"], sort=True).indices
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for (county, slug), rows in groups.items():
        out.setdefault(str(county), []).append((str(slug), rows))
    return out


def xlsx_rows(table: pd.DataFrame, cells: pd.DataFrame, language: str) -> tuple[pd.Series, pd.DataFrame]:
    """The XLSX rows (above the cut, follow-up due, or already out) as neutralised text, and each county's widest cell per column."""
    keep = (table["above_cut"].to_numpy(dtype=bool) | (table["rank"] == "").to_numpy()
            | (table["review_flag"] == "follow_up").to_numpy())  # fmt: skip
    kept = cells.loc[keep, list(XLSX_COLUMNS)]
    widths = pd.DataFrame({c: cell_widths(kept[c]) for c in XLSX_COLUMNS}, index=kept.index)
    widest = widths.groupby(table.loc[keep, "county_code"].to_numpy()).max()
    return pd.Series(keep, index=table.index), widest


class Fragments:
    """Every row's HTML and CSV text (`fragments`), as lists indexed by table position."""

    def __init__(self, table: pd.DataFrame, charts: dict[str, str], language: str):
        text = TEXT[language]
        listed = (table["rank"] != "").to_numpy()
        above = table["above_cut"].to_numpy(dtype=bool)
        self.cells = fragments.child_cells(table)
        self.lapsed = [""] * len(table)
        for i, html in zip(np.flatnonzero(~listed).tolist(), fragments.lapsed_rows(table[~listed]), strict=True):
            self.lapsed[i] = html
        self.explanations = [""] * len(table)
        for i, html in zip(np.flatnonzero(above).tolist(), fragments.explanations(table[above], charts, text),
                           strict=True):  # fmt: skip
            self.explanations[i] = html
        self.child_id, self.anchor = fragments.escaped(table["child_id"]), fragments.escaped(table["anchor"])
        self.community, self.child_ids = table["community"].tolist(), table["child_id"].tolist()
        self.rank = [int(r or 0) for r in table["rank"].tolist()]
        self.listed, self.above = listed.tolist(), above.tolist()
        self.flag, self.caseworker_id = table["review_flag"].tolist(), table["caseworker_id"].tolist()
        self.caseworker, self.phone = table["caseworker"].tolist(), table["phone"].tolist()
        self.names_note = names_notes(table, language)
        self.link_text = str(escape(text["explain_link"]))

    def row(self, i: int, where: str, link: str = "") -> str:
        return fragments.child_row(self.cells[i], self.child_id[i], where, link and f"{link}#{self.anchor[i]}",
                                   self.link_text)  # fmt: skip

    def village_order(self, rows: list[int]) -> list[int]:
        """`rows` by village code, rank, child_id (the order of a list grouped by village)."""
        return sorted(rows, key=lambda i: (self.community[i], self.rank[i], self.child_ids[i]))

    def villages(self, ordered: list[int], where: str, link: str, text: dict) -> Markup:
        """Village heading rows, each followed by its children's rows (`ordered` by village_order)."""
        return village_rows([(self.community[i], self.row(i, where, link)) for i in ordered], text)


# ----------------------------------------------------------------------------- I/O


def read_interim(interim_dir: Path, name: str, columns: list[str]) -> pd.DataFrame:
    path = interim_dir / name
    if not path.exists():
        raise SafetynetError(f"{path}: not found; run `dvc repro ingest` first")
    try:
        return pd.read_parquet(path, columns=columns)
    except (KeyError, ValueError) as exc:
        raise SafetynetError(f"{path}: missing a column ({exc}); rerun `dvc repro ingest`") from None


def read_names(interim_dir: Path) -> dict[str, pd.Series]:
    """code -> name from each optional lookup ingest wrote (none: codes are shown), and the
    directors' phones; a lookup is read whole, it has one row per director or village."""
    names = {}
    for label, (table, key) in LOOKUPS.items():
        path = interim_dir / f"{table}.parquet"
        if not path.exists():
            continue
        columns = [key, "name", "phone"] if label == "caseworker" else [key, "name"]
        frame = read_interim(interim_dir, path.name, columns).set_index(key)
        names[label] = frame["name"]
        if "phone" in frame:
            names["phone"] = frame["phone"]
    return names


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


def write_county(folder: Path, county: str, directors: list[tuple[str, np.ndarray]], parts: Fragments,
                 csv_text: tuple[str, list[str]], sheets: tuple, summary_row, as_of: str, params,
                 coverage: pd.DataFrame) -> None:  # fmt: skip
    """A county's CSV, XLSX and page, and each director's page and CSV, from the rows' fragments."""
    text = TEXT[params.watchlist.language]
    header, lines = csv_text
    folder.mkdir()
    (folder / "directors").mkdir()
    every = np.sort(np.concatenate([rows for _, rows in directors]))
    (folder / "watchlist.csv").write_bytes(("\ufeff" + header + "".join(lines[i] for i in every)).encode("utf-8"))
    (folder / "watchlist.xlsx").write_bytes(sheets_bytes(every, parts, *sheets, county, params.watchlist.language,
                                                         as_of))  # fmt: skip
    on_county_page, lapsed = [], []
    for slug, rows in directors:
        rows = rows.tolist()
        listed = [i for i in rows if parts.listed[i]]
        flagged = {f: [i for i in listed if parts.flag[i] == f] for f in review_loop.FLAGS}
        above = parts.village_order([i for i in listed if parts.above[i] and parts.flag[i] != "escalated"])
        mine = {"caseworker": parts.caseworker[rows[0]], "phone": parts.phone[rows[0]], "slug": slug,
                "assigned": slug != "unassigned", "n": len(listed), "n_above": len(above)}  # fmt: skip
        if listed:
            link = f"directors/{escape(slug)}.html"
            on_county_page.append({**mine, "rows": parts.villages(above, "above", link, text)})
        lapsed += [i for i in rows if not parts.listed[i]]
        page = {
            **mine, "above": parts.villages(above, "above", "", text),
            "below": "".join(parts.row(i, "below") for i in listed if not parts.above[i] and not parts.flag[i]),
            "sections": {f: Markup("".join(parts.row(i, "above" if parts.above[i] else "below") for i in flagged[f]))
                         for f in review_loop.FLAGS},
            "coverage": coverage_text(coverage, county, parts.caseworker_id[rows[0]], params.watchlist.language),
            "lapsed": "".join(parts.lapsed[i] for i in rows if not parts.listed[i]),
            "explanations": "".join(parts.explanations[i] for i in above),
        }  # fmt: skip
        csv = "\ufeff" + header + "".join(lines[i] for i in rows)
        (folder / "directors" / f"{slug}.csv").write_bytes(csv.encode("utf-8"))
        html = render_director(page, county, as_of, params, parts.names_note[county])
        (folder / "directors" / f"{slug}.html").write_text(html, encoding="utf-8")
    on_county_page.sort(key=lambda d: (not d["assigned"], d["caseworker"], d["slug"]))
    lapsed_html = "".join(parts.lapsed[i] for i in sorted(lapsed))
    page = render_county(on_county_page, lapsed_html, summary_row, as_of, params, parts.names_note[county])
    (folder / "watchlist.html").write_text(page, encoding="utf-8")


def coverage_text(coverage: pd.DataFrame, county: str, caseworker_id: str, language: str) -> str:
    """The director page's line on last month's review coverage (review_loop.coverage)."""
    text = TEXT[language]
    if (county, caseworker_id) not in coverage.index:
        return text["no_coverage"]
    row = coverage.loc[(county, caseworker_id)]
    return text["coverage"].format(listed=int(row["listed"]), reviewed=int(row["reviewed"]), share=f"{row['share']:.0%}")


def sheets_bytes(every: np.ndarray, parts: Fragments, keep: pd.Series, widest: pd.DataFrame, cells: list,
                 county: str, language: str, as_of: str) -> bytes:  # fmt: skip
    """A sheet per director (by caseworker): their visit list and their already-out children (rows needing a review)."""
    kept = [i for i in every.tolist() if keep.iat[i]]
    sheets: dict[str, list[list[str]]] = {}
    for i in sorted(kept, key=lambda i: parts.caseworker[i]):
        sheets.setdefault(parts.caseworker[i], []).append(cells[i])
    headers = {c: TEXT[language]["columns"][c] for c in XLSX_COLUMNS}
    content = widest.loc[county].tolist() if county in widest.index else [0] * len(headers)
    widths = column_widths(content, list(headers.values()))
    return rows_workbook(sheets, headers, widths, language, pd.Timestamp(as_of).date())


def read_watchlists(explanations_path, models_dir, served_dir, interim_dir, params):
    """The served model's lists from the stage inputs: (ranked, out, summary, reviews) of
    `build_watchlists`; refuses a model that failed the gate (`check_served`)."""
    explanations_path, interim_dir = Path(explanations_path), Path(interim_dir)
    check_served(Path(models_dir), Path(served_dir), params)
    if not explanations_path.exists():
        raise SafetynetError(f"{explanations_path}: not found; run `dvc repro explain` first")
    explanations = pd.read_parquet(explanations_path)
    identity = read_interim(interim_dir, "identity.parquet", ["child_pid", "child_id", "name"])
    children = read_interim(interim_dir, "children.parquet", CHILD_COLUMNS)
    reviews, export_date = review_loop.read_reviews(interim_dir), review_loop.read_export_date(interim_dir)
    return (*build_watchlists(explanations, identity, children, params, reviews, export_date), reviews)


def run(explanations_path, contributions_path, models_dir, served_dir, interim_dir, out_dir, params,
        referrals_dir=None, monitoring_dir=None) -> dict:  # fmt: skip
    """Write every county's watchlists (CSV, XLSX, HTML, per director) and the index, replacing out_dir whole.

    With `referrals_dir` (the referrals stage's plan), a listed child's service cell names the
    matched provider of each need or says to escalate, and the index shows the unmet need. With
    `monitoring_dir`, the index carries a red banner when a monitoring threshold was crossed.
    Refuses (one line, nothing written) when the model in models/ failed evaluate's gate,
    unless watchlist.allow_failed_gate is true."""
    interim_dir, out_dir = Path(interim_dir), Path(out_dir)
    ranked, out, summary, _ = read_watchlists(explanations_path, models_dir, served_dir, interim_dir, params)
    language, as_of = params.watchlist.language, summary.attrs["as_of"]
    listed = ranked.loc[ranked["above_cut"], "child_pid"].tolist()
    charts = svg_charts(read_contributions(Path(contributions_path), listed), language)
    table = display_table(ranked, out, language, as_of, read_names(interim_dir))
    services = None
    if referrals_dir is not None:
        cells, unmet, note, providers = watchlist_services(Path(referrals_dir), language)
        listed_rows = table["rank"].ne("") & table["child_pid"].isin(cells.index)
        table.loc[listed_rows, "service"] = table.loc[listed_rows, "child_pid"].map(cells)
        table["provider_id"] = table["child_pid"].map(providers).fillna("")
        services = (unmet, note)
    cells = neutralised(table, dict.fromkeys(CSV_COLUMNS + XLSX_COLUMNS))
    headings = [TEXT[language]["columns"][c] for c in CSV_COLUMNS]
    csv_text = (fragments.csv_header(headings), fragments.csv_lines(cells[list(CSV_COLUMNS)]))
    keep, widest = xlsx_rows(table, cells, language)
    sheets = (keep, widest, cells[list(XLSX_COLUMNS)].to_numpy(dtype=object).tolist())
    parts = Fragments(table, charts, language)
    with atomic_dir(out_dir) as tmp:
        for county, directors in director_groups(table).items():
            write_county(tmp / county, county, directors, parts, csv_text, sheets, summary.loc[county], as_of, params,
                         summary.attrs["coverage"])  # fmt: skip
        (tmp / "index.html").write_text(render_index(summary, params, services, read_monitoring_alerts(monitoring_dir)), encoding="utf-8")
    result = {
        "as_of": as_of, "counties": len(summary), "n_scored": int(summary["n_scored"].sum()),
        "n_above_cut": int(ranked["above_cut"].sum()), "n_already_out": int(summary["n_already_out"].sum()),
        "n_waterfalls": len(charts),
    }  # fmt: skip
    log.info("watchlist: %s", result)
    return result
