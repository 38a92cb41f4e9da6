"""Benchmark the features stage: wall time and peak memory, and DuckDB vs plain pandas.

    python benchmarks/bench_features.py --n-children 20000 [--workdir /tmp/bench_features] [--reuse]

Builds a synthetic export with src.data.generate (parquet) and ingests it (not timed), runs
the features stage in a child process (wall time, peak RSS), then times a plain pandas
groupby implementation of a representative subset of the features (absence rates, visit
counts and concerns, rehab misses, outpatient visits, days since the last visit) against
the same subset in DuckDB (the stage's own family queries), checks that both agree with
features.parquet, and prints one JSON line. Do not run it at 1M children on a shared box.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.config import load_params  # noqa: E402
from src.data import contract  # noqa: E402
from src.features import catalogue, features, queries  # noqa: E402

log = logging.getLogger("bench_features")
SUBSET_FEATURES = 7
CONCERNS = list(contract.CONCERNS)


def build_interim(workdir: Path, n_children: int, reuse: bool) -> Path:
    from src.data import generate, ingest

    interim = workdir / "interim"
    if reuse and (interim / "manifest.json").exists():
        return interim
    params = load_params(
        ROOT / "params.yaml", {"synthetic": {"n_children": n_children, "file_format": "parquet"}}
    )
    started = time.perf_counter()
    generate.run(workdir / "raw", params)
    ingest.run(workdir / "raw", interim, workdir / "data_quality.json", params)
    log.info("synthetic export + ingest: %.1f s", time.perf_counter() - started)
    return interim


def time_stage(interim: Path, out: Path) -> tuple[float, float]:
    """Run the stage in a child process; return (seconds, peak RSS of the child in GiB)."""
    code = (
        "import logging; logging.basicConfig(level=logging.INFO);"
        "from src.config import load_params; from src.features import features;"
        f"features.run({str(interim)!r}, {str(out)!r}, {str(out.with_suffix('.json'))!r}, load_params('params.yaml'))"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kib / 2**20


def _window(frame: pd.DataFrame, col: str, as_of: pd.Timestamp, days: int) -> pd.DataFrame:
    return frame[(frame[col] <= as_of) & (frame[col] > as_of - pd.Timedelta(days=days))]


def _pandas_one_date(tables: dict, as_of: pd.Timestamp, pids: pd.Series) -> pd.DataFrame:
    cal, absences, visits, med = tables["cal"], tables["absences"], tables["visits"], tables["med"]
    a90, v365, m180 = (
        _window(absences, "absence_date", as_of, 90),
        _window(visits, "visit_date", as_of, 365),
        _window(med, "event_date", as_of, 180),
    )
    v180, v90 = _window(v365, "visit_date", as_of, 180), _window(v365, "visit_date", as_of, 90)
    school_days = int(((cal <= as_of) & (cal > as_of - pd.Timedelta(days=90))).sum())
    out = pd.DataFrame(index=pd.Index(pids, name="child_pid"))
    out["as_of"] = as_of
    counts = {
        "all_90": a90.groupby("child_pid")["days"].sum(),
        "unexcused_90": a90[a90["absence_type"] == "unexcused"].groupby("child_pid")["days"].sum(),
        "visits_180d": v180.groupby("child_pid").size(),
        "visit_concerns_90d": v90[v90["any_concern"]].groupby("child_pid").size(),
        "rehab_missed_180d": m180[m180["event_type"] == "rehab_missed"].groupby("child_pid").size(),
        "outpatient_visits_180d": m180[m180["event_type"] == "outpatient"]
        .groupby("child_pid")
        .size(),
    }
    for name, series in counts.items():
        out[name] = series.reindex(out.index).fillna(0)
    out["absence_rate_all_90d"] = (out["all_90"] / school_days).clip(upper=1)
    out["absence_rate_unexcused_90d"] = (out["unexcused_90"] / school_days).clip(upper=1)
    last_visit = v365.groupby("child_pid")["visit_date"].max().reindex(out.index)
    out["days_since_last_visit"] = (as_of - last_visit).dt.days.fillna(365).clip(upper=365)
    return out.reset_index()


def pandas_subset(interim: Path, keys: pd.DataFrame) -> pd.DataFrame:
    """The subset with plain pandas: filter each window per as-of date, then groupby child."""
    cal = pd.read_parquet(interim / "school_calendar.parquet")["date"]
    absences = pd.read_parquet(interim / "school_absences.parquet")
    visits = pd.read_parquet(interim / "casework_visits.parquet")
    visits["any_concern"] = visits[CONCERNS].sum(axis=1) > 0
    tables = {
        "cal": cal,
        "absences": absences[absences["absence_date"].isin(cal)],
        "visits": visits,
        "med": pd.read_parquet(interim / "medical_events.parquet"),
    }
    parts = [
        _pandas_one_date(tables, as_of, rows["child_pid"]) for as_of, rows in keys.groupby("as_of")
    ]
    return pd.concat(parts, ignore_index=True)


SUBSET_SQL = """
    WITH ab AS (
        SELECT e.child_idx, a.as_of, SUM(e.days) AS all_90,
               SUM(e.days) FILTER (WHERE e.absence_type = 'unexcused') AS unexcused_90
        FROM f_abs AS e JOIN f_dates AS a ON e.d <= a.as_of AND e.d > a.as_of - INTERVAL '90' DAY
        GROUP BY e.child_idx, a.as_of),
    vi AS (
        SELECT e.child_idx, a.as_of, MAX(e.d) AS last_visit,
               COUNT(*) FILTER (WHERE e.d > a.as_of - INTERVAL '180' DAY) AS visits_180d,
               COUNT(*) FILTER (WHERE e.d > a.as_of - INTERVAL '90' DAY AND e.c_basic_needs + e.c_health
                   + e.c_education + e.c_mental_health + e.c_safety + e.c_guardianship > 0) AS visit_concerns_90d
        FROM f_visits AS e JOIN f_dates AS a ON e.d <= a.as_of AND e.d > a.as_of - INTERVAL '365' DAY
        GROUP BY e.child_idx, a.as_of),
    md AS (
        SELECT e.child_idx, a.as_of,
               COUNT(*) FILTER (WHERE e.event_type = 'rehab_missed') AS rehab_missed_180d,
               COUNT(*) FILTER (WHERE e.event_type = 'outpatient') AS outpatient_visits_180d
        FROM f_med AS e JOIN f_dates AS a ON e.d <= a.as_of AND e.d > a.as_of - INTERVAL '180' DAY
        GROUP BY e.child_idx, a.as_of)
    SELECT k.child_pid, CAST(k.as_of AS DATE) AS as_of,
           LEAST(1.0, COALESCE(ab.all_90, 0) / a.sd_90) AS absence_rate_all_90d,
           LEAST(1.0, COALESCE(ab.unexcused_90, 0) / a.sd_90) AS absence_rate_unexcused_90d,
           COALESCE(vi.visits_180d, 0) AS visits_180d, COALESCE(vi.visit_concerns_90d, 0) AS visit_concerns_90d,
           LEAST(365, COALESCE(date_diff('day', vi.last_visit, CAST(k.as_of AS DATE)), 365)) AS days_since_last_visit,
           COALESCE(md.rehab_missed_180d, 0) AS rehab_missed_180d,
           COALESCE(md.outpatient_visits_180d, 0) AS outpatient_visits_180d
    FROM keys AS k JOIN f_kids AS c ON c.child_pid = k.child_pid
    JOIN f_dates AS a ON a.as_of = CAST(k.as_of AS DATE)
    LEFT JOIN ab ON ab.child_idx = c.child_idx AND ab.as_of = a.as_of
    LEFT JOIN vi ON vi.child_idx = c.child_idx AND vi.as_of = a.as_of
    LEFT JOIN md ON md.child_idx = c.child_idx AND md.as_of = a.as_of"""


def duckdb_subset(interim: Path, keys: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """Seconds for the same subset in DuckDB, written the stage's way (range join + FILTER)."""
    con = features.open_interim(interim)
    features.prepare_tables(con)  # the stage prepares once per run, not per feature
    con.register("keys", keys)
    started = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TEMP TABLE f_dates AS {queries.as_of_table_sql('keys')}")
    result = con.sql(SUBSET_SQL).to_arrow_table().to_pandas()
    seconds = time.perf_counter() - started
    con.close()
    return seconds, result


def check_agreement(baseline: pd.DataFrame, built: pd.DataFrame) -> None:
    """Same values; the stage's rates are NaN for children not in school, so compare the known ones."""
    merged = baseline.merge(built, on=["child_pid", "as_of"], suffixes=("_pd", ""))
    assert len(merged) == len(baseline) == len(built)
    for col in (
        "visits_180d",
        "visit_concerns_90d",
        "rehab_missed_180d",
        "outpatient_visits_180d",
        "days_since_last_visit",
    ):
        np.testing.assert_allclose(merged[f"{col}_pd"], merged[col], err_msg=col)
    known = merged["absence_rate_all_90d"].notna()
    for col in ("absence_rate_all_90d", "absence_rate_unexcused_90d"):
        np.testing.assert_allclose(
            merged.loc[known, f"{col}_pd"], merged.loc[known, col], err_msg=col
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-children", type=int, default=20000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_features"))
    parser.add_argument("--reuse", action="store_true", help="reuse an existing interim folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    interim = build_interim(args.workdir, args.n_children, args.reuse)
    out = args.workdir / "features.parquet"
    stage_seconds, peak_gib = time_stage(interim, out)
    columns = [
        "child_pid",
        "as_of",
        "absence_rate_all_90d",
        "absence_rate_unexcused_90d",
        "visits_180d",
        "visit_concerns_90d",
        "days_since_last_visit",
        "rehab_missed_180d",
        "outpatient_visits_180d",
    ]
    built = pd.read_parquet(out, columns=columns)
    keys = built[["child_pid", "as_of"]]
    started = time.perf_counter()
    baseline = pandas_subset(interim, keys)
    pandas_seconds = time.perf_counter() - started
    duck_seconds, duck = duckdb_subset(interim, keys)
    check_agreement(baseline, built)
    check_agreement(baseline, duck.assign(as_of=duck["as_of"].astype("datetime64[us]")))
    print(
        json.dumps(
            {
                "n_children": args.n_children,
                "rows": len(built),
                "as_of_dates": int(keys["as_of"].nunique()),
                "stage_seconds": round(stage_seconds, 1),
                "stage_peak_rss_gib": round(peak_gib, 2),
                "subset_pandas_seconds": round(pandas_seconds, 2),
                "subset_duckdb_seconds": round(duck_seconds, 2),
                "subset_speedup": round(pandas_seconds / duck_seconds, 1),
                # per feature: the pandas subset computes 7 features; the stage all of the catalogue
                "per_feature_speedup_vs_whole_stage": round(
                    (pandas_seconds / SUBSET_FEATURES) / (stage_seconds / len(catalogue.CATALOGUE)),
                    1,
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
