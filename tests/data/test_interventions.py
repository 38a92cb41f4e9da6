"""Interventions in the generator: neutral when absent, common random numbers when present."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from src.config import load_params
from src.data import generate
from src.data.synthetic import interventions as ix
from src.data.synthetic.registry_changes import Changes
from src.errors import SafetynetError
from tests.params import PARAMS_FILE

N, MONTHS, CUT = 800, 18, "2024-03-01"
NO_DEFECTS = dict.fromkeys(("duplicate", "unknown_code", "malformed_date", "future_date", "unknown_child",
                            "negative_amount", "missing_required"), 0.0)  # fmt: skip
TREATED = [f"C{i:08d}" for i in range(1, N + 1, 4)]
EVENT_TABLES = ("welfare_events", "school_enrollment", "school_absences", "medical_events", "casework_visits",
                "protection_events", "registry_history")  # fmt: skip


def params(**synthetic):
    return load_params(PARAMS_FILE, {"synthetic": {"n_children": N, "months": MONTHS, **synthetic}})


def table(ratio: float, children=TREATED) -> pd.DataFrame:
    return pd.DataFrame({"child_id": children, "month": CUT, "hazard_ratio": ratio})


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    out = tmp_path_factory.mktemp("plain") / "export"
    generate.run(out, params())
    return out


@pytest.mark.parametrize(
    "interventions", [table(1.0), table(1.0).iloc[:0]], ids=["ratio_1", "empty"]
)
def test_neutral_interventions_leave_the_export_byte_identical(plain, tmp_path, interventions):
    ix.run(tmp_path / "x", params(), interventions)
    assert digest(tmp_path / "x") == digest(plain)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same seed without and with a strong referral effect, defects off (row-exact)."""
    root = tmp_path_factory.mktemp("pair")
    generate.run(root / "plain", params(defects=NO_DEFECTS))
    ix.run(root / "treated", params(defects=NO_DEFECTS), table(0.2))
    return root / "plain", root / "treated"


@pytest.mark.parametrize("name", EVENT_TABLES)
def test_only_treated_childrens_rows_change_and_only_from_their_month(pair, name):
    plain, treated = (
        pd.read_csv(f / f"{name}.csv", dtype=str, keep_default_na=False) for f in pair
    )
    date = next(c for c in plain.columns if c.endswith("date"))

    def part(frame, keep):
        return frame[keep(frame)].reset_index(drop=True)

    def untreated(f):
        return ~f["child_id"].isin(TREATED)

    def before(f):
        return f["child_id"].isin(TREATED) & (f[date] < CUT)

    pd.testing.assert_frame_equal(part(plain, untreated), part(treated, untreated))
    pd.testing.assert_frame_equal(part(plain, before), part(treated, before))


def test_the_truth_moves_only_for_treated_children_and_down(pair):
    plain, treated = (pd.read_parquet(f / "truth.parquet") for f in pair)
    mask = plain["child_id"].isin(TREATED).to_numpy()
    untreated = ~treated["child_id"].isin(TREATED)
    pd.testing.assert_frame_equal(
        plain[~mask].reset_index(drop=True), treated[untreated].reset_index(drop=True)
    )
    later = (plain["as_of"] >= CUT) & mask
    later_t = (treated["as_of"] >= CUT) & treated["child_id"].isin(TREATED)
    assert treated.loc[later_t, "p_true"].mean() < 0.7 * plain.loc[later, "p_true"].mean()


def test_spliced_registry_changes_re_chain_each_treated_field():
    class Reg:  # the registry fields the chain starts from
        category, guardian, disability = np.array([0, 0]), np.array([1, 1]), np.array([0, 0])

    day = np.datetime64("2024-01-10"), np.datetime64("2024-05-10"), np.datetime64("2024-06-10")

    def changes(child, new, date):
        n = len(child)
        return Changes(
            np.array(child), np.zeros(n, int), np.zeros(n, int), np.array(new), np.array(date)
        )

    kept = changes([0, 1, 1], [3, 2, 4], [day[0], day[0], day[1]])
    redrawn = changes([0, 1, 1], [5, 5, 2], [day[0], day[2], day[2]])  # child 1 treated
    cut = np.datetime64("2024-06-01")
    out = ix.spliced_changes(kept, redrawn, np.array([False, True]), cut, Reg)
    assert out.child.tolist() == [0, 1, 1, 1] and out.new.tolist() == [3, 2, 4, 5]
    assert out.old.tolist()[1:] == [0, 2, 4]  # re-chained; the second change on 06-10 is dropped


@pytest.mark.parametrize(
    ("frame", "message"),
    [(table(0.0), "hazard_ratio"), (table(0.5).drop(columns="month"), "no column month"),
     (table(0.5, ["C99999999"]), "unknown child_id C99999999")],
)  # fmt: skip
def test_bad_interventions_are_one_line_errors(frame, message):
    with pytest.raises(SafetynetError, match=message):
        ix.intervened_world(params(n_children=50, months=6), frame)
