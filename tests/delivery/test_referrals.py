"""The referrals stage on small inputs: the plan reconciles, files hold only their own children,
reports hold no identity, expired providers are skipped, no directory still runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from src.delivery import referral_plan, referrals, watchlist
from tests.delivery import explain_fixtures as fx

CODES = "benefit_recertification|school_follow_up|medical_enrolment_rehab|psychological_support|child_protection|guardian_assessment"


def directory(children: pd.DataFrame) -> pd.DataFrame:
    """Per county: a small county-wide provider, a village provider, and an expired big one."""
    rows = []
    for county, villages in children.groupby("county_code")["community_code"]:
        first = sorted(villages.unique())[0]
        rows += [
            (f"P{county}A", "县民政局", "government", county, None, CODES, 2, "13900000001", "2020-01-01", None),
            (f"P{county}B", "=HYPERLINK(\"x\")服务队", "volunteer", county, first, CODES, 1, "@13900000002", "2020-01-01",
             "2099-12-31"),
            (f"P{county}C", "已停止机构", "charity", county, None, CODES, 99, "13900000003", "2020-01-01", "2024-01-31"),
        ]  # fmt: skip
    columns = ["provider_id", "name", "kind", "county_code", "community_codes", "services", "monthly_capacity",
               "contact", "active_from", "active_to"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame["monthly_capacity"] = frame["monthly_capacity"].astype("Int64")
    for c in ("active_from", "active_to"):
        frame[c] = pd.to_datetime(frame[c]).astype("datetime64[us]")
    return frame


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """The inputs are built once (a tiny model is trained); each run writes its own folders."""
    monkeypatch = pytest.MonkeyPatch()
    tmp_path = tmp_path_factory.mktemp("referrals")
    fx.use_small_catalogue(monkeypatch)
    expl_path, interim, identity, children = fx.write_inputs(tmp_path)
    monkeypatch.setattr(watchlist, "read_promotion", lambda models: {"passed": True, "reason": "ok", "model_digest": "m"})

    def run(name="referrals", with_directory=True, language="en"):
        path = interim / "service_providers.parquet"
        if with_directory:
            directory(children).to_parquet(path, index=False)
        elif path.exists():
            path.unlink()
        params = fx.params(watchlist__language=language)
        out, reports = tmp_path / name, tmp_path / f"reports-{name}"
        summary = referrals.run(expl_path, tmp_path / "models", fx.served_dir(tmp_path), interim, out, reports, params)
        return summary, out, reports

    def lists(referrals_dir, name="watchlists"):
        out = tmp_path / name
        watchlist.run(expl_path, tmp_path / "contributions.parquet", tmp_path / "models", fx.served_dir(tmp_path),
                      interim, out, fx.params(watchlist__language="en"), referrals_dir)  # fmt: skip
        return out

    yield run, lists, identity, children
    monkeypatch.undo()


def test_the_plan_reconciles_and_each_provider_file_holds_only_its_children(stage):
    run, _, identity, children = stage
    summary, out, reports = run()
    plan, active, saved = referral_plan.read_plan(out)
    assert saved == summary and summary["directory"] == "given" and summary["reconciles"]
    assert summary["totals"]["needs"] == len(plan) > 0 and summary["totals"]["unmet"] > 0
    assert not plan["provider_id"].str.endswith("C").any() and len(active) == 2 * children["county_code"].nunique()
    used = plan[plan["provider_id"] != ""].groupby("provider_id").size()
    assert (used <= active.set_index("provider_id").loc[used.index, "monthly_capacity"]).all()
    names = identity.set_index("child_pid")["name"]
    for provider_id, rows in plan[plan["provider_id"] != ""].groupby("provider_id"):
        county = rows["county_code"].iat[0]
        text = pd.read_csv(out / county / "providers" / f"{provider_id}.csv", encoding="utf-8-sig", dtype=str)
        assert len(text) == len(rows)
        assert set(text["name"].str.lstrip("'")) == set(names.loc[rows["child_pid"]].str.lstrip("'"))
        assert "child_id" not in text.columns and (out / county / "providers" / f"{provider_id}.xlsx").exists()
    director = pd.read_csv(next(out.glob("*/referrals.csv")), encoding="utf-8-sig", dtype=str)
    assert director["provider contact"].dropna().str.startswith("'@").any()  # neutralised contact
    assert director["provider"].str.startswith("'=").any() or director["provider"].str.contains("escalate").any()


def test_reports_hold_counts_only_and_suppress_small_cells(stage):
    run, _, identity, _ = stage
    _, _, reports = run()
    text = "".join(p.read_text(encoding="utf-8") for p in reports.iterdir())
    assert "139000" not in text and not any(n in text for n in identity["name"] if len(n) >= 2)
    unmet = pd.read_csv(reports / "unmet_need.csv", dtype={"county_code": str})
    assert (unmet["suppressed"].notna() == unmet["needs"].isna()).all()  # the fixture's cells are all small
    assert set(unmet.columns) >= {"county_code", "system", "service_code", "needs", "matched", "unmet", "capacity"}


def test_the_outputs_are_byte_identical_on_rerun(stage):
    run, *_ = stage
    _, first, first_reports = run("a")
    _, second, second_reports = run("b")
    for a_dir, b_dir in ((first, second), (first_reports, second_reports)):
        files = sorted(p.relative_to(a_dir) for p in a_dir.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(b_dir) for p in b_dir.rglob("*") if p.is_file())
        assert all((a_dir / f).read_bytes() == (b_dir / f).read_bytes() for f in files)


def test_the_watchlist_shows_the_matched_provider_or_escalation_and_the_unmet_table(stage):
    run, lists, *_ = stage
    _, out, _ = run()
    folder = lists(out)
    rows = pd.concat(pd.read_csv(p, encoding="utf-8-sig", dtype=str) for p in folder.glob("*/watchlist.csv"))
    service = rows["suggested service"].fillna("")
    assert service.str.contains("→ 县民政局").any() and service.str.contains("escalate to county civil affairs").any()
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert 'id="unmet-need"' in index and "&lt;" not in index.split('id="unmet-need"')[0][-10:]


def test_without_a_directory_the_pipeline_runs_and_says_so(stage):
    run, lists, *_ = stage
    summary, out, reports = run(with_directory=False)
    assert summary["directory"] == "absent" and summary["totals"]["matched"] == 0
    assert json.loads((reports / "services.json").read_text())["directory"] == "absent"
    assert not any(out.glob("*/providers"))
    folder = lists(out)
    rows = pd.concat(pd.read_csv(p, encoding="utf-8-sig", dtype=str) for p in folder.glob("*/watchlist.csv"))
    assert not rows["suggested service"].fillna("").str.contains("→").any()  # the generic service, as before
    assert "No service directory" in (folder / "index.html").read_text(encoding="utf-8")


def test_needs_follow_the_reasons_primary_first_and_the_general_review_is_not_referred():
    listed = pd.DataFrame({"child_pid": ["a", "b", "c"], "county_code": "1", "community_code": "v", "score": 0.5,
                           "systems": ["education|basic_living", "", "static|safety"]})  # fmt: skip
    needs = referrals.needs_frame(listed)
    assert needs[["child_pid", "service_code", "need_rank"]].values.tolist() == [
        ["a", "school_follow_up", 0], ["a", "benefit_recertification", 1], ["c", "child_protection", 0]]
