"""params -> a synthetic raw export (the contract tables), truth.parquet and injected_defects.json.

Latent risk. Each child has a three-state monthly Markov chain (stable, strained, crisis;
`src/data/synthetic/latent.py`). A hazard multiplier h from category, age band, disability,
guardian type, hukou and a log-normal frailty scales the moves towards crisis and the monthly
outcome probability q(state). The state drives the signals (absences, above all unexcused;
late or missed recertification; payment gaps and delays; missed rehabilitation; concerns in
casework visits; protection reports; medical contacts) and, when an outcome fires, one of the
contract's four rules: a procedural suspension or termination, a `dropped_out` event or a
10-school-day unexcused streak, an `insurance_lapsed` event or three rehab sessions missed in
a row, a `guardian_lost` or `emergency_placement` event. Recovery (reinstated, returned) is
possible. Background noise can never form an outcome record (see `synthetic/events.py`), and
defects never touch an outcome-defining or status-changing row, so labels derived from the
records agree with the generator's own outcomes.

p_true is exact, not Monte Carlo: at each month start t, for every child in the cohort
(registered on or before t, aged 0-17, no legitimate exit on or before t), a backward
recursion over the months covering (t, t + label.horizon_days] gives P(an outcome in the
horizon | state at t). Outcome dates are uniform over the month's days, so the first month
(day t excluded) and the last partial month are prorated exactly; legitimate exits and the
18th birthday end the record. It uses the state at t and the model, never the realised future.

Registry changes (`synthetic/registry_changes.py`): a guardian lost or an emergency placement
is followed by a new guardian_type (and often category), and a few children a year change
category, guardian or disability level. `children` shows the values as of the export; the
`registry_history` table (`synthetic.registry_history`) records every change.

Seasons (`synthetic/latent.py`): recertification falls due in each child's anniversary month,
where `synthetic.recert_hazard_ratio` raises the hazard (and the share of benefit lapses);
absences fall on the default calendar's school days only (none in the breaks); and
`synthetic.prevalence_drift` moves every log hazard by one seeded random walk, so the outcome
rate drifts month to month. All are known from the month and the registry: p_true stays exact.

Measurement bias (`synthetic.measurement_bias`, `synthetic/recording.py`): source systems
(`sources`) under-record for the children with the given hukou (in the listed `counties`
only: a county x hukou cell) by `mode` omit, relabel or conceal (an at-risk child's records
entered as a stable child's). The world is untouched: the chain, the outcomes and p_true are
the same with the knob on or off (its own random stream), and outcome-defining rows are never
altered, so labels stay true and only what the model sees about that group changes.

Defects (`synthetic.defects`, row shares per table) are written after the clean rows of each
file; `injected_defects.json` gives per table and kind the expected quarantine reason, the
count and the first data row (0-based, header excluded); a kind that got no row is not
listed. Each defect row carries exactly one fault and is unlike every other row, so ingest
quarantines exactly the listed rows with the listed reasons and collapses exactly the listed
duplicates (the clean rows hold no exact duplicates of their own). Children-table defects sit
only on extra decoy rows without any events; duplicated children are exact copies of real rows.
School-enrollment rows all change a status, so its defects are spoiled extra copies of rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.progress import track

from src.atomic import atomic_dir, write_json, write_parquet
from src.config import Params
from src.data import contract as c
from src.data.synthetic import departments
from src.data.synthetic import export as ex
from src.data.synthetic.events import Simulation
from src.data.synthetic.latent import RiskModel, drift_path, horizon_weights, month_starts, p_true
from src.data.synthetic.lookups import OPTIONAL_NAMES, optional_tables
from src.data.synthetic.recording import RecordingBias, biased_counties
from src.data.synthetic.registry import Registry, draw_registry
from src.data.synthetic.registry_changes import (
    Changes,
    as_exported,
    children_table,
    draw_changes,
    history_table,
)

log = logging.getLogger(__name__)
HORIZON_MONTHS = 7  # months that can overlap (t, t + 180 days]; more are harmless (weight 0)
# New streams go last: a stream's seed is its position, so existing streams never shift.
STREAMS = (
    "registry", "model", "simulation", "decoys", "defects", "recording_bias", "drift",
    "registry_changes", "lookups", "providers",
)  # fmt: skip
# Every enrolment row changes a school status, so its defects are spoiled extra copies.
SPOILED_COPIES = ("school_enrollment",)


def rngs(seed: int) -> dict[str, np.random.Generator]:
    """Independent, named random streams, so a change in one part never shifts another."""
    return {name: np.random.default_rng([seed, i]) for i, name in enumerate(STREAMS)}


def simulate(params: Params, progress: bool = False, hazard=None) -> tuple[Registry, RiskModel, Simulation]:  # fmt: skip
    """Draw the registry and run the chain and all event processes month by month."""
    syn = params.synthetic
    rng = rngs(params.base.seed)
    registry = draw_registry(
        syn.n_children,
        syn.start_date,
        syn.months,
        syn.n_counties,
        syn.communities_per_county,
        syn.hostile_name_rate,
        rng["registry"],
    )
    # the walk covers the span and the horizon after it, which p_true reads
    drift = drift_path(syn.months + HORIZON_MONTHS + 1, syn.prevalence_drift, rng["drift"])
    first = np.datetime64(syn.start_date, "M")
    model = RiskModel(registry, rng["model"], first, drift, syn.recert_hazard_ratio, hazard and hazard(registry))  # fmt: skip
    starts = month_starts(np.datetime64(syn.start_date, "D"), syn.months + 1)
    calendar = c.default_school_calendar(syn.start_date, (starts[-1] - 1).astype(object))["date"]
    bias = syn.measurement_bias
    recording_bias = (
        RecordingBias(c.HUKOU.index(bias.hukou), bias.share, bias.mode, rng["recording_bias"],
                      biased_counties(registry.county_codes, bias.counties), bias.sources) if bias.enabled else None
    )  # fmt: skip
    sim = Simulation(
        registry,
        model,
        starts,
        calendar.to_numpy().astype("datetime64[D]"),
        recording_bias,
        rng["simulation"],
    )
    months = range(syn.months)
    if progress:
        months = track(months, description="generate: months", console=Console(stderr=True), transient=True)  # fmt: skip
    for k in months:
        sim.step(k)
    return registry, model, sim


def truth_table(
    registry: Registry, model: RiskModel, sim: Simulation, horizon_days: int
) -> pd.DataFrame:
    """child_id, as_of, p_true for every cohort (child, month start) of the span.

    Built from plain arrays (child ids only as Arrow strings at the end): at a million
    children this table has ~27M rows, and Python string objects would cost gigabytes.
    """
    months = sim.states.shape[0]
    starts = month_starts(sim.starts[0], months + HORIZON_MONTHS + 1)
    children, probs = [], []
    for m in range(months):
        as_of = starts[m]
        rows = np.flatnonzero((registry.registered <= as_of) & (as_of < sim.end))
        window = starts[m : m + HORIZON_MONTHS + 1]
        terms = [model.terms(window[j], window[j + 1], rows) for j in range(HORIZON_MONTHS)]
        probs.append(
            p_true(sim.states[m, rows], terms, horizon_weights(as_of, window, horizon_days))
        )
        children.append(rows.astype(np.int32))
    month = np.repeat(np.arange(months), [len(r) for r in children])
    child = np.concatenate(children)
    order = np.argsort(child, kind="stable")  # by child, then month (months come in order)
    del children
    ids = pa.array(registry.child_id).take(pa.array(child[order]))
    return pd.DataFrame(
        {
            "child_id": pd.array(ids, dtype="str"),
            "as_of": starts[month[order]].astype("datetime64[us]"),
            "p_true": np.concatenate(probs)[order],
        }
    )


def realised_labels(truth: pd.DataFrame, outcomes: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """1 where the generator fired an outcome in (as_of, as_of + horizon]; for checks and tuning."""
    key = lambda ids, days: ids.astype(np.int64) * 1_000_000 + days  # noqa: E731
    ids = pa.array(truth["child_id"], type=pa.string())  # Arrow hashing: no Python strings
    codes = pc.unique(ids)
    fired = pc.index_in(pa.array(outcomes["child_id"], type=pa.string()), value_set=codes)
    known = pc.is_valid(fired).to_numpy(zero_copy_only=False)
    events = np.sort(
        key(
            pc.fill_null(fired, -1).to_numpy(zero_copy_only=False)[known],
            _days(outcomes["date"])[known],
        )
    )
    child = pc.index_in(ids, value_set=codes).to_numpy(zero_copy_only=False)
    day = _days(truth["as_of"])
    lo = np.searchsorted(events, key(child, day), side="right")
    hi = np.searchsorted(events, key(child, day + horizon_days), side="right")
    return (hi > lo).astype(np.int8)


def _days(values) -> np.ndarray:
    return np.asarray(values, dtype="datetime64[D]").astype(np.int64)


def event_table(registry: Registry, sim: Simulation, name: str) -> tuple[pa.Table, dict]:
    """One event table as Arrow columns in contract order, with its rows' defect eligibility.

    The simulation's accumulated rows of the table are released: each table is built once.
    """
    f = sim.frame(name)
    sim.tables[name] = None
    child = f["child"].astype(np.int64)
    caseworkers = np.char.add("CW", registry.community_codes)
    cols = {
        "child_id": ex.labels(child, registry.child_id),
        c.TABLES[name].date_column: ex.dates(f["date"]),
    }
    cols.update(
        _table_columns(
            name,
            f,
            sim.schools.ids,
            caseworkers[registry.community[child]] if len(child) else np.array([], dtype=str),
        )
    )
    table = pa.table({col: cols[col] for col in c.TABLES[name].column_names})
    free = ~f["protected"].astype(bool)
    eligible = {"default": free, "duplicate": np.ones(len(free), dtype=bool)}
    if name in SPOILED_COPIES:
        eligible.update(default=np.ones(len(free), dtype=bool), copies=True)
    if "amount_cny" in f:
        eligible["negative_amount"] = free & (f["event_type"] == c.WELFARE_EVENT.index("payment"))
    if "cost_cny" in f:
        eligible["negative_amount"] = free & ~np.isnan(f["cost_cny"].astype(float))
    return table, eligible


def _table_columns(
    name: str, f: dict, schools: np.ndarray, caseworker: np.ndarray
) -> dict[str, pa.Array]:
    if name == "welfare_events":
        return {
            "event_type": ex.codes(f["event_type"], c.WELFARE_EVENT),
            "benefit": ex.codes(f["benefit"], c.BENEFIT),
            "amount_cny": ex.numbers(f["amount_cny"]),
            "reason": ex.codes(f["reason"], c.EXIT_REASON),
        }
    if name == "school_enrollment":
        return {
            "school_id": ex.labels(f["school"], schools),
            "event_type": ex.codes(f["event_type"], c.ENROLLMENT_EVENT),
            "school_type": ex.codes(f["school_type"], c.SCHOOL_TYPE),
            "grade": ex.integers(f["grade"]),
        }
    if name == "school_absences":
        return {
            "school_id": ex.labels(f["school"], schools),
            "absence_type": ex.codes(f["absence_type"], c.ABSENCE_TYPE),
            "days": ex.numbers(f["days"]),
        }
    if name == "medical_events":
        return {
            "event_type": ex.codes(f["event_type"], c.MEDICAL_EVENT),
            "diagnosis_group": ex.codes(f["diagnosis_group"], c.DIAGNOSIS_GROUP),
            "cost_cny": ex.numbers(f["cost_cny"]),
            "out_of_pocket_cny": ex.numbers(f["out_of_pocket_cny"]),
        }
    if name == "casework_visits":
        concerns = f["concerns"].reshape(-1, len(c.CONCERNS))
        cols = {
            "caseworker_id": pa.array(caseworker.tolist(), pa.string()),
            "mode": ex.codes(f["mode"], c.VISIT_MODE),
        }
        cols.update({col: ex.integers(concerns[:, i]) for i, col in enumerate(c.CONCERNS)})
        return cols
    return {"event_type": ex.codes(f["event_type"], c.PROTECTION_EVENT)}


def registry_with_decoys(params: Params, registry: Registry) -> tuple[pa.Table, dict]:
    """Real children plus decoy rows (no events) that carry the children-table defects."""
    syn, shares = params.synthetic, _shares(params)
    n_decoys = sum(int(round(shares[k] * registry.n)) for k in ex.DEFECT_COLUMNS["children"])
    decoys = draw_registry(
        max(n_decoys, 1),
        syn.start_date,
        syn.months,
        syn.n_counties,
        syn.communities_per_county,
        0.0,
        rngs(params.base.seed)["decoys"],
    )
    ids = [f"C{i:08d}" for i in range(registry.n + 1, registry.n + n_decoys + 1)]
    decoy_table = children_table(decoys).slice(0, n_decoys)
    decoy_table = decoy_table.set_column(0, "child_id", pa.array(ids, pa.string()))
    table = pa.concat_tables(
        [children_table(registry), decoy_table.cast(children_table(registry).schema)]
    )
    is_decoy = np.arange(table.num_rows) >= registry.n
    return table, {"default": is_decoy, "duplicate": ~is_decoy}


def _shares(params: Params) -> dict[str, float]:
    d = params.synthetic.defects
    return {k: getattr(d, k) for k in ex.DEFECT_KINDS}


def source_table(
    params: Params, registry: Registry, sim: Simulation, name: str, changes: Changes
) -> tuple[pa.Table, dict]:
    """One contract table before defects, with its rows' defect eligibility."""
    if name == "children":  # the values as of the export, after every recorded change
        return registry_with_decoys(params, as_exported(registry, changes))
    if name == c.REGISTRY_HISTORY:
        return history_table(registry, changes)
    if name == "school_calendar":
        calendar = c.default_school_calendar(
            params.synthetic.start_date, (sim.starts[-1] - 1).astype(object)
        )
        return (
            pa.table({"date": ex.dates(calendar["date"].to_numpy())}),
            {"default": np.ones(len(calendar), dtype=bool)},
        )
    return event_table(registry, sim, name)


def write_tables(
    folder: Path, params: Params, registry: Registry, sim: Simulation, changes: Changes
) -> tuple:
    """Build, spoil and write each table in turn, freeing it before the next one is built.

    Returns ({table: file name}, {table: manifest entry}). Tables go in contract order, so the
    defect stream's draws never depend on dict order; the simulation's rows are consumed.
    """
    syn, shares, rng = params.synthetic, _shares(params), rngs(params.base.seed)["defects"]
    files, manifest = {}, {}
    lookups = optional_tables(registry, params, sim.span_end, rngs(params.base.seed))
    for name in c.TABLES:
        if (name == c.REGISTRY_HISTORY and not syn.registry_history) or (name in OPTIONAL_NAMES and name not in lookups) or name in departments.NAMES:
            continue  # switched off: the export has no such table (lookups absent: codes are shown)
        if name in lookups:
            table, ok = lookups[name], {"default": np.ones(lookups[name].num_rows, dtype=bool)}
        else:
            table, ok = source_table(params, registry, sim, name, changes)
        base = registry.n if name == "children" else table.num_rows
        clean, bad, entries = ex.inject_defects(table, name, shares, ok, rng, base_rows=base)
        del table, ok
        path = ex.write_table(folder / name, clean, bad, syn.file_format, syn.encoding)
        files[name] = path.name
        manifest[name] = {
            "rows_written": clean.num_rows + bad.num_rows,
            "rows_clean": clean.num_rows,
            "defects": entries,
        }
        del clean, bad
    return files, manifest


def fired_outcomes(registry: Registry, sim: Simulation) -> pd.DataFrame:
    """child_id, date, rule: every outcome the chain fired."""
    fired = sim.outcomes.frame()
    return pd.DataFrame(
        {
            "child_id": registry.child_id[fired["child"].astype(np.int64)],
            "date": fired["date"].astype("datetime64[D]"),
            "rule": np.asarray(
                ["benefit_lapse", "school_dropout", "medical_lapse", "protection_crisis"]
            )[fired["rule"].astype(np.int64)],
        }
    )


def simulated_world(params: Params, hazard=None) -> tuple[Registry, RiskModel, Simulation, Changes]:
    """`simulate` (`hazard`: synthetic/interventions.py) and the registry's changes (always drawn)."""
    registry, model, sim = simulate(params, True, hazard)
    return registry, model, sim, draw_changes(registry, sim.frame("protection_events"), sim.span_end,
                                              rngs(params.base.seed)["registry_changes"])  # fmt: skip


def run(out_dir: Path, params: Params, world: tuple | None = None) -> dict:
    """Generate the synthetic export into out_dir (replaced whole and atomically) from `world`.

    Memory: the truth table is written and released first, then each table is built and
    written before the next, so only one table is held as Arrow at a time.
    """
    syn = params.synthetic
    registry, model, sim, changes = world or simulated_world(params)
    truth = truth_table(registry, model, sim, params.label.horizon_days)
    labels = realised_labels(truth, fired_outcomes(registry, sim), params.label.horizon_days)
    truth_rows = len(truth)
    with atomic_dir(out_dir) as tmp:
        write_parquet(tmp / "truth.parquet", truth)
        del truth
        files, defects = write_tables(tmp, params, registry, sim, changes)
        defects.update(departments.write(tmp, params, registry, sim.span_end))  # persons, department_events (issue 17)
        manifest = {
            "format": syn.file_format,
            "encoding": syn.encoding if syn.file_format == "csv" else None,
            "row_numbering": "0-based data rows, header excluded; defect rows follow the clean rows",
            "tables": defects,
        }
        write_json(tmp / "injected_defects.json", manifest)
    summary = {
        "files": files,
        "children": syn.n_children,
        "truth_rows": truth_rows,
        "outcome_rate": round(float(labels.mean()), 4) if len(labels) else None,
        "rows": {n: m["rows_written"] for n, m in defects.items()},
    }
    log.info("generate: %s", summary)
    return summary
