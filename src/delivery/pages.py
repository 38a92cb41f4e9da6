"""The watchlist's HTML pages: the county page, each child director's printable page, the index.

Rendered with Jinja autoescape and StrictUndefined from templates/; no script and no
external resource, so a page works offline and prints (print CSS in _style.css.j2). The
rows, the village groups and the explanations arrive pre-rendered (`fragments`, every value
escaped there) as Markup: a template call per row cost more than the rest of the stage.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from src.data.service_vocabulary import wording
from src.delivery.referral_plan import INDEX_HEADINGS
from src.delivery.review_codes import REVIEW_CODES
from src.delivery.wording import TEXT
from src.features.catalogue import SYSTEMS

TEMPLATES = Path(__file__).parent / "templates"


MONITORING_BANNER = {  # the index's banner when the monitoring stage crossed a threshold
    "zh": "监测警示：数据或模型得分发生漂移，请谨慎使用本月名单（详见 reports/monitoring）",
    "en": "Monitoring alert: the data or the scores drifted; use this month's lists with care (see reports/monitoring)",
}


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


@functools.cache
def template(name: str) -> jinja2.Template:
    return template_env().get_template(name)


def village_rows(rows: list[tuple[str, str]], text: dict) -> Markup:
    """(village, row HTML) pairs, already in village order -> village heading rows + child rows."""
    label = escape(text["village"])
    return Markup("".join(
        f'<tr class="village"><td colspan="14">{label}: {escape(village)}</td></tr>\n' + "".join(r for _, r in group)
        for village, group in itertools.groupby(rows, key=lambda pair: pair[0])
    ))  # fmt: skip


@functools.cache
def shared_context(language: str, per: int, risk_bands: tuple, threshold: float) -> dict:
    text = TEXT[language]
    low, high = risk_bands
    reviews = [{"code": c, "label": labels[0 if language == "zh" else 1]} for c, labels in REVIEW_CODES.items()]
    return {
        "t": text, "per": per, "reviews": reviews,
        "legend": text["legend"].format(low=f"{low:.0%}", high=f"{high:.0%}"),
        "markers": text["markers"].format(thr=f"{100 * threshold:g}"),
        "ties": text["ties"].format(per=per),
    }  # fmt: skip


def context_of(county: str, as_of: str, params, names_note: str) -> dict:
    w = params.watchlist
    shared = shared_context(w.language, params.base.children_per_caseworker, tuple(w.risk_bands), w.change_threshold)
    return {**shared, "county": county, "as_of": as_of, "names_note": names_note}


def render_county(directors: list[dict], lapsed: str, summary_row, as_of: str, params, names_note: str) -> str:
    """The county page: per director (caseworker, phone, slug, assigned, n, n_above, rows), their
    visit list by village and a link to their page; then the county's already-out children.
    `names_note`: the legend's line on how directors and villages are shown (names or codes)."""
    text = TEXT[params.watchlist.language]
    capacity = text["capacity"].format(capacity=int(summary_row["capacity"]),
                                       per=params.base.children_per_caseworker,
                                       n=int(summary_row["caseworkers"]))  # fmt: skip
    return template("watchlist.html.j2").render(
        **context_of(str(summary_row.name), as_of, params, names_note), capacity_text=capacity,
        directors=directors, lapsed=Markup(lapsed),
    )  # fmt: skip


def render_director(director: dict, county: str, as_of: str, params, names_note: str) -> str:
    """One director's printable page: their list, the cut line, re-engage, an explanation per listed child.

    `director`: caseworker, phone, slug, assigned, n_above and the pre-rendered above (by
    village), below, lapsed and explanations HTML, the review sections (flag -> rows HTML,
    src.delivery.review_loop) and the coverage line; `names_note` as for `render_county`."""
    text = TEXT[params.watchlist.language]
    cut = text["director_cut"].format(per=params.base.children_per_caseworker, n=director["n_above"])
    return template("director.html.j2").render(
        **context_of(county, as_of, params, names_note), caseworker=director["caseworker"],
        phone=director["phone"], slug=director["slug"],
        assigned=director["assigned"], above=director["above"], below=Markup(director["below"]),
        lapsed=Markup(director["lapsed"]), explanations=Markup(director["explanations"]), cut_text=cut,
        sections=director.get("sections", {}), coverage=director.get("coverage", ""),
    )  # fmt: skip


def render_index(summary, params, services=None, alerts=()) -> str:
    """The counties, and with `services` (unmet-need table, directory note; `referral_plan`) the
    need per county x system x service against the capacity offered, shortfalls marked; the
    monitoring stage's crossed thresholds (`alerts`) as a red banner on top."""
    language = params.watchlist.language
    counties = [{"county": c, **{k: int(v) for k, v in row.items()}} for c, row in summary.iterrows()]
    unmet, note = services if services is not None else (None, "")
    rows = [] if unmet is None else [
        {**row, "system": SYSTEMS[row["system"]][0 if language == "zh" else 1],
         "service": wording(row["service_code"], language)} for row in unmet.to_dict("records")
    ]  # fmt: skip
    return template("index.html.j2").render(
        t=TEXT[language], as_of=summary.attrs["as_of"], counties=counties, services=services is not None,
        unmet=rows, note=note, s=INDEX_HEADINGS[language], alerts=list(alerts),
        alert_title=MONITORING_BANNER[language],
    )  # fmt: skip
