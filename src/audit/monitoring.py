"""Monitoring while labels mature (issue 15): the scoring month against the training window.

Labels arrive label.horizon_days late, so each scoring month is checked on what is known now:
- feature drift: PSI per model feature (src/audit/drift.py), with the catalogue's system, of the
  scoring month's scored children (not already out) against the training window's
  (models/train_summary.json `split.train`) child-months with a full history (months_of_history
  at its cap: the scoring month has one, so early short-history months would read as drift), on at
  most monitoring.reference_rows seeded rows; calendar features (CALENDAR_FEATURES) are left out;
- missing-share drift per source table: the share of scored children with any record in the
  monitoring.record_window_days before the as-of date, scoring month vs the training window's mean;
- score drift: PSI and mean of the scoring month's calibrated scores (explanations) against the
  month before's, scored by the same served model (explanations hold both; a comparison with
  the evaluated model's test window would mix two models); the test window's scores only when
  no earlier month was scored;
- expected precision at capacity: the mean calibrated probability of the children above their
  director's cut (risk alone, before the review loop's cooldown);
- realised vs expected for every matured month (the test window's listed children).
Writes reports/monitoring/ (monitoring.json, index.html) and a small dvc metrics file. `alerts`
lists every crossed threshold; the model card and the watchlist index show them as a banner.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import jinja2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from src.atomic import atomic_dir, write_json
from src.audit import drift
from src.delivery.capacity import director_cut, with_directors
from src.errors import SafetynetError
from src.features import catalogue
from src.run_facts import read_train_summary

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
SOURCES = {  # source table -> its event date column
    "casework_visits": "visit_date",
    "medical_events": "event_date",
    "protection_events": "event_date",
    "school_absences": "absence_date",
    "school_enrollment": "event_date",
    "welfare_events": "event_date",
}
# Model features that move with the calendar by construction (the scoring month is one month of
# the year and the latest history; the training window spans many): no PSI for them.
CALENDAR_FEATURES = ("month_of_year", "school_period", "months_of_history", "months_in_registry")


def feature_specs(features: list[str]) -> list[tuple[str, str, bool]]:
    """(feature, catalogue system, categorical) for each model feature but the calendar ones."""
    return [(n, catalogue.spec(n).system, catalogue.spec(n).kind == "categorical") for n in features
            if n not in CALENDAR_FEATURES]  # fmt: skip


def source_presence(keys, events: dict, window_days: int, con=None) -> pd.DataFrame:
    """Per (table, as_of): the share of `keys` (child_pid, as_of) children with any row of that
    table (child_pid, d) in [as_of - window_days, as_of). One DuckDB range join per table.

    `keys` and each event table are a frame or a relation of `con` (read from parquet by DuckDB,
    so a million children's records never pass through pandas)."""
    con = con or duckdb.connect()
    _view(con, "keys", keys)
    totals = con.execute("SELECT as_of, count(*) AS n FROM keys GROUP BY as_of ORDER BY as_of").df()
    totals = totals.set_index("as_of")["n"]
    frames = []
    for table, source in sorted(events.items()):
        if isinstance(source, pd.DataFrame):
            source = source.rename(columns={source.columns[1]: "d"})
        _view(con, "events", source)
        found = con.execute(f"""
            WITH dates AS (SELECT DISTINCT as_of FROM keys),
            hits AS (
              SELECT DISTINCT e.child_pid, a.as_of FROM events e JOIN dates a
              ON e.d >= a.as_of - INTERVAL {int(window_days)} DAY AND e.d < a.as_of)
            SELECT k.as_of, count(*) AS n FROM keys k SEMI JOIN hits h
            ON k.child_pid = h.child_pid AND k.as_of = h.as_of GROUP BY k.as_of""").df()
        n = found.set_index("as_of")["n"].reindex(totals.index).fillna(0)
        frames.append(pd.DataFrame({"table": table, "as_of": totals.index, "share": (n / totals).to_numpy()}))
    con.close()
    present = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["table", "as_of", "share"])
    present["as_of"] = pd.to_datetime(present["as_of"]).dt.date.astype(str)
    return present


def _view(con, name: str, source) -> None:
    (con.from_df(source) if isinstance(source, pd.DataFrame) else source).create_view(name, replace=True)


def expected_at_capacity(scored: pd.DataFrame, per_caseworker: int) -> dict:
    """Mean calibrated score of the children above their director's cut (`scored`: child_pid,
    score, county_code, caseworker_id)."""
    listed = director_cut(scored, per_caseworker)
    listed = listed[listed["above_cut"]]
    return {"n_listed": int(len(listed)), "expected_precision": round(float(listed["score"].mean()), 6)
            if len(listed) else None}  # fmt: skip


def alerts_of(report: dict, expected_drop: float) -> list[str]:
    """One English line per crossed threshold (the banner text)."""
    lines = [f"feature {r['feature']} ({r['system']}): PSI {r['psi']:.3f}" for r in report["features"] if r["alert"]]
    lines += [f"source table {r['table']}: {r['share_current']:.1%} of scored children have a record "
              f"(training window {r['share_reference']:.1%})" for r in report["sources"] if r["alert"]]  # fmt: skip
    score = report["score"]
    if score["alert"]:
        lines.append(f"calibrated scores: PSI {score['psi']:.3f}, mean {score['mean_current']:.3f} "
                     f"(the month before {score['mean_reference']:.3f})")  # fmt: skip
    lines += [f"matured month {r['as_of']}: realised precision {r['realised_precision']:.3f} vs expected "
              f"{r['expected_precision']:.3f}" for r in report["matured"] if r["alert"]]  # fmt: skip
    matured = [r["expected_precision"] for r in report["matured"]]
    current = report["capacity"]["expected_precision"]
    if matured and current is not None and current < (1 - expected_drop) * float(np.mean(matured)):
        lines.append(f"expected precision at capacity {current:.3f} is below the matured months' "
                     f"{float(np.mean(matured)):.3f} by more than {expected_drop:.0%}")  # fmt: skip
    return lines


def build_report(reference: pd.DataFrame, current: pd.DataFrame, specs, present: pd.DataFrame, scoring_as_of: str,
                 reference_dates: list[str], reference_scores: np.ndarray, scored: pd.DataFrame,
                 predictions: pd.DataFrame, params) -> dict:  # fmt: skip
    """The whole report from in-memory frames (pure)."""
    m = params.monitoring
    report = {
        "scoring_as_of": scoring_as_of,
        "training_window": [reference_dates[0], reference_dates[-1]] if reference_dates else [],
        "n_reference_rows": int(len(reference)), "n_scored": int(len(current)),
        "thresholds": dict(vars(m)),
        "features": drift.feature_drift(reference, current, specs, m.feature_psi),
        "sources": drift.source_shares(present, scoring_as_of, reference_dates, m.source_drop),
        "score": drift.score_drift(reference_scores, scored["score"].to_numpy(), m.score_psi, m.score_mean_shift),
        "capacity": expected_at_capacity(scored, params.base.children_per_caseworker),
        "matured": drift.realised_vs_expected(predictions, m.realised_gap),
    }  # fmt: skip
    report["alerts"] = alerts_of(report, m.expected_drop)
    return report


def metrics_of(report: dict) -> dict:
    """The small dvc metrics file."""
    psis = [r["psi"] for r in report["features"]]
    return {
        "alerts": len(report["alerts"]), "max_feature_psi": max(psis) if psis else 0.0,
        "score_psi": report["score"]["psi"], "expected_precision_at_capacity": report["capacity"]["expected_precision"],
    }  # fmt: skip


def render_page(report: dict) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    return env.get_template("monitoring.html.j2").render(r=report)


# ---------------------------------------------------------------------------- I/O


def scanned(path: Path, dates: list[pd.Timestamp]) -> tuple[ds.Dataset, pc.Expression]:
    """features.parquet and the filter of its scored rows (not already out) at `dates`."""
    dataset = ds.dataset(path, format="parquet")
    wanted = pa.array(dates, type=dataset.schema.field("as_of").type)
    return dataset, pc.field("as_of").isin(wanted) & (pc.field("already_out") == 0)


def read_reference(path: Path, columns: list[str], dates: list[pd.Timestamp], max_rows: int, seed: int) -> pd.DataFrame:
    """The training window's scored child-months with a full history (all of them when none
    has one), at most `max_rows` seeded ones: positions drawn before reading, rows kept while
    streaming, so the whole window is never held."""
    dataset, condition = scanned(path, dates)
    if "months_of_history" in columns:  # like with like: every window after the history start
        full = condition & (pc.field("months_of_history") >= catalogue.HISTORY_CAP_MONTHS)
        condition = full if dataset.count_rows(filter=full) else condition
    n = dataset.count_rows(filter=condition)
    keep = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False)) if n > max_rows else None
    scanner = dataset.scanner(columns=columns, filter=condition, batch_size=1 << 18, batch_readahead=1,
                              fragment_readahead=1)  # fmt: skip
    batches, start = [], 0
    for batch in scanner.to_batches():
        if keep is not None:
            inside = keep[(keep >= start) & (keep < start + len(batch))] - start
            start += len(batch)
            batch = batch.take(pa.array(inside))
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=scanner.projected_schema).to_pandas()


def read_current(path: Path, columns: list[str], scoring: pd.Timestamp) -> pd.DataFrame:
    dataset, condition = scanned(path, [scoring])
    return dataset.to_table(columns=columns, filter=condition).to_pandas()


def presence_sources(con, features_path: Path, dates: list[pd.Timestamp], interim_dir: Path):
    """DuckDB relations of the scored (child_pid, as_of) at `dates` and of each source table's
    (child_pid, d) records: read straight from parquet."""
    listed = ", ".join(f"TIMESTAMP '{d}'" for d in dates)
    keys = con.read_parquet(str(features_path)).filter(f"already_out = 0 AND as_of IN ({listed})")
    empty = pd.DataFrame({"child_pid": pd.Series(dtype=str), "d": pd.Series(dtype="datetime64[us]")})  # absent: share 0
    events = {table: con.read_parquet(str(interim_dir / f"{table}.parquet")).project(f"child_pid, {column} AS d")
              if (interim_dir / f"{table}.parquet").exists() else empty for table, column in SOURCES.items()}  # fmt: skip
    return keys.project("child_pid, as_of"), events


def run(features_path, interim_dir, explanations_path, predictions_path, models_dir, out_dir, metrics_path,
        params) -> dict:  # fmt: skip
    """Read the stage inputs, write reports/monitoring/ and the metrics file atomically."""
    interim_dir, out_dir = Path(interim_dir), Path(out_dir)
    summary = read_train_summary(Path(models_dir))
    features = list(summary["features"])
    reference_dates = sorted(summary["split"]["train"])
    explanations = pd.read_parquet(explanations_path, columns=["child_pid", "as_of", "score"])
    if explanations.empty:
        raise SafetynetError(f"{explanations_path}: no scored month; run `dvc repro explain` first")
    scoring = pd.Timestamp(explanations["as_of"].max())  # the month the watchlist hands out
    before = explanations.loc[(explanations["as_of"] < scoring) & explanations["score"].notna(), ["as_of", "score"]]
    before = before.loc[before["as_of"] == before["as_of"].max(), "score"].to_numpy()
    explanations = explanations[explanations["as_of"] == scoring]
    scoring_as_of = scoring.date().isoformat()
    window = [pd.Timestamp(d) for d in reference_dates]
    columns = ["child_pid", "as_of", *features]
    reference = read_reference(Path(features_path), columns, window, params.monitoring.reference_rows,
                               params.base.seed)  # fmt: skip
    current = read_current(Path(features_path), columns, scoring)
    con = duckdb.connect()
    keys, events = presence_sources(con, Path(features_path), [*window, scoring], interim_dir)
    present = source_presence(keys, events, params.monitoring.record_window_days, con)
    children = pd.read_parquet(interim_dir / "children.parquet", columns=["child_pid", "county_code", "caseworker_id"])
    scored = explanations[explanations["score"].notna()][["child_pid", "score"]]
    scored = with_directors(scored.merge(children[["child_pid", "county_code"]], on="child_pid", how="left"), children)
    predictions = pd.read_parquet(predictions_path, columns=["as_of", "score", "label", "selected"])
    reference_scores = before if len(before) else predictions["score"].to_numpy()
    report = build_report(reference, current, feature_specs(features), present, scoring_as_of, reference_dates,
                          reference_scores, scored, predictions, params)  # fmt: skip
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / drift.MONITORING_FILE, report)
        (tmp / "index.html").write_text(render_page(report), encoding="utf-8")
    write_json(Path(metrics_path), metrics_of(report))
    log.info("monitoring: %s, %d alerts", scoring_as_of, len(report["alerts"]))
    return metrics_of(report)
