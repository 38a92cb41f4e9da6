"""The watchlist's HTML pages: the county page, each child director's printable page, the index.

Rendered with Jinja autoescape and StrictUndefined from templates/; no script and no
external resource, so a page works offline and prints (print CSS in _style.css.j2).
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import jinja2
import pandas as pd

from src.delivery.review_codes import REVIEW_CODES
from src.delivery.wording import TEXT

TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def template_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )



def by_village(rows: pd.DataFrame) -> list[dict]:
    """[{village, rows}] sorted by village code, each village's children in rank order."""
    records = sorted(rows.to_dict("records"), key=lambda r: (r["community"], int(r["rank"] or 0), r["child_id"]))
    return [{"village": village, "rows": list(group)}
            for village, group in itertools.groupby(records, key=lambda r: r["community"])]  # fmt: skip


def shared_context(county: str, as_of: str, params) -> dict:
    language = params.watchlist.language
    text = TEXT[language]
    low, high = params.watchlist.risk_bands
    reviews = [{"code": c, "label": labels[0 if language == "zh" else 1]} for c, labels in REVIEW_CODES.items()]
    return {
        "t": text, "county": county, "per": params.base.children_per_caseworker, "as_of": as_of, "reviews": reviews,
        "legend": text["legend"].format(low=f"{low:.0%}", high=f"{high:.0%}"),
        "markers": text["markers"].format(thr=f"{100 * params.watchlist.change_threshold:g}"),
        "ties": text["ties"].format(per=params.base.children_per_caseworker),
    }  # fmt: skip


def render_county(rows: pd.DataFrame, summary_row, as_of: str, params) -> str:
    """The county page: per director, their visit list by village and a link to their page."""
    text = TEXT[params.watchlist.language]
    listed = rows[rows["rank"] != ""]
    directors = []
    for (caseworker, slug), mine in listed.groupby(["caseworker", "director"], sort=True):
        directors.append({
            "caseworker": caseworker, "slug": slug, "assigned": slug != "unassigned",
            "n": len(mine), "n_above": int(mine["above_cut"].sum()),
            "villages": by_village(mine[mine["above_cut"]]),
        })  # fmt: skip
    directors.sort(key=lambda d: (not d["assigned"], d["caseworker"]))
    capacity = text["capacity"].format(capacity=int(summary_row["capacity"]),
                                       per=params.base.children_per_caseworker,
                                       n=int(summary_row["caseworkers"]))  # fmt: skip
    return template_env().get_template("watchlist.html.j2").render(
        **shared_context(str(summary_row.name), as_of, params), capacity_text=capacity,
        directors=directors, lapsed=rows[rows["rank"] == ""].to_dict("records"),
    )  # fmt: skip


def render_director(rows: pd.DataFrame, county: str, charts: dict, as_of: str, params) -> str:
    """One director's printable page: their list, the cut line, re-engage, an explanation per listed child."""
    text = TEXT[params.watchlist.language]
    listed = rows[rows["rank"] != ""]
    above = listed[listed["above_cut"]]
    first = rows.iloc[0]
    villages = by_village(above)
    explanations = [{**row, "chart": charts.get(row["child_pid"])} for v in villages for row in v["rows"]]
    return template_env().get_template("director.html.j2").render(
        **shared_context(county, as_of, params), caseworker=first["caseworker"], slug=first["director"],
        assigned=first["director"] != "unassigned", villages=villages,
        below=listed[~listed["above_cut"]].to_dict("records"),
        lapsed=rows[rows["rank"] == ""].to_dict("records"), explanations=explanations,
        cut_text=text["director_cut"].format(per=params.base.children_per_caseworker, n=len(above)),
    )  # fmt: skip


def render_index(summary: pd.DataFrame, params) -> str:
    counties = [{"county": c, **{k: int(v) for k, v in row.items()}} for c, row in summary.iterrows()]
    return template_env().get_template("index.html.j2").render(
        t=TEXT[params.watchlist.language], as_of=summary.attrs["as_of"], counties=counties
    )
