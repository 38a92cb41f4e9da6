"""Watchlist: bands, change markers, ranking/capacity/ties, escaping, county isolation, determinism."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
import pytest

from src.delivery import explain, watchlist, xlsx
from src.errors import SafetynetError
from src.models import evaluate
from tests.delivery import explain_fixtures as fx

NOW, BEFORE = pd.Timestamp("2024-06-01"), pd.Timestamp("2024-05-01")


def explanation_rows(pids, scores, as_of, already_out=None, top_n=1) -> pd.DataFrame:
    """Minimal explanations.parquet rows (columns per the architecture doc)."""
    n = len(pids)
    out = pd.DataFrame({c: "" for c in explain.explanation_columns(top_n)}, index=range(n))
    out["child_pid"], out["as_of"], out["score"] = (
        list(pids),
        as_of,
        np.asarray(scores, dtype=float),
    )
    out["already_out"] = (
        np.zeros(n, "int8") if already_out is None else np.asarray(already_out, "int8")
    )
    out["already_out_net"] = np.where(out["already_out"] == 1, "basic_living", "")
    out["reason_1_zh"], out["reason_1_en"] = (
        "低保/补贴复核已逾期",
        "benefit recertification is overdue",
    )
    out["primary_system"] = np.where(out["already_out"] == 1, "basic_living", "education")
    out["service_zh"], out["service_en"] = "学校跟进、控辍保学", "school follow-up"
    for column in out.columns:
        if column.startswith("shap_"):
            out[column] = 0.0
    out.loc[out["already_out"] == 1, "score"] = np.nan
    return out


def test_risk_band_boundaries():
    bands = watchlist.risk_band(pd.Series([0.0, 0.0999, 0.1, 0.2499, 0.25, 1.0]), (0.1, 0.25))
    assert bands.tolist() == ["low", "low", "medium", "medium", "high", "high"]


def test_change_markers_against_previous_scores():
    current = pd.Series([0.30, 0.30, 0.30, 0.30, 0.30])
    previous = pd.Series([np.nan, 0.28, 0.32, 0.29, 0.10])
    markers = watchlist.change_markers(current, previous, threshold=0.02)
    assert markers.tolist() == ["new", "rising", "falling", "same", "rising"]


def test_ranking_capacity_cut_and_ties():
    identity, children = fx.people(12, n_counties=2, hostile=False)
    # county 530102 = even children (2 caseworkers at most), 530103 = odd
    children["caseworker_id"] = [{0: "a", 2: "b"}.get(i % 4, "c") for i in range(12)]
    scores = [0.9, 0.5, 0.4, 0.5, 0.4, 0.1, 0.4, 0.2, 0.05, 0.3, 0.6, 0.7]
    expl = explanation_rows(identity["child_pid"], scores, NOW)
    params = fx.params(base__children_per_caseworker=1)
    ranked, out, summary = watchlist.build_watchlists(expl, identity, children, params)
    assert summary.loc["530102", "capacity"] == 2 and summary.loc["530103", "capacity"] == 1
    even = ranked[ranked["county_code"] == "530102"]
    ranks = even.groupby("caseworker_id")["rank"].apply(list).to_dict()
    assert ranks == {"a": [1, 2, 3], "b": [1, 2, 3]}  # one list per director
    # each director's own top child: b's 0.6 is above the cut although a has a 0.9
    assert set(even.loc[even["above_cut"], "child_id"]) == {"C00000", "C00010"}
    ties = even[(even["caseworker_id"] == "b") & (even["score"] == 0.4)]
    assert ties["child_pid"].is_monotonic_increasing and ties["rank"].tolist() == [2, 3]
    assert ranked.groupby("county_code")["above_cut"].sum().tolist() == [2, 1]
    assert out.empty


def test_capacity_counts_only_the_caseworkers_of_scored_children():
    identity, children = fx.people(6, n_counties=1, hostile=False)
    # "solo" only has an already-out child: no child of theirs is on the list, no capacity
    children["caseworker_id"] = ["a", "a", "b", "solo", None, "b"]
    expl = explanation_rows(
        identity["child_pid"], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], NOW, already_out=[0, 0, 0, 1, 0, 0]
    )
    ranked, out, summary = watchlist.build_watchlists(
        expl, identity, children, fx.params(base__children_per_caseworker=1)
    )
    assert summary["caseworkers"].tolist() == [2] and summary["capacity"].tolist() == [2]
    assert ranked["above_cut"].sum() == 2 and len(out) == 1


def test_director_lists_add_up_to_the_capacity_evaluate_measures():
    identity, children = fx.people(24, n_counties=3, hostile=False)
    # county = i % 3, so each county has two caseworkers (cw{c}, cw{c + 3}) ...
    children["caseworker_id"] = [f"cw{i % 6}" for i in range(24)]
    # ... plus, in two counties, one whose only child is already out (not counted)
    children.loc[[3, 10], "caseworker_id"] = ["only-out-1", "only-out-2"]
    children.loc[[7, 19], "caseworker_id"] = None
    scores = np.round(np.random.default_rng(3).random(24), 1)  # coarse: ties at the cut line
    already_out = np.isin(np.arange(24), [3, 10, 15]).astype("int8")
    expl = pd.concat(
        [
            explanation_rows(identity["child_pid"], scores * 0.9, BEFORE),
            explanation_rows(identity["child_pid"], scores, NOW, already_out=already_out),
        ]
    )
    ranked, _, summary = watchlist.build_watchlists(
        expl, identity, children, fx.params(base__children_per_caseworker=1)
    )
    test = children.loc[already_out == 0, ["child_pid", "county_code"]].assign(
        as_of=pd.Timestamp(NOW).as_unit("us"), label=0, score=scores[already_out == 0]
    )
    capacity = evaluate.capacity_by_list(test.reset_index(drop=True), children, per_caseworker=1)
    by_county = capacity.groupby(level="county_code").sum()
    assert by_county.tolist() == [2, 2, 2] == summary["capacity"].tolist()
    above = ranked[ranked["above_cut"]]
    assert above.groupby("county_code").size().tolist() == [2, 2, 2]
    assert above.groupby("caseworker_id").size().max() == 1 and above["caseworker_id"].notna().all()
    for _, mine in ranked.dropna(subset=["caseworker_id"]).groupby("caseworker_id"):
        top = mine.sort_values(["score", "child_pid"], ascending=[False, True]).iloc[0]
        assert bool(top["above_cut"]) and mine["above_cut"].sum() == 1


def test_change_markers_and_reengage_from_a_previous_list():
    identity, children = fx.people(5, n_counties=1, hostile=False)
    pids = identity["child_pid"]
    before = explanation_rows(pids[:4], [0.2, 0.2, 0.2, np.nan], BEFORE, already_out=[0, 0, 0, 1])
    now = explanation_rows(pids, [0.3, 0.1, 0.21, 0.5, np.nan], NOW, already_out=[0, 0, 0, 0, 1])
    ranked, out, _ = watchlist.build_watchlists(
        pd.concat([before, now]), identity, children, fx.params()
    )
    change = ranked.set_index("child_id")["change"]
    assert change.to_dict() == {
        "C00000": "rising",
        "C00001": "falling",
        "C00002": "same",
        "C00003": "new",
    }
    assert out["child_id"].tolist() == ["C00004"] and out["already_out_net"].tolist() == [
        "basic_living"
    ]


def test_unknown_child_is_a_clear_error():
    identity, children = fx.people(4, n_counties=1, hostile=False)
    expl = explanation_rows(identity["child_pid"], [0.1] * 4, NOW)
    with pytest.raises(SafetynetError, match="children.parquet"):
        watchlist.build_watchlists(expl, identity, children.iloc[1:], fx.params())


@pytest.fixture
def written(tmp_path, monkeypatch):
    """run() on 60 children in 3 counties with hostile names; returns (write, identity, children)."""
    fx.use_small_catalogue(monkeypatch)
    expl_path, interim, identity, children = fx.write_inputs(tmp_path)
    monkeypatch.setattr(watchlist, "read_promotion", lambda models: {"passed": True, "reason": "ok", "model_digest": "m"})

    def write(language="zh", name="watchlists"):
        out = tmp_path / name
        watchlist.run(expl_path, tmp_path / "contributions.parquet", tmp_path / "models", fx.served_dir(tmp_path), interim, out, fx.params(watchlist__language=language))
        return out

    return write, identity, children


def read_csv(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_counties_hold_only_their_children_and_output_is_deterministic(written):
    write, identity, children = written
    first, second = write(name="a"), write(name="b")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    county_of = dict(zip(identity["child_id"], children["county_code"], strict=True))
    seen = []
    for folder in sorted(p for p in first.iterdir() if p.is_dir()):
        rows = read_csv(folder / "watchlist.csv")[1:]
        ids = [row[3] for row in rows]
        assert {county_of[i] for i in ids} == {folder.name}
        html = "".join(p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*.html")))
        others = [i for i, c in county_of.items() if c != folder.name]
        assert not any(f'data-child="{i}"' in html for i in others)
        seen += ids
    assert sorted(seen) == sorted(identity["child_id"])  # every child listed exactly once
    index = (first / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{c}/watchlist.html"' in index for c in children["county_code"].unique())


def test_hostile_values_are_escaped_in_html_and_neutralised_in_csv(written):
    write, identity, children = written
    out = write()
    html = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*.html"))
    assert "<script" not in html.lower() and "<b>bold</b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "http" not in html.replace('"http://x"', "").replace("&#34;http://x&#34;", "")
    cells = [c for p in out.rglob("*.csv") for row in read_csv(p) for c in row]
    assert '\'=HYPERLINK("http://x","y")' in cells
    assert "'=cmd|' /C calc'!A0" in cells
    assert {"'+86 123", "'-2+3", "'@SUM(A1)", "李\n换行", 'Zhang "Quote" O\'Neil'} <= set(cells)
    assert not any(c[:1] in "=+-@\t\r" and c for c in cells)


def test_header_states_the_list_decides_nothing(written):
    write, *_ = written
    zh = next(write("zh", "zh").glob("*/watchlist.html")).read_text(encoding="utf-8")
    en = next(write("en", "en").glob("*/watchlist.html")).read_text(encoding="utf-8")
    assert "不对任何福利待遇或服务作出决定" in zh and "已脱离保障 — 需重新衔接" in zh
    assert "decides nothing about any benefit or service" in en and "Already out — re-engage" in en
    for page in (zh, en):
        assert (
            'class="cut"' in page
            and "<script" not in page
            and "http" not in page.split("</style>")[0]
        )


def test_a_model_that_failed_the_gate_gets_no_list(tmp_path, monkeypatch):
    fx.use_small_catalogue(monkeypatch)
    expl_path, interim, _, _ = fx.write_inputs(tmp_path)
    failed = {"passed": False, "reason": "model precision_at_k 0.2 does not beat rules", "model_digest": "m"}
    monkeypatch.setattr(watchlist, "read_promotion", lambda models: failed)
    out = tmp_path / "watchlists"
    with pytest.raises(SafetynetError, match="failed the evaluation gate .*allow_failed_gate"):
        watchlist.run(expl_path, tmp_path / "contributions.parquet", tmp_path / "models", fx.served_dir(tmp_path), interim, out, fx.params())
    assert not out.exists()
    watchlist.run(expl_path, tmp_path / "contributions.parquet", tmp_path / "models", fx.served_dir(tmp_path), interim, out, fx.params(watchlist__allow_failed_gate=True))
    assert (out / "index.html").exists()  # the explicit override


def test_a_served_model_refitted_from_another_model_gets_no_list(tmp_path, monkeypatch):
    fx.use_small_catalogue(monkeypatch)
    expl_path, interim, _, _ = fx.write_inputs(tmp_path)
    monkeypatch.setattr(watchlist, "read_promotion", lambda models: {"passed": True, "reason": "ok", "model_digest": "m"})
    with pytest.raises(SafetynetError, match="not refitted from the evaluated model"):
        watchlist.run(expl_path, tmp_path / "contributions.parquet", tmp_path / "models", fx.served_dir(tmp_path, "other"), interim,
                      tmp_path / "out", fx.params())  # fmt: skip


def test_each_director_has_a_page_with_their_list_explanations_and_downloads(written):
    write, identity, children = written
    out = write()
    per = fx.params().base.children_per_caseworker
    name_of = dict(zip(identity["child_id"], identity["name"], strict=True))
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        county = (folder / "watchlist.html").read_text(encoding="utf-8")
        assert 'href="watchlist.csv"' in county and 'href="watchlist.xlsx"' in county
        assert "新增" in county and "持平" in county and "child_pid" in county  # legend: markers, ties
        pages = sorted((folder / "directors").glob("*.html"))
        assert pages and all(f'href="directors/{p.name}"' in county for p in pages)
        for page in pages:
            html = page.read_text(encoding="utf-8")
            assert f'href="{page.stem}.csv"' in html and 'href="../watchlist.xlsx"' in html
            above = re.findall(r'<tr class="above" data-child="([^"]+)"', html)
            explained = re.findall(r'data-explained="([^"]+)"', html)
            assert len(above) <= per and explained == above
            assert html.count('<svg class="waterfall"') == len(above)  # one chart per listed child
            if page.stem == "unassigned":
                assert not above
            for child in above:  # the county page links to the child's explanation
                assert f"{page.stem}.html#c-" in county and name_of[child] is not None
    assert "@media print" in county


def test_waterfalls_come_from_contributions_and_a_missing_file_is_a_clear_error(written, tmp_path):
    write, *_ = written
    out = write()
    svg = next(p for p in out.rglob("d-*.html") if "<svg" in p.read_text(encoding="utf-8"))
    html = svg.read_text(encoding="utf-8")
    assert "平均水平（基线）" in html and "其他因素合计" in html and "本人风险" in html
    (tmp_path / "contributions.parquet").unlink()
    with pytest.raises(SafetynetError, match="contributions.parquet: not found"):
        write(name="again")


def test_the_county_xlsx_has_a_sheet_per_director_with_dropdowns(written):
    import openpyxl

    write, identity, children = written
    out = write()
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        wb = openpyxl.load_workbook(folder / "watchlist.xlsx")
        mine = children[children["county_code"] == folder.name]
        directors = sorted(mine["caseworker_id"].dropna().unique())
        assert wb.sheetnames[:-1] == xlsx.sheet_names(directors) and wb.sheetnames[-1] == "复核结果说明"
        for name in wb.sheetnames[:-1]:
            ws = wb[name]
            assert ws.freeze_panes == "A2" and ws.protection.sheet
            assert any(v.type == "list" for v in ws.data_validations.dataValidation)
            assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def test_directors_and_villages_are_named_from_the_lookups_and_fall_back_to_codes(written, tmp_path):
    import openpyxl

    write, identity, children = written
    codes_only = write(name="codes")
    directors = sorted(children["caseworker_id"].dropna().unique())
    villages = sorted(children["community_code"].unique())
    named_cw, unnamed_cw = directors[0], directors[1]
    lookup_names = ["=王芳<i>x</i>", *[f"李{i}" for i in range(1, len(directors) - 1)]]
    pd.DataFrame({"caseworker_id": [named_cw, *directors[2:]], "name": lookup_names,
                  "phone": ["13800000000"] * (len(directors) - 1)}).to_parquet(tmp_path / "interim" / "caseworkers.parquet")  # fmt: skip
    pd.DataFrame({"community_code": villages, "name": [f"杨柳{i}村" for i in range(len(villages))],
                  "county_code": "x"}).to_parquet(tmp_path / "interim" / "communities.parquet")  # fmt: skip
    out = write(name="named")
    county_of = dict(zip(children["caseworker_id"], children["county_code"], strict=True))
    html = (out / county_of[named_cw] / "watchlist.html").read_text(encoding="utf-8")
    code = named_cw.replace("<", "&lt;").replace(">", "&gt;")
    assert f"=王芳&lt;i&gt;x&lt;/i&gt; ({code})" in html and "<i>x" not in html
    assert "电话: 13800000000" in html
    assert "村（社区）显示为“姓名 (代码)”" in html  # every village named
    other = (out / county_of[unnamed_cw] / "watchlist.html").read_text(encoding="utf-8")
    assert "其余 1 个仅显示代码" in other  # this county's director without a name: shown by code
    cells = [c for row in read_csv(out / county_of[named_cw] / "watchlist.csv") for c in row]
    assert f"'=王芳<i>x</i> ({named_cw})" in cells and not any(c.startswith("=") for c in cells)
    assert any(re.fullmatch(r"杨柳\d+村 \(.+\)", c) for c in cells)
    wb = openpyxl.load_workbook(out / county_of[named_cw] / "watchlist.xlsx")
    assert all(c.data_type != "f" for ws in wb for row in ws.iter_rows() for c in row)
    plain = (codes_only / county_of[named_cw] / "watchlist.html").read_text(encoding="utf-8")
    assert "王芳" not in plain and "儿童主任以代码显示：导出数据中没有其姓名对照表" in plain
