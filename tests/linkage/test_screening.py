import datetime as dt

import pandas as pd

from src.linkage import screening


def _events(rows):
    return pd.DataFrame(
        rows, columns=["source", "source_person_id", "event_date", "event_type", "amount_cny"]
    ).assign(event_date=lambda f: pd.to_datetime(f["event_date"]))


LINKED = pd.DataFrame({
    "unique_id": ["health:h1", "school:s1", "police:p1", "health:h2", "school:s3"],
    "child_pid": ["A", "A", "B", "C", "D"],
    "registered": [False, False, True, False, False],
})  # fmt: skip
PERSONS = pd.DataFrame({
    "source": ["health", "school", "police", "health", "school"],
    "source_person_id": ["h1", "s1", "p1", "h2", "s3"],
    "name": ["=王五", "王五", "李四", "赵六", "钱七"], "sex": ["m", "m", "f", "f", "m"],
    "birth_date": pd.to_datetime(["2015-01-02"] * 5),
    "id_number": [None, "522421201501020011", None, None, None],
    "county_code": ["522421", "522421", "522422", "522422", "522421"],
})  # fmt: skip


def test_rules_need_every_condition_and_the_amount():
    events = _events([
        ["health", "h1", "2024-06-01", "serious_illness", 15000.0],
        ["health", "h1", "2024-07-01", "serious_illness", 6000.0],
        ["health", "h1", "2024-07-01", "medical_assistance", None],
        ["health", "h2", "2024-07-01", "serious_illness", 50000.0],  # no assistance record
        ["school", "s3", "2024-07-01", "dropped_out", None],  # no disability
    ]).assign(child_pid=["A", "A", "A", "C", "D"])  # fmt: skip
    met = screening.rules_met(events)
    assert met.loc["A", "serious_illness_low_income"]  # 15,000 + 6,000 out of pocket
    assert not met.loc["C"].any() and not met.loc["D"].any()


def test_screen_lists_unregistered_children_only_within_the_look_back():
    events = _events([
        ["school", "s1", "2024-05-01", "disability_certified", None],
        ["health", "h1", "2024-06-01", "dropped_out", None],  # linked records pool per child
        ["police", "p1", "2024-06-01", "guardian_death", None],  # registered: not screened
        ["health", "h2", "2020-01-01", "guardian_death", None],  # before the look-back
    ])  # fmt: skip
    out = screening.screen(LINKED, PERSONS, events, pd.Timestamp("2023-01-01"))
    assert out["child_pid"].tolist() == ["A"]
    row = out.iloc[0]
    assert row["rules"] == ["dropout_with_disability"] and row["id_number"] == "522421201501020011"
    assert row["records"] == "health:h1\nschool:s1"


def test_lists_are_worded_per_language_and_formula_safe(tmp_path):
    events = _events([["health", "h1", "2024-06-01", "guardian_death", None]])
    screened = screening.screen(
        LINKED, PERSONS.assign(id_number=None), events, pd.Timestamp("2023-01-01")
    )
    frame = screening.list_frame(screened, "en")
    assert frame.loc[0, "rules"].startswith("a guardian died")
    screening.write_lists(tmp_path, frame, "en", dt.date(2024, 12, 31))
    csv = (tmp_path / "522421" / "screening.csv").read_text(encoding="utf-8-sig")
    assert "'=王五" in csv and "\n=" not in csv and ",=" not in csv
    html = (tmp_path / "522421" / "screening.html").read_text(encoding="utf-8")
    assert "=王五" in html and "<script" not in html
    assert (tmp_path / "522421" / "screening.xlsx").stat().st_size > 0
    report = screening.counts(screened, 3)
    assert report["by_rule"]["guardian_died"] == 1 and report["by_county"] == {"522421": 1}
