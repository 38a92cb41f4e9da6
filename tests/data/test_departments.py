"""The departments' exports (src/data/synthetic/departments.py): noise that is what it says."""

import numpy as np
import pandas as pd
from pypinyin import lazy_pinyin

from src.data.synthetic import departments as d
from src.linkage.sections import DepartmentNoise

NONE = DepartmentNoise(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _pinyin(text: str) -> str:
    return "".join(lazy_pinyin(text))


def test_homophones_and_traditional_forms_read_alike_in_pinyin():
    for group in d.HOMOPHONES:
        assert len({_pinyin(c) for c in group}) == 1, group
    for simplified, traditional in d.TRADITIONAL.items():
        assert _pinyin(simplified) == _pinyin(traditional) and simplified != traditional


def test_each_id_error_is_one_edit():
    rng = np.random.default_rng(0)
    ident = "522421201501020011"
    assert d.mistype(ident, NONE, rng) == ident
    assert d.mistype(ident, DepartmentNoise(0, 0, 0, 0, 0, 1.0, 0, 0, 0), rng) is None
    digit = d.mistype(ident, DepartmentNoise(0, 0, 0, 0, 0, 0, 1.0, 0, 0), rng)
    assert len(digit) == 18 and sum(a != b for a, b in zip(digit, ident, strict=True)) == 1
    swapped = d.mistype("123456789012345678", DepartmentNoise(0, 0, 0, 0, 0, 0, 0, 1.0, 0), rng)
    assert sorted(swapped) == sorted("123456789012345678") and swapped != "123456789012345678"
    assert len(d.mistype(ident, DepartmentNoise(0, 0, 0, 0, 0, 0, 0, 0, 1.0), rng)) == 17


def test_birth_dates_swap_day_and_month_only_when_that_is_a_date():
    birth = np.array(["2015-03-07", "2015-03-25", "2015-03-03"], dtype="datetime64[D]")
    out = d.mistyped_dates(
        birth, DepartmentNoise(0, 0, 0, 1.0, 0, 0, 0, 0, 0), np.random.default_rng(0)
    )
    assert [str(x) for x in out] == ["2015-07-03", "2015-03-25", "2015-03-03"]


def test_names_get_traditional_forms_and_homophones():
    rng = np.random.default_rng(0)
    assert d.misspell("张伟", DepartmentNoise(0, 0, 1.0, 0, 0, 0, 0, 0, 0), rng) == "張偉"
    sound = d.misspell("张明", DepartmentNoise(0, 1.0, 0, 0, 0, 0, 0, 0, 0), rng)
    assert sound != "张明" and _pinyin(sound) == _pinyin("张明")


def test_events_meet_a_rule_only_for_at_risk_children():
    people = pd.DataFrame(
        {"kind": ["none"] * 400 + ["illness_low_income", "dropout_disability", "guardian_died"]}
    )
    records = pd.DataFrame({
        "source": ["school"] * 200 + ["health"] * 200 + ["health", "school", "police"],
        "source_person_id": [f"X{i}" for i in range(403)], "row": range(403)})  # fmt: skip
    events = d.department_events(
        records, people, "2023-01-01", np.datetime64("2024-12-31"), np.random.default_rng(1)
    )
    types = events.groupby("source_person_id")["event_type"].agg(set)
    both = types.map(
        lambda t: (
            {"dropped_out", "disability_certified"} <= t
            or {"serious_illness", "medical_assistance"} <= t
        )
    )
    assert set(types.index[both]) == {"X400", "X401"}
    assert (
        events.loc[
            events["source_person_id"].eq("X400") & events["event_type"].eq("serious_illness"),
            "amount_cny",
        ].min()
        >= 20_000
    )
    assert (events["event_date"] < pd.Timestamp("2024-12-31").date()).all()


def test_other_county_stays_in_the_prefecture_and_draws_nothing_at_zero():
    county = np.array(["522421", "522422", "522521", "522522", "522621"] * 200)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert d.recorded_county(county, 0.0, rng) is county and rng.bit_generator.state == state
    out = d.recorded_county(county, 0.5, rng)
    moved = out != county
    # half of 4 records in 5: the lone county of prefecture 5226 has nowhere to go
    assert 0.35 < moved.mean() < 0.45
    assert (out.astype("U4") == county.astype("U4")).all() and not moved[county == "522621"].any()
