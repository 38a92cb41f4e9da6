"""The runs shared by features and labels (src/features/runs.py): same-day cases, both sides agree.

Each test builds one history, computes the feature (``rehab_missed_streak``,
``longest_unexcused_streak_90d``) and the label (``medical_lapse``, ``school_dropout``) on
the same connection, and checks they describe the same run.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.features import features
from src.features.labels import build_labels
from tests.features.feature_frames import child, connect, tables
from tests.features.history_db import label_params

EXPORT = dt.date(2025, 12, 31)
D1 = dt.date(2024, 5, 6)  # a Monday


def on(offset: int) -> dt.date:
    return D1 + dt.timedelta(days=offset)


def feature_and_labels(
    rows: dict, as_of_dates: list[dt.date], feature: str, label, pids: tuple[str, ...] = ("X",)
) -> pd.DataFrame:
    """Per (child_pid, as_of) (index): the feature and the labels."""
    con = connect(tables(children=[child(pid) for pid in pids], **rows))
    labels = build_labels(con, as_of_dates, EXPORT, label).set_index(["child_pid", "as_of"])
    features.prepare_tables(con)
    keys = pd.MultiIndex.from_product([pids, pd.to_datetime(as_of_dates)]).to_frame(
        index=False, name=["child_pid", "as_of"]
    )
    values = features.compute_features(con, keys.astype({"as_of": "datetime64[us]"}))
    con.close()
    return labels.join(values.set_index(["child_pid", "as_of"])[[feature]]).sort_index()


def rehab(*sessions: tuple[int, str], pid: str = "X") -> list[dict]:
    return [
        {"child_pid": pid, "event_date": on(offset).isoformat(), "event_type": f"rehab_{kind}"}
        for offset, kind in sessions
    ]


@pytest.mark.parametrize(
    ("sessions", "streak_at_end", "lapse"),
    [
        pytest.param([(0, "missed"), (0, "missed"), (1, "missed")], 2, 0, id="two-misses-one-day"),
        pytest.param(
            [(0, "missed"), (1, "missed"), (2, "attended"), (2, "missed")],
            1,
            0,
            id="attended-then-missed-same-day",
        ),
        pytest.param(
            [(0, "attended"), (0, "missed"), (1, "missed"), (2, "missed")],
            3,
            1,
            id="run-starts-on-an-attended-day",
        ),
    ],
)
def test_same_day_rehab_sessions_mean_the_same_in_feature_and_label(sessions, streak_at_end, lapse):
    rows = {"medical_events": rehab(*sessions)}
    out = feature_and_labels(rows, [on(-1), on(2)], "rehab_missed_streak", label_params()).loc["X"]
    assert out.loc[pd.Timestamp(on(2)), "rehab_missed_streak"] == streak_at_end
    assert out.loc[pd.Timestamp(on(-1)), "medical_lapse"] == lapse


SESSION = st.tuples(st.integers(0, 9), st.sampled_from(["missed", "attended"]))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories=st.lists(st.lists(SESSION, max_size=12), min_size=1, max_size=8))
def test_medical_lapse_happens_on_the_day_the_feature_streak_reaches_three(histories):
    pids = tuple(f"c{i}" for i in range(len(histories)))
    rows = [row for pid, s in zip(pids, histories, strict=True) for row in rehab(*s, pid=pid)]
    days = [on(offset) for offset in range(-1, 11)]
    out = feature_and_labels(
        {"medical_events": rows}, days, "rehab_missed_streak", label_params(), pids
    )
    for pid in pids:
        streak = out.loc[pid, "rehab_missed_streak"].to_numpy()
        third_miss = [i for i in range(1, len(days)) if streak[i] == 3 and streak[i - 1] < 3]
        expected = [int(any(d > i for d in third_miss)) for i in range(len(days))]
        assert out.loc[pid, "medical_lapse"].tolist() == expected, pid


def absence(date: str, days: float = 1.0, kind: str = "unexcused") -> dict:
    return {"child_pid": "X", "absence_date": date, "absence_type": kind, "days": days}


STREAK_HISTORY = [
    absence("2024-03-04"),
    absence("2024-03-04"),  # the same day twice: one streak day
    absence("2024-03-05", 0.5),
    absence("2024-03-05"),  # a full day beside a half day still counts
    absence("2024-03-06"),
    absence("2024-03-06", 0.5, "sick"),
    absence("2024-03-07", 0.5),  # only a half day: breaks the run
    absence("2024-03-08"),
    absence("2024-03-09"),  # Saturday: not a school day, ignored
    absence("2024-03-11"),  # Monday: continues Friday's run
    absence("2024-03-12"),
]


# as_of: (longest streak in the feature, school_dropout with streak 3, with streak 4)
STREAK_EXPECTED = {
    "2024-03-01": (0, 1, 0),
    "2024-03-05": (2, 1, 0),
    "2024-03-06": (3, 1, 0),  # the first run reached 3 today; the second does on 12 March
    "2024-03-11": (3, 1, 0),
    "2024-03-12": (3, 0, 0),
}


def test_unexcused_streak_feature_and_dropout_label_count_the_same_days():
    enrolled = {"child_pid": "X", "event_date": "2023-09-01", "event_type": "enrolled"}
    rows = {"school_absences": STREAK_HISTORY, "school_enrollment": [enrolled]}
    dates = [dt.date.fromisoformat(d) for d in STREAK_EXPECTED]
    name = "longest_unexcused_streak_90d"
    at_3 = feature_and_labels(rows, dates, name, label_params(streak=3)).loc["X"]
    at_4 = feature_and_labels(rows, dates, name, label_params(streak=4)).loc["X"]
    got = zip(at_3[name], at_3["school_dropout"], at_4["school_dropout"], strict=True)
    assert dict(zip(STREAK_EXPECTED, got, strict=True)) == STREAK_EXPECTED
