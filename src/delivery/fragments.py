"""Every watchlist row's HTML and CSV text, built once for the whole province.

The pages and files of a county and of each child director are then joins of slices of
these strings, so a province of 1M children costs one pass over its rows, not one pandas
filter and one template call per director and per row.

Escaping: every value placed in HTML goes through `markupsafe.escape`, exactly as Jinja's
autoescape does in the page templates (each distinct value is escaped once and shared).
CSV rows come from the standard csv writer (minimal quoting, CRLF), as pandas writes them;
the values are formula-neutralised before they get here (`watchlist.neutralised`).
"""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
from markupsafe import escape


def escaped(values) -> list[str]:
    """The HTML-escaped text of each value (missing values as empty text)."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object).fillna("").astype(str).to_numpy(dtype=object))
    safe = np.array([str(escape(u)) for u in uniques] or [""], dtype=object)
    return safe[codes].tolist()


def reasons_list(reasons) -> list[str]:
    """`<ul class="reasons">` with one item per line of each reasons text ("" when there is none)."""
    codes, uniques = pd.factorize(pd.Series(reasons, dtype=object).fillna("").astype(str).to_numpy(dtype=object))
    html = [
        '<ul class="reasons">' + "".join(f"<li>{escape(line)}</li>" for line in text.split("\n")) + "</ul>"
        if text else ""
        for text in uniques
    ]  # fmt: skip
    return np.array(html or [""], dtype=object)[codes].tolist()


def child_cells(table: pd.DataFrame) -> list[str]:
    """A listed child's cells from rank to the suggested service (the row's link cell is added per page)."""
    e = {c: escaped(table[c]) for c in ("rank", "child_id", "name", "age", "sex", "guardian", "category", "risk",
                                        "band_code", "band", "change_code", "change", "service", "context")}  # fmt: skip
    reasons = reasons_list(table["reasons"])
    e["context"] = [f'<div class="context">{c}</div>' if c else "" for c in e["context"]]
    return [
        f'<td class="num">{rank}</td><td class="nw">{cid}</td><td class="name">{name}</td><td class="nw">{age}</td>'
        f'<td class="nw">{sex}</td><td>{guardian}</td><td>{category}</td><td class="num">{risk}</td><td><span '
        f'class="band band-{band_code}">{band}</span></td><td class="change-{change_code}">{change}</td><td>'
        f"{ul}{context}</td><td>{service}</td>"
        for rank, cid, name, age, sex, guardian, category, risk, band_code, band, change_code, change, service,
        context, ul in zip(*e.values(), reasons, strict=True)
    ]  # fmt: skip


def child_row(cells: str, child_id: str, where: str, link: str, link_text: str) -> str:
    """A `<tr>` of the watchlist table; `link` (escaped) points to the child's explanation, if any."""
    anchor = f'<a href="{link}">{link_text}</a>' if link else ""
    return (f'<tr class="{where}" data-child="{child_id}">{cells}<td class="nw">{anchor}</td>'
            '<td class="review"></td></tr>\n')  # fmt: skip


def lapsed_rows(table: pd.DataFrame) -> list[str]:
    """The re-engage table's row of each already-out child."""
    e = [escaped(table[c]) for c in ("child_id", "name", "community", "caseworker", "reasons", "service")]
    return [
        f'<tr class="lapsed" data-child="{cid}"><td class="nw">{cid}</td><td class="name">{name}</td>'
        f'<td class="nw">{community}</td><td class="nw">{caseworker}</td><td>{nets}</td><td>{service}</td>'
        '<td class="review"></td></tr>\n'
        for cid, name, community, caseworker, nets, service in zip(*e, strict=True)
    ]  # fmt: skip


def explanations(table: pd.DataFrame, charts: dict[str, str], text: dict) -> list[str]:
    """A listed child's explanation section: who, context, reasons, service, and their waterfall."""
    e = {c: escaped(table[c]) for c in ("anchor", "child_id", "rank", "name", "community", "risk", "age", "sex",
                                        "guardian", "category", "context", "service")}  # fmt: skip
    reasons = reasons_list(table["reasons"])
    label, service_label = escape(text["context_label"]), escape(text["columns"]["service"])
    no_chart = f'<p class="legend">{escape(text["no_chart"])}</p>'
    return [
        f'<section class="explanation" id="{anchor}" data-explained="{cid}">\n<h3>{rank}. {name} ({cid}) · '
        f'{community} · {risk}</h3>\n<p class="meta">{label}: {age} · {sex} · {guardian} · {category}'
        f'{f" · {context}" if context else ""}</p>\n{ul}<p>{service_label}: {service}</p>\n'
        f"{charts.get(pid) or no_chart}</section>\n"
        for anchor, cid, rank, name, community, risk, age, sex, guardian, category, context, service, ul, pid
        in zip(*e.values(), reasons, table["child_pid"].tolist(), strict=True)
    ]  # fmt: skip


class _Lines(list):
    write = list.append  # the csv writer writes each row with one call


def csv_lines(cells: pd.DataFrame) -> list[str]:
    """Each row of `cells` (text) as one CSV line with CRLF, quoted as needed (header not included)."""
    lines = _Lines()
    csv.writer(lines, lineterminator="\r\n").writerows(
        zip(*(cells[c].tolist() for c in cells.columns), strict=True)
    )
    return list(lines)


def csv_header(columns) -> str:
    lines = _Lines()
    csv.writer(lines, lineterminator="\r\n").writerow(list(columns))
    return lines[0]
