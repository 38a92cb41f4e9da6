"""Property: records dated after t never change the features of the row at t.

Each example builds one shared past and two independent futures (so records are added,
removed and changed after t); child "x" gets the past + future A, child "y" the past +
future B. Their feature rows at t must be identical. Unexcused absence runs that cross t
exercise the streak clipping.

What the export as a whole says at t (the history start behind ``months_of_history`` and the
windows' history rule) is shared by x and y, so a second property cuts the export itself: the
features at t of the whole export equal those of the export with every record after t
removed. Histories are either long (the export records from 2021) or only the example's own
records, so short histories and their unknown windows are exercised too. Every catalogue
feature is compared, the new ones included.

The same three properties hold on the Spark engine (``test_on_spark_...``, marked ``spark``):
there every Spark job has a fixed cost of seconds, so each example packs several sub-examples
into one export (children x_i, y_i and r_i) and computes its features once per variant.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.data import contract
from src.features import catalogue
from tests.features.feature_frames import HISTORY_FROM, child, features_at, spark_engine, tables

AS_OF_CHOICES = (dt.date(2024, 3, 1), dt.date(2024, 9, 1))
# None: the history start follows the example's own records (often short, some windows unknown)
HISTORY_CHOICES = (None, HISTORY_FROM)
COMPARED = [*catalogue.AUDIT_COLUMNS, *catalogue.feature_names()]


def _maybe(values):
    return st.one_of(st.none(), st.sampled_from(values))


RECORDS = {
    "welfare_events": st.fixed_dictionaries(
        {
            "event_type": st.sampled_from(contract.WELFARE_EVENT),
            "benefit": st.sampled_from(contract.BENEFIT),
            "amount_cny": _maybe((300.0, 500.0)),
            "reason": _maybe(contract.EXIT_REASON),
        }
    ),
    "school_enrollment": st.fixed_dictionaries(
        {
            "event_type": st.sampled_from(contract.ENROLLMENT_EVENT),
            "school_id": st.just("s1"),
            "school_type": _maybe(contract.SCHOOL_TYPE),
            "grade": _maybe(tuple(range(1, 13))),
        }
    ),
    "school_absences": st.fixed_dictionaries(
        {
            "absence_type": st.sampled_from(contract.ABSENCE_TYPE),
            "days": st.sampled_from((0.5, 1.0)),
        }
    ),
    "medical_events": st.fixed_dictionaries(
        {
            "event_type": st.sampled_from(contract.MEDICAL_EVENT),
            "diagnosis_group": _maybe(contract.DIAGNOSIS_GROUP),
            "cost_cny": _maybe((100.0, 1000.0)),
            "out_of_pocket_cny": _maybe((0.0, 50.0)),
        }
    ),
    "casework_visits": st.fixed_dictionaries(
        {"mode": st.just("home"), **{c: st.sampled_from((0, 1)) for c in contract.CONCERNS}}
    ),
    "protection_events": st.fixed_dictionaries(
        {"event_type": st.sampled_from(contract.PROTECTION_EVENT)}
    ),
}
DATE_COLUMN = {"school_absences": "absence_date", "casework_visits": "visit_date"}


def records(low: int, high: int):
    """(table, day offset from t, values) with low <= offset <= high."""
    return st.sampled_from(sorted(RECORDS)).flatmap(
        lambda table: st.tuples(st.just(table), st.integers(low, high), RECORDS[table])
    )


# At least one run starts on or before t; most continue past it.
unexcused_runs = st.lists(
    st.tuples(st.integers(-15, 0), st.integers(2, 20)), min_size=1, max_size=3
)


def _rows(pid: str, as_of: dt.date, recs, runs) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {table: [] for table in RECORDS}
    for table, offset, values in recs:
        day = (as_of + dt.timedelta(days=offset)).isoformat()
        out[table].append({"child_pid": pid, DATE_COLUMN.get(table, "event_date"): day, **values})
    for start, length, keep in runs:
        for k in range(length):
            day = as_of + dt.timedelta(days=start + k)
            if keep(day):
                out["school_absences"].append(
                    {
                        "child_pid": pid,
                        "absence_date": day.isoformat(),
                        "absence_type": "unexcused",
                        "days": 1.0,
                    }
                )
    return out


def _history(pid, as_of, past, future, runs, keep_future_runs) -> dict[str, list[dict]]:
    """The past (runs clipped at as_of) plus a future (runs after as_of, if kept)."""

    def on_or_before(day):
        return day <= as_of

    def after(day):
        return day > as_of

    common = _rows(pid, as_of, past, [(s, n, on_or_before) for s, n in runs])
    extra = _rows(pid, as_of, future, [(s, n, after) for s, n in runs] if keep_future_runs else [])
    return {table: common[table] + extra[table] for table in RECORDS}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    as_of=st.sampled_from(AS_OF_CHOICES),
    history_from=st.sampled_from(HISTORY_CHOICES),
    past=st.lists(records(-420, 0), max_size=25),
    future_a=st.lists(records(1, 200), max_size=10),
    future_b=st.lists(records(1, 200), max_size=10),
    runs=unexcused_runs,
    future_runs_b=st.booleans(),
)
def test_records_after_as_of_never_change_features(
    as_of, history_from, past, future_a, future_b, runs, future_runs_b
):
    x = _history("x", as_of, past, future_a, runs, True)
    y = _history("y", as_of, past, future_b, runs, future_runs_b)
    data = tables(
        history_from, children=[child("x"), child("y")], **{t: x[t] + y[t] for t in RECORDS}
    )
    frame = features_at(data, as_of.isoformat())
    pd.testing.assert_series_equal(
        frame.loc["x", COMPARED], frame.loc["y", COMPARED], check_names=False
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    as_of=st.sampled_from(AS_OF_CHOICES),
    history_from=st.sampled_from(HISTORY_CHOICES),
    past=st.lists(records(-420, 0), max_size=25),
    future=st.lists(records(1, 200), min_size=1, max_size=10),
    runs=unexcused_runs,
)
def test_features_at_t_equal_those_of_the_export_cut_at_t(
    as_of, history_from, past, future, runs
):
    whole = _history("x", as_of, past, future, runs, True)
    cut = _history("x", as_of, past, [], runs, False)
    frames = [
        features_at(tables(history_from, children=[child("x")], **data), as_of.isoformat())
        for data in (whole, cut)
    ]
    pd.testing.assert_series_equal(
        frames[0].loc["x", COMPARED], frames[1].loc["x", COMPARED], check_names=False
    )


FIELD_CODES = contract.REGISTRY_HISTORY_FIELDS


@st.composite
def registry_chains(draw) -> tuple[dict[str, str], list[tuple[str, int, str, str]]]:
    """Registered values and chained changes (field, day offset from t, old, new) around t."""
    start, changes = {}, []
    for field, codes in FIELD_CODES.items():
        start[field] = value = draw(st.sampled_from(codes))
        offsets = draw(st.lists(st.integers(-400, 200), unique=True, max_size=4))
        for offset in sorted(offsets):
            new = draw(st.sampled_from([c for c in codes if c != value]))
            changes.append((field, offset, value, new))
            value = new
    return start, changes


def _registry_rows(pid: str, as_of: dt.date, start: dict, changes: list) -> tuple[dict, list]:
    """Child ``pid`` with the values after its last change (as of export), and its history."""
    current = dict(start)
    for field, _, _, new in changes:
        current[field] = new
    history = [
        {"child_pid": pid, "field": field, "old_value": old, "new_value": new,
         "change_date": (as_of + dt.timedelta(days=offset)).isoformat()}
        for field, offset, old, new in changes
    ]  # fmt: skip
    exported = {**current, "disability_level": int(current["disability_level"])}
    return child(pid, **exported), history


def _registry_export(as_of: dt.date, start: dict, changes: list) -> dict[str, pd.DataFrame]:
    """Child "x" with the values after its last change (as of export) and its registry_history."""
    row, history = _registry_rows("x", as_of, start, changes)
    return tables(children=[row], registry_history=history)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(as_of=st.sampled_from(AS_OF_CHOICES), chains=registry_chains())
def test_registry_changes_after_t_never_change_the_row_at_t(as_of, chains):
    """category, guardian_type and disability_level at t are the values in force at t: the same
    with every change after t removed (the export cut at t, where children shows them)."""
    start, changes = chains
    whole = features_at(_registry_export(as_of, start, changes), as_of.isoformat())
    cut = features_at(
        _registry_export(as_of, start, [c for c in changes if c[1] <= 0]), as_of.isoformat()
    )
    compared = ["category", "guardian_type", "disability_level", "disability"]
    pd.testing.assert_series_equal(
        whole.loc["x", compared], cut.loc["x", compared], check_names=False
    )
    in_force = dict(start)
    for field, offset, _, new in changes:
        if offset <= 0:
            in_force[field] = new
    assert whole.loc["x", "category"] == in_force["category"]
    assert whole.loc["x", "guardian_type"] == in_force["guardian_type"]
    assert whole.loc["x", "disability_level"] == float(in_force["disability_level"])


SUB_EXAMPLES = 4  # per Spark export: the fixed cost of a Spark job is paid once for all of them


@pytest.mark.spark
@settings(max_examples=2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(
    as_of=st.sampled_from(AS_OF_CHOICES),
    history_from=st.sampled_from(HISTORY_CHOICES),
    examples=st.lists(
        st.tuples(
            st.lists(records(-420, 0), max_size=25),
            st.lists(records(1, 200), min_size=1, max_size=10),
            st.lists(records(1, 200), max_size=10),
            unexcused_runs,
            st.booleans(),
            registry_chains(),
        ),
        min_size=SUB_EXAMPLES,
        max_size=SUB_EXAMPLES,
    ),
)
def test_on_spark_records_and_registry_changes_after_t_never_change_the_row_at_t(
    spark, as_of, history_from, examples
):
    """On Spark: x_i (past + future A) equals y_i (past + future B), both equal x_i of the export
    cut at t, and r_i's registry fields equal those of its history cut at t."""
    whole, cut = ({t: [] for t in [*RECORDS, "children", "registry_history"]} for _ in range(2))
    for i, (past, future_a, future_b, runs, future_runs_b, (start, changes)) in enumerate(examples):
        parts = [(whole, _history(f"x{i}", as_of, past, future_a, runs, True)),
                 (whole, _history(f"y{i}", as_of, past, future_b, runs, future_runs_b)),
                 (cut, _history(f"x{i}", as_of, past, [], runs, False))]  # fmt: skip
        for export, history in parts:
            for table, rows in history.items():
                export[table] += rows
        for export, kept in ((whole, changes), (cut, [c for c in changes if c[1] <= 0])):
            row, history = _registry_rows(f"r{i}", as_of, start, kept)
            export["registry_history"] += history
            export["children"].append(row)
        whole["children"] += [child(f"x{i}"), child(f"y{i}")]
        cut["children"].append(child(f"x{i}"))
    frames = []
    with tempfile.TemporaryDirectory() as folder:
        for name, export in (("whole", whole), ("cut", cut)):
            data = tables(history_from, **export)
            engine = spark_engine(spark, data, Path(folder) / name)
            frames.append(features_at(data, as_of.isoformat(), engine=engine))
    for i in range(len(examples)):
        for frame, other in ((frames[0], f"y{i}"), (frames[1], f"x{i}")):
            pd.testing.assert_series_equal(
                frames[0].loc[f"x{i}", COMPARED], frame.loc[other, COMPARED], check_names=False
            )
        registry = ["category", "guardian_type", "disability_level", "disability"]
        pd.testing.assert_series_equal(
            frames[0].loc[f"r{i}", registry], frames[1].loc[f"r{i}", registry], check_names=False
        )
