"""Monitoring while labels mature (issue 15): the scoring month against the training window.

Labels arrive label.horizon_days late, so each scoring month is checked on what is known now:
- feature drift: PSI per model feature (src/audit/drift.py), with the catalogue's system, of the
  scoring month's scored children (not already out) against the training window's
  (models/train_summary.json `split.train`) child-months with a full history (months_of_history
  at its cap: the scoring month has one, so early short-history months would read as drift), on at
  most monitoring.reference_rows seeded rows; calendar features (CALENDAR_FEATURES) are left out;
- missing-share drift per source table: the share of scored children with any record in the
  monitoring.record_window_days before the as-of date, scoring month vs the training window's mean
  (the records stream through once, each marking the as-of dates it covers);
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


def source_presence(keys, events: dict, window_days: int) -> pd.DataFrame:
    """Per (table, as_of): the share of `keys` (child, as_of) children with any row of that
    table (child, d) in [as_of - window_days, as_of).

    `child` is a child's row number (0, 1, ...). `keys` and each event table are a frame or an
    iterable of record batches (streamed from parquet, so a million children's records are never
    held at once). Each record marks the as-of dates it covers, (d, d + window_days], in a
    children x dates table of flags: no join, and no pair of child and date is materialised."""
    parts = [(b.column(0).to_numpy(), _days(b.column(1))) for b in _batches(keys)]
    key_row = np.concatenate([row for row, _ in parts] or [np.empty(0, dtype="int64")])
    key_days = np.concatenate([d for _, d in parts] or [np.empty(0, dtype="int64")])
    dates = np.unique(key_days)
    key_col = np.searchsorted(dates, key_days)
    totals = np.bincount(key_col, minlength=len(dates))
    frames = []
    for table, source in sorted(events.items()):
        covered = np.zeros((int(key_row.max(initial=-1)) + 1, len(dates)), dtype=bool)
        for batch in _batches(source):
            row, d = batch.column(0).to_numpy(), _days(batch.column(1))
            keep = (row < len(covered)) & (d != np.iinfo("int64").min)  # a scored child, a known date
            row, d = row[keep], d[keep]
            first = np.searchsorted(dates, d, side="right")  # the first as-of date after the record
            stop = np.searchsorted(dates, d + int(window_days), side="right")  # past the last one it reaches
            for step in range(int((stop - first).max(initial=0))):
                inside = first + step < stop
                covered[row[inside], first[inside] + step] = True
        found = np.bincount(key_col[covered[key_row, key_col]], minlength=len(dates))
        frames.append(pd.DataFrame({"table": table, "as_of": dates.astype("datetime64[D]"), "share": found / totals}))
    present = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["table", "as_of", "share"])
    present["as_of"] = pd.to_datetime(present["as_of"]).dt.date.astype(str)
    return present


def _batches(source):
    """Record batches of a frame, or the batches of an iterable as they come."""
    if isinstance(source, pd.DataFrame):
        return pa.Table.from_pandas(source, preserve_index=False).to_batches()
    return source


def _days(values) -> np.ndarray:
    """Days since 1970 of a date or timestamp column (int64 min where null)."""
    return values.to_numpy(zero_copy_only=False).astype("datetime64[D]").astype("int64")


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


# Streamed reads: no pre-buffering and one batch ahead, or the scanner holds most of the file.
STREAMED = ds.ParquetFileFormat(default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False))


def scanned(path: Path, dates: list[pd.Timestamp]) -> tuple[ds.Dataset, pc.Expression]:
    """features.parquet and the filter of its scored rows (not already out) at `dates`."""
    dataset = ds.dataset(path, format=STREAMED)
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
    kept, start = [], 0
    for batch in dataset.scanner(columns=columns, filter=condition, batch_size=1 << 18, batch_readahead=1,
                                 fragment_readahead=1).to_batches():  # fmt: skip
        if keep is not None:
            inside = keep[(keep >= start) & (keep < start + len(batch))] - start
            start += len(batch)
            batch = batch.take(pa.array(inside))
        kept.append(batch)
    return pa.Table.from_batches(kept, schema=pa.schema([dataset.schema.field(c) for c in columns])).to_pandas()


def read_current(path: Path, columns: list[str], scoring: pd.Timestamp) -> pd.DataFrame:
    dataset, condition = scanned(path, [scoring])
    return dataset.to_table(columns=columns, filter=condition).to_pandas()


def presence_sources(con, features_path: Path, dates: list[pd.Timestamp], interim_dir: Path):
    """Record batches of the scored (child, as_of) at `dates` and of each source table's
    (child, d) records, `child` a row number given by one DuckDB hash join per table, streamed
    from parquet one query at a time (a table not exported: no record, share 0)."""
    con.execute("CREATE OR REPLACE TEMP TABLE ids AS SELECT child_pid, row_number() OVER (ORDER BY child_pid) - 1 "
                "AS child FROM (SELECT DISTINCT child_pid FROM read_parquet(?))", [str(interim_dir / "children.parquet")])  # fmt: skip
    keys = _streamed(con, "SELECT i.child, k.as_of FROM read_parquet($path) k JOIN ids i USING (child_pid) "
                          "WHERE k.already_out = 0 AND k.as_of IN (SELECT unnest($dates))",
                     path=str(features_path), dates=list(dates))  # fmt: skip
    events = {table: _streamed(con, f"SELECT i.child, e.{column} FROM read_parquet($path) e JOIN ids i USING (child_pid)",
                               path=str(interim_dir / f"{table}.parquet"))
              if (interim_dir / f"{table}.parquet").exists() else [] for table, column in SOURCES.items()}  # fmt: skip
    return keys, events


def _streamed(con, query: str, **params):
    """The query's record batches, run only when the previous one is drained."""
    yield from con.sql(query, params=params).to_arrow_reader(1 << 20)


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
    children = pd.read_parquet(interim_dir / "children.parquet", columns=["child_pid", "county_code", "caseworker_id"])
    with duckdb.connect() as con:
        keys, events = presence_sources(con, Path(features_path), [*window, scoring], interim_dir)
        present = source_presence(keys, events, params.monitoring.record_window_days)
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
