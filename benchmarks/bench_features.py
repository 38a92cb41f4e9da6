"""Benchmark the features stage: wall and CPU time, peak memory, the floor, and DuckDB vs pandas.

    python benchmarks/bench_features.py --n-children 20000 [--workdir /tmp/bench_features] [--reuse]
    python benchmarks/bench_features.py --interim /tmp/m1/data/interim --no-subset --families

Builds a synthetic export with src.data.generate (parquet) and ingests it (not timed), or
reads an existing interim folder (``--interim``), runs the features stage in a child process
(wall time, CPU seconds user + sys, peak RSS), and measures the physical floor: one raw DuckDB
scan of every interim table the stage reads (every column decoded once). ``--families`` times
each step of the stage's loop (labels, each family query alone, the whole feature query) in
CPU seconds, summed over the batches of as-of dates. Unless ``--no-subset``, it then times a
plain pandas groupby implementation of a representative subset of the features (absence
rates, visit counts and concerns, rehab misses, outpatient visits, days since the last visit)
against the same subset in DuckDB (the stage's own family queries), checks that both agree
with features.parquet, and prints one JSON line. Do not run the subset at 1M children on a
shared box.
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
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.config import load_params  # noqa: E402
from src.data import contract  # noqa: E402
from src.features import catalogue, features, queries  # noqa: E402
from src.features.labels import build_labels, prepare_labels  # noqa: E402
from src.run_facts import read_export_date  # noqa: E402

log = logging.getLogger("bench_features")
SUBSET_COLUMNS = (
    "absence_rate_all_90d",
    "absence_rate_unexcused_90d",
    "visits_180d",
    "visit_concerns_90d",
    "days_since_last_visit",
    "rehab_missed_180d",
    "outpatient_visits_180d",
)
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


def time_stage(interim: Path, out: Path) -> tuple[float, float, float]:
    """Run the stage in a child process; return (seconds, CPU seconds, peak RSS in GiB)."""
    code = (
        "import logging; logging.basicConfig(level=logging.INFO);"
        "from src.config import load_params; from src.features import features;"
        f"features.run({str(interim)!r}, {str(out)!r}, {str(out.with_suffix('.json'))!r}, load_params('params.yaml'))"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20


def cpu_seconds(run) -> float:
    """CPU seconds (every thread of this process) that ``run()`` takes."""
    started = time.process_time()
    run()
    return time.process_time() - started


def floor_scan(interim: Path) -> dict:
    """The physical floor: one scan of every interim table the stage reads, every column decoded."""
    con = features.open_interim(interim)
    con.execute("SET enable_progress_bar = false")
    tables = [*features.INTERIM_TABLES, *sorted(features._relations(con) & {"registry_history"})]
    started, cpu = time.perf_counter(), 0.0
    for table in tables:
        columns = [row[0] for row in con.sql(f"DESCRIBE {table}").fetchall()]
        scan = ", ".join(f"SUM(hash({c}))" for c in columns)  # MAX could read the stats
        cpu += cpu_seconds(
            lambda t=table, s=scan: con.sql(f"SELECT COUNT(*), {s} FROM {t}").fetchall()
        )
    seconds = time.perf_counter() - started
    con.close()
    return {"floor_seconds": round(seconds, 1), "floor_cpu_seconds": round(cpu, 1)}


def family_breakdown(interim: Path) -> dict[str, float]:
    """CPU seconds of each step of the stage's loop over batches of as-of dates (each family's
    query alone, materialised; ``whole_query`` computes them all again with the final select)."""
    params = load_params(ROOT / "params.yaml")
    con = features.open_interim(interim, params.features.duckdb_memory_gb)
    export = read_export_date(interim)
    dates = features.as_of_dates(con, export, params.features)
    steps = {"prepare": cpu_seconds(lambda: features.prepare_tables(con))}
    steps["prepare_labels"] = cpu_seconds(lambda: prepare_labels(con, dates, params.label))
    for batch in features.batches(dates, features.dates_per_batch(con, params.features.batch_rows)):
        holder = {}

        def labels(batch=batch, holder=holder):
            holder["keys"] = build_labels(con, batch, export, params.label, prepared=True)

        timed = {"labels": cpu_seconds(labels)}
        keys = holder["keys"]
        con.register("f_keys_in", keys)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE f_dates AS {queries.as_of_table_sql('f_keys_in')}"
        )
        for alias, sql in queries.FAMILIES.items():
            timed[alias] = cpu_seconds(
                lambda s=sql: con.execute(f"CREATE OR REPLACE TEMP TABLE b AS {s}")
            )
        query = queries.feature_query(
            "f_keys_in", [c for c in keys.columns if c not in catalogue.KEY_COLUMNS]
        )
        timed["whole_query"] = cpu_seconds(
            lambda q=query: sum(b.num_rows for b in con.sql(q).to_arrow_reader(features.CHUNK_ROWS))
        )
        con.unregister("f_keys_in")
        for name, value in timed.items():
            steps[name] = steps.get(name, 0.0) + value
    con.close()
    return {name: round(value, 1) for name, value in steps.items()}


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
    """Same values where the stage's are known: it leaves a window reaching before the history
    start unknown (NaN), and rates of children not in school too; the subsets do neither."""
    merged = baseline.merge(built, on=["child_pid", "as_of"], suffixes=("_pd", ""))
    assert len(merged) == len(baseline) == len(built)
    for col in SUBSET_COLUMNS:
        known = merged[col].notna()
        np.testing.assert_allclose(
            merged.loc[known, f"{col}_pd"], merged.loc[known, col], err_msg=col
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-children", type=int, default=20000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_features"))
    parser.add_argument("--reuse", action="store_true", help="reuse an existing interim folder")
    parser.add_argument("--interim", type=Path, help="an existing interim folder (no generation)")
    parser.add_argument("--no-subset", action="store_true", help="skip the pandas/DuckDB subset")
    parser.add_argument("--families", action="store_true", help="CPU seconds per step and family")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.workdir.mkdir(parents=True, exist_ok=True)
    interim = args.interim or build_interim(args.workdir, args.n_children, args.reuse)
    out = args.workdir / "features.parquet"
    stage_seconds, stage_cpu, peak_gib = time_stage(interim, out)
    result = {
        "interim": str(interim),
        "rows": pq.ParquetFile(out).metadata.num_rows,
        "stage_seconds": round(stage_seconds, 1),
        "stage_cpu_seconds": round(stage_cpu, 1),
        "stage_peak_rss_gib": round(peak_gib, 2),
        **floor_scan(interim),
    }
    if args.families:
        result["cpu_seconds_by_step"] = family_breakdown(interim)
    if not args.no_subset:
        result.update(compare_subset(interim, out, stage_seconds))
    print(json.dumps(result))


def compare_subset(interim: Path, out: Path, stage_seconds: float) -> dict:
    """The pandas and DuckDB subsets, timed, checked against features.parquet."""
    built = pd.read_parquet(out, columns=["child_pid", "as_of", *SUBSET_COLUMNS])
    keys = built[["child_pid", "as_of"]]
    started = time.perf_counter()
    baseline = pandas_subset(interim, keys)
    pandas_seconds = time.perf_counter() - started
    duck_seconds, duck = duckdb_subset(interim, keys)
    check_agreement(baseline, built)
    check_agreement(baseline, duck.assign(as_of=duck["as_of"].astype("datetime64[us]")))
    return {
        "as_of_dates": int(keys["as_of"].nunique()),
        "subset_pandas_seconds": round(pandas_seconds, 2),
        "subset_duckdb_seconds": round(duck_seconds, 2),
        "subset_speedup": round(pandas_seconds / duck_seconds, 1),
        # per feature: the pandas subset computes 7 features; the stage all of the catalogue
        "per_feature_speedup_vs_whole_stage": round(
            (pandas_seconds / len(SUBSET_COLUMNS)) / (stage_seconds / len(catalogue.CATALOGUE)), 1
        ),
    }


if __name__ == "__main__":
    main()
