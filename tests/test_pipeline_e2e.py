"""End to end: the real `dvc repro` in a temporary copy of the repo, on a small synthetic set.

One pipeline run (module fixture) feeds every check here: declared outputs, a second
`dvc repro` that does nothing, privacy of reports/ and MLflow, the CLI, the notebooks,
and `dvc exp run -S`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from src.config import load_params
from src.data.synthetic.reviews import fill_watchlists
from src.delivery.wording import TEXT

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMALL = {
    "synthetic": {"n_children": 3000, "months": 30, "n_counties": 2, "communities_per_county": 8},
    "fairness": {"bootstrap_replicates": 50},
}

pytestmark = pytest.mark.e2e


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)  # the project's own local store
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true", GIT_TERMINAL_PROMPT="0")
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _deep_update(node: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict):
            _deep_update(node.setdefault(key, {}), value)
        else:
            node[key] = value


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A committed copy of the tracked files, with small params, after one `dvc repro`."""
    dest = tmp_path_factory.mktemp("e2e") / "repo"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for rel in filter(None, tracked.stdout.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for generated in ("dvc.lock",):
        (dest / generated).unlink(missing_ok=True)
    params = yaml.safe_load((dest / "params.yaml").read_text(encoding="utf-8"))
    _deep_update(params, SMALL)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    run(["git", "init", "-q"], dest)
    run(["git", "config", "user.email", "e2e@example.invalid"], dest)
    run(["git", "config", "user.name", "e2e"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "e2e copy"], dest)
    run(["dvc", "repro"], dest)
    return dest


def test_declared_outputs_exist(project):
    for rel in (
        "data/interim/children.parquet",
        "data/interim/identity.parquet",
        "reports/data_quality.json",
        "data/processed/features.parquet",
        "reports/features_summary.json",
        "models/booster.txt",
        "reports/metrics.json",
        "reports/predictions/test.parquet",
        "data/processed/explanations.parquet",
        "data/watchlists/index.html",
        "reports/fairness/fairness.json",
        "reports/fairness/index.html",
        "reports/model_card.md",
        "reports/model_card.html",
        "reports/monitoring/monitoring.json",
        "reports/monitoring/index.html",
        "reports/monitoring_metrics.json",
        "reports/reviews/reviews.json",
        "reports/reviews/index.html",
        "reports/reviews_metrics.json",
        "data/linkage/persons_linked.parquet",
        "data/linkage/clerical_review.csv",
        "reports/linkage.json",
        "reports/screening.json",
    ):
        assert (project / rel).exists(), rel
    assert any((project / "data/screening").glob("*/screening.xlsx"))
    metrics = json.loads((project / "reports/metrics.json").read_text())
    for key in ("auc_roc", "auc_pr", "brier", "ece", "precision_at_k", "recall_at_k", "k", "prevalence", "n"):
        assert key in metrics["test"], key
        assert key in metrics["baselines"]["rules"], key
    assert (project / "data/watchlists").is_dir() and any((project / "data/watchlists").glob("*/watchlist.csv"))


def test_second_repro_is_a_no_op(project):
    before = run(["dvc", "status"], project).stdout
    assert "up to date" in before.lower() or before.strip() in ("", "{}")
    out = run(["dvc", "repro"], project).stdout
    assert "Running stage" not in out


def test_ingest_reconciles_and_quarantines_injected_defects(project):
    quality = json.loads((project / "reports/data_quality.json").read_text())
    injected = json.loads((project / "data/synthetic/injected_defects.json").read_text())
    for table, entry in quality["tables"].items():
        quarantined = entry["rows_quarantined"]
        assert entry["rows_read"] == entry["rows_accepted"] + quarantined["total"] + entry["duplicates_collapsed"]
        expected: dict[str, int] = {}
        for defect in injected["tables"].get(table, {}).get("defects", []):
            expected[defect["reason"]] = expected.get(defect["reason"], 0) + defect["count"]
        assert entry["duplicates_collapsed"] == expected.pop("duplicate", 0), table
        assert quarantined["by_reason"] == expected, table


ID_TOKEN = re.compile(r"[A-Za-z0-9_-]{6,}")


def test_no_identity_in_reports_or_mlflow(project):
    ident = pd.read_parquet(project / "data/interim/identity.parquet")
    ids = set(ident["child_id"].dropna()) | set(ident["id_number"].dropna())
    lookups = [pd.read_parquet(project / f"data/interim/{t}.parquet") for t in ("caseworkers", "communities")]
    assert all(len(lookup) for lookup in lookups)  # the default export names directors and villages
    every_name = [*ident["name"].dropna(), *(n for lookup in lookups for n in lookup["name"].dropna())]
    names = sorted({n for n in every_name if len(n) >= 3}, key=len, reverse=True)
    name_pattern = re.compile("|".join(map(re.escape, names)))
    # provider contacts and directors' phones are identity too (service directory, issue 16)
    ids |= set(pd.read_parquet(project / "data/interim/service_providers.parquet")["contact"].dropna())
    ids |= set(lookups[0]["phone"].dropna())
    # other departments' persons (issue 17): their ids, ID numbers and names as they typed them
    persons = pd.read_parquet(project / "data/interim/persons.parquet")
    ids |= set(persons["source_person_id"]) | set(persons["id_number"].dropna())
    every_name += [n for n in persons["name"].dropna() if len(n) >= 3]
    names = sorted(set(names) | {n for n in every_name if len(n) >= 3}, key=len, reverse=True)
    name_pattern = re.compile("|".join(map(re.escape, names)))
    assert {"linkage.json", "screening.json"} <= {p.name for p in (project / "reports").iterdir()}
    assert ids and names
    services = [p for p in (project / "reports/services").rglob("*") if p.is_file()]
    assert {p.name for p in services} >= {"services.json", "unmet_need.csv", "providers.csv"}
    haystacks = [p for p in (project / "reports").rglob("*") if p.is_file()]
    assert {p.name for p in (project / "reports/monitoring").iterdir()} == {"monitoring.json", "index.html"}
    assert {p.name for p in (project / "reports/reviews").iterdir()} == {"reviews.json", "index.html"}
    haystacks += [p for p in (project / "mlartifacts").rglob("*") if p.is_file()]
    haystacks += [project / "mlflow.db", project / "data/processed/features.parquet"]
    haystacks += list((project / "data/interim/quarantine").glob("*.csv"))
    for path in haystacks:
        if path.suffix == ".parquet":
            text = pd.read_parquet(path).astype(str).to_csv()
        else:
            text = path.read_bytes().decode("utf-8", errors="ignore")
        leaked = set(ID_TOKEN.findall(text)) & ids
        assert not leaked, f"{path.relative_to(project)} carries raw ids: {sorted(leaked)[:3]}"
        name = name_pattern.search(text)
        assert name is None, f"{path.relative_to(project)} carries a name"


def test_the_referral_plan_reconciles_with_unmet_need_and_stays_out_of_reports(project):
    summary = json.loads((project / "reports/services/services.json").read_text())
    totals = summary["totals"]
    assert summary["directory"] == "given" and summary["reconciles"]
    assert totals["needs"] == totals["matched"] + totals["unmet"] and totals["unmet"] > 0 and totals["matched"] > 0
    assert any((project / "data/referrals").glob("*/providers/*.csv"))
    assert not any((project / "reports").rglob("referrals.csv"))


def test_watchlists_hold_only_their_county(project):
    children = pd.read_parquet(project / "data/interim/children.parquet")
    ident = pd.read_parquet(project / "data/interim/identity.parquet").merge(children, on="child_pid")
    county_of = dict(zip(ident["child_id"], ident["county_code"], strict=True))
    for csv in (project / "data/watchlists").glob("*/watchlist.csv"):
        frame = pd.read_csv(csv, encoding="utf-8-sig", dtype=str)
        id_col = next(c for c in frame.columns if c in ("child_id", "儿童编号"))
        ids = frame[id_col].dropna().str.lstrip("'")
        assert ids.map(county_of).eq(csv.parent.name).all(), csv


def test_cli_validate_reports_defects(project):
    proc = run([str(BIN / "safetynet"), "validate", "data/synthetic"], project, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the synthetic export carries injected defects
    assert "unknown_code" in proc.stdout


def test_cli_errors_are_one_line(project):
    proc = run([str(BIN / "safetynet"), "explain", "--features", "does/not/exist.parquet"], project, check=False)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "does/not/exist" in proc.stderr
    proc = run([str(BIN / "safetynet"), "validate", "does/not/exist"], project, check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stdout and "Traceback" not in proc.stderr


def test_notebooks_execute(project):
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    for script in sorted((project / "notebooks").glob("*.py")):
        notebook = jupytext.read(script)
        NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(project)}}).execute()
        nbformat.validate(notebook)


def test_dvc_exp_run_makes_a_comparable_experiment(project):
    run(["dvc", "exp", "run", "-S", "train.lightgbm.learning_rate=0.1", "--name", "lr01"], project)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    assert "lr01" in json.dumps(shown)
    import sqlite3

    with sqlite3.connect(project / "mlflow.db") as db:
        runs = db.execute("select count(*) from runs").fetchone()[0]
    assert runs >= 2


def _scored_snapshot(project: Path) -> tuple[bytes, pd.DataFrame]:
    """The served model's bytes, and explain's scores next to a rescoring with models/served."""
    from src.models.scoring import CalibratedModel

    model = CalibratedModel.from_dir(project / "models/served")
    explained = pd.read_parquet(project / "data/processed/explanations.parquet")
    as_of = explained["as_of"].max()
    features = pd.read_parquet(project / "data/processed/features.parquet", filters=[("as_of", "==", as_of)])
    rows = explained[(explained["as_of"] == as_of) & explained["score"].notna()]
    rescored = features.set_index("child_pid").loc[rows["child_pid"]]
    rows = rows.assign(rescored=model.predict_proba(rescored.reset_index()))
    return (project / "models/served/booster.txt").read_bytes(), rows


def test_an_experiment_never_changes_what_a_later_repro_scores(project):
    """Issue 10's sequence: exp run moves `champion`; restore the workspace; plain repro."""
    run(["git", "checkout", "--", "params.yaml"], project)  # undo the earlier experiment
    run(["dvc", "repro"], project)
    run(["git", "add", "dvc.lock"], project)
    run(["git", "commit", "-qm", "the pipeline's lock"], project)
    booster, rows = _scored_snapshot(project)
    assert (rows["score"] - rows["rescored"]).abs().max() < 1e-12  # explain scored with models/served
    run(["dvc", "exp", "run", "-S", "train.lightgbm.learning_rate=0.08", "--name", "lr008"], project)
    assert (project / "models/served/booster.txt").read_bytes() != booster  # the experiment's model
    run(["git", "checkout", "--", "params.yaml", "dvc.lock"], project)
    run(["dvc", "checkout"], project)
    run(["dvc", "repro"], project)
    after_booster, after = _scored_snapshot(project)
    assert after_booster == booster
    assert after["score"].to_numpy().tolist() == rows["score"].to_numpy().tolist()
    decision = json.loads((project / "models/promotion.json").read_text())
    from src.models.promotion import model_digest

    assert decision["model_digest"] == model_digest(project / "models")
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert decision["model"] == metrics["test"][decision["metric"]]


def test_a_killed_stage_leaves_no_debris(project):
    import signal
    import time

    proc = subprocess.Popen(["dvc", "repro", "-s", "-f", "features"], cwd=project, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if list((project / "data/processed").glob(".features.parquet.*.tmp")):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run(["dvc", "repro"], project)
    debris = [p for p in project.rglob(".*.tmp") if ".dvc" not in p.parts and ".git" not in p.parts]
    assert debris == []
    assert not any((project / ".tmp").iterdir()) if (project / ".tmp").exists() else True
    assert "Running stage" not in run(["dvc", "repro"], project).stdout


NOTE_TOKEN = "模拟复核记录"  # every simulated review note carries it: it must reach no list, plan, report or quarantine


@pytest.mark.slow
def test_two_months_of_reviews_shape_the_next_list(project, tmp_path):
    """Month 1 (the month before the snapshot): list -> XLSX filled by the generator's simulated
    directors (openpyxl; outcomes drawn from its truth) -> `safetynet reviews import` (twice: no-op)
    -> ingest -> month 2's list shows the cooldown, follow-up and escalation sections; the confirmed
    share of the ingested reviews matches the generator's truth within a binomial interval."""
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    explained = pd.read_parquet(project / "data/processed/explanations.parquet")
    month2 = explained["as_of"].max()
    month1 = (month2 - pd.DateOffset(months=1)).date().isoformat()
    reviews_dir, m1 = tmp_path / "reviews", tmp_path / "m1"
    params["explain"]["as_of"] = month1
    params["data"]["reviews_dir"] = str(reviews_dir)
    (tmp_path / "p1.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    cli = ["python", "-m", "src.cli", "--params", str(tmp_path / "p1.yaml")]
    run([*cli, "explain", "--out", str(m1 / "e.parquet"), "--contributions", str(m1 / "c.parquet"),
         "--reports", str(m1 / "r")], project)  # fmt: skip
    run([*cli, "referrals", "--explanations", str(m1 / "e.parquet"), "--out", str(m1 / "ref"), "--reports",
         str(m1 / "rs")], project)  # fmt: skip
    run([*cli, "watchlist", "--explanations", str(m1 / "e.parquet"), "--contributions", str(m1 / "c.parquet"),
         "--referrals", str(m1 / "ref"), "--out", str(m1 / "w")], project)  # fmt: skip
    export = pd.Timestamp(json.loads((project / "data/interim/manifest.json").read_text())["export_date"])
    files = sorted((m1 / "w").glob("*/watchlist.xlsx"))
    loop = load_params(tmp_path / "p1.yaml").synthetic.review_loop
    reviewed = fill_watchlists(files, pd.read_parquet(project / "data/synthetic/truth.parquet"), loop, export.date(),
                               seed=params["base"]["seed"])  # fmt: skip
    drawn = reviewed.set_index("child_id")["outcome"].to_dict()
    cols = TEXT[params["watchlist"]["language"]]["columns"]
    for _ in range(2):
        run([*cli, "reviews", "import", *map(str, files)], project)
        digest = (reviews_dir / "casework_reviews.csv").read_bytes()
    assert digest == (reviews_dir / "casework_reviews.csv").read_bytes()
    interims = []
    for name in ("i2", "i2b"):
        run([*cli, "ingest", "--raw", "data/synthetic", "--interim", str(tmp_path / name), "--quality",
             str(tmp_path / f"{name}.json")], project)  # fmt: skip
        interims.append({p.name: p.read_bytes() for p in (tmp_path / name).rglob("*") if p.is_file()})
    assert interims[0] == interims[1]  # deterministic interim from the imported reviews
    params["explain"]["as_of"] = None
    (tmp_path / "p2.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    cli2 = ["python", "-m", "src.cli", "--params", str(tmp_path / "p2.yaml")]
    i2 = str(tmp_path / "i2")
    run([*cli2, "referrals", "--interim", i2, "--out", str(tmp_path / "ref2"), "--reports", str(tmp_path / "rs2")], project)
    run([*cli2, "watchlist", "--interim", i2, "--referrals", str(tmp_path / "ref2"), "--out", str(tmp_path / "w2")], project)
    rows = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in (tmp_path / "w2").glob("*/watchlist.csv")])
    section = rows.set_index(cols["child_id"])[cols["section"]]
    sections = TEXT[params["watchlist"]["language"]]["sections"]
    scored = set(section.index[section != sections["already_out"]])  # out of a net since: re-engage instead
    unreachable = [c for c, o in drawn.items() if o == "unreachable" and c in scored]
    referred = [c for c, o in drawn.items() if o == "referred" and c in scored]
    no_risk = [c for c, o in drawn.items() if o == "visited_no_risk" and c in scored]
    assert unreachable and referred and no_risk
    assert (section[unreachable] == sections["escalated"]).all()
    assert (section[referred] == sections["follow_up"]).all()  # followed up after follow_up_days (30)
    cooled = section[no_risk].eq(sections["cooldown"])
    assert cooled.mean() > 0.5 and section[no_risk][~cooled].isin([sections["above_cut"], sections["below_cut"]]).all()
    ranks = rows.set_index(cols["child_id"])[cols["rank"]]
    assert (ranks[unreachable].astype(int) <= params["base"]["children_per_caseworker"]).all()
    pages = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "w2").glob("*/directors/*.html"))
    assert "上月复核覆盖" in pages and 'class="watchlist review-cooldown"' in pages
    ingested = pd.read_parquet(tmp_path / "i2/casework_reviews.parquet", columns=["child_pid", "outcome"])
    reached = ingested[ingested["outcome"] != "unreachable"]
    truth = pd.read_parquet(project / "data/interim/truth.parquet")
    p_true = truth[truth["as_of"] == pd.Timestamp(month1)].set_index("child_pid")["p_true"][reached["child_pid"]]
    confirmed, expected = reached["outcome"].isin(["visited_risk", "referred"]).mean(), p_true.mean()
    assert len(reached) == (reviewed["outcome"] != "unreachable").sum() >= 50
    assert abs(confirmed - expected) < 3 * np.sqrt(p_true.mul(1 - p_true).sum()) / len(reached)
    run([*cli2, "reviews-report", "--interim", i2, "--out", str(tmp_path / "rv2"), "--metrics",
         str(tmp_path / "rv2.json")], project)  # fmt: skip
    assert json.loads((tmp_path / "rv2/reviews.json").read_text(encoding="utf-8"))["has_reviews"]
    for path in [*(tmp_path / "i2/quarantine").glob("*.csv"), *(tmp_path / "rs2").rglob("*.*"), *(tmp_path / "rv2").rglob("*.*"),
                 *(tmp_path / "ref2").rglob("*.*"), *(tmp_path / "w2").rglob("*.*"), *(project / "reports").rglob("*.*")]:  # fmt: skip
        assert NOTE_TOKEN.encode() not in path.read_bytes(), path
