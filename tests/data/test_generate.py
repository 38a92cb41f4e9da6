"""The synthetic generator: determinism, contract codes, defects, names, truth, bias, encoding,
seasonal recertification, school terms and prevalence drift."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from src.config import load_params
from src.data import contract as c
from src.data import generate
from src.data.synthetic.latent import (
    horizon_weights,
    month_starts,
    p_true,
    recert_window,
    transition_matrices,
)
from src.errors import SafetynetError
from tests.params import PARAMS_FILE

N, MONTHS = 600, 18


def small_params(**synthetic):
    return load_params(
        PARAMS_FILE, {"synthetic": {"n_children": N, "months": MONTHS, **synthetic}}
    )


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "synthetic"
    generate.run(path, small_params(hostile_name_rate=0.05))
    return path


def read(out, table):
    return pd.read_csv(out / f"{table}.csv", dtype=str, keep_default_na=False)


def clean_rows(out, table):
    manifest = json.loads((out / "injected_defects.json").read_text())["tables"][table]
    return read(out, table).iloc[: manifest["rows_clean"]]


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_params_give_identical_bytes(out, tmp_path):
    generate.run(tmp_path / "again", small_params(hostile_name_rate=0.05))
    assert digest(out) == digest(tmp_path / "again")


# casework_reviews: the generator writes no reviews yet (they come back through `safetynet reviews import`)
@pytest.mark.parametrize("table", [t for t in c.TABLES if t not in ("school_calendar", "casework_reviews")])
def test_clean_rows_use_contract_codes_and_dates(out, table):
    rows = clean_rows(out, table)
    spec = c.TABLES[table]
    assert list(rows.columns) == spec.column_names
    for col in spec.columns:
        values = rows[col.name]
        if col.codes is not None and col.kind == c.CODE:
            listed = values.str.split("|").explode() if col.list else values
            assert set(listed[listed != ""]) <= set(col.codes), col.name
        if col.required:
            assert (values != "").all(), col.name
        if col.kind == c.DATE and not col.future_ok:
            dates = pd.to_datetime(values[values != ""], format="%Y-%m-%d")
            assert dates.max() <= pd.Timestamp("2024-06-30") and dates.min() >= pd.Timestamp(
                c.MIN_DATE
            )


def test_absences_fall_on_school_days(out):
    days = pd.to_datetime(clean_rows(out, "school_absences")["absence_date"])
    assert c.is_default_school_day(days).all()


def test_defect_counts_match_shares(out):
    manifest = json.loads((out / "injected_defects.json").read_text())["tables"]
    shares = small_params().synthetic.defects
    welfare = manifest["welfare_events"]
    counts = {d["kind"]: d["count"] for d in welfare["defects"]}
    base = welfare["rows_clean"] + sum(
        d["count"] for d in welfare["defects"] if d["kind"] != "duplicate"
    )
    assert counts["duplicate"] == round(shares.duplicate * base)
    assert counts["unknown_code"] == round(shares.unknown_code * base)
    assert welfare["rows_written"] == len(read(out, "welfare_events"))
    block = (
        read(out, "welfare_events")
        .iloc[next(d["first_row"] for d in welfare["defects"] if d["kind"] == "unknown_code") :]
        .head(counts["unknown_code"])
    )
    assert (block["event_type"] == "not_a_code").all()


def test_children_defects_only_on_decoys_without_events(out):
    manifest = json.loads((out / "injected_defects.json").read_text())["tables"]["children"]
    children = read(out, "children")
    bad = children.iloc[manifest["rows_clean"] :]
    spoiled = bad.iloc[next(d["count"] for d in manifest["defects"] if d["kind"] == "duplicate") :]
    assert (
        len(spoiled) == sum(d["count"] for d in manifest["defects"] if d["kind"] != "duplicate") > 0
    )
    events = pd.concat(
        [read(out, t)["child_id"] for t, spec in c.TABLES.items()
         if t not in ("children", "casework_reviews") and "child_id" in spec.column_names]  # fmt: skip
    )
    assert not spoiled["child_id"].isin(events).any()


def test_hostile_names_round_trip(out):
    names = read(out, "children")["name"]
    assert names.str.contains("\n").any() and names.str.contains(",").any()
    assert names.str.contains("<script>").any() and names.str.startswith(("=", "+", "-", "@")).any()
    registry, _, _ = generate.simulate(small_params(hostile_name_rate=0.05))
    assert set(registry.name) <= set(names)


def test_id_numbers_have_valid_check_digits(out):
    ids = clean_rows(out, "children")["id_number"]
    assert (ids.str.len() == 18).all()
    digits = np.array([[int(ch) for ch in s[:17]] for s in ids])
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    assert (np.array(list("10X98765432"))[(digits @ weights) % 11] == ids.str[17].to_numpy()).all()


def test_truth_covers_the_cohort(out):
    truth = pd.read_parquet(out / "truth.parquet")
    children = clean_rows(out, "children")
    assert truth["p_true"].between(0, 1).all() and not truth.duplicated(["child_id", "as_of"]).any()
    first = truth.merge(children, on="child_id")
    assert (pd.to_datetime(first["registered_date"]) <= first["as_of"]).all()
    age = (first["as_of"] - pd.to_datetime(first["birth_date"])).dt.days / 365.25
    assert age.max() < 18
    # every registered, under-18 child at the first as-of date appears (exits start later)
    t0 = pd.Timestamp("2023-01-01")
    expected = children[
        (pd.to_datetime(children["registered_date"]) <= t0)
        & (pd.to_datetime(children["birth_date"]) > t0 - pd.DateOffset(years=18))
    ]
    assert set(expected["child_id"]) == set(truth.loc[truth["as_of"] == t0, "child_id"])


def test_p_true_matches_a_hand_computed_chain():
    p = transition_matrices(np.array([1.0]))
    starts = month_starts(np.datetime64("2023-01-01"), 3)
    w = horizon_weights(np.datetime64("2023-01-01"), starts, 40)  # 2-31 Jan and 1-10 Feb
    assert np.allclose(w, [30 / 31, 10 / 28])
    q = np.array([[0.1, 0.2, 0.3]])

    class Terms:
        transition, outcome, exit, allowed = p, q, np.zeros(1), np.ones(1, dtype=bool)

    got = p_true(np.array([0, 2]), [Terms, Terms], w)
    clear_in_feb = 1 - w[1] * q[0]  # by the state in February
    clear = (1 - w[0] * q[0]) * (p[0] @ clear_in_feb)
    assert got == pytest.approx(1 - clear[[0, 2]])


def test_p_true_never_rounds_below_zero():
    """With no outcome possible, 1 - u is 0 up to rounding, which fell to -2e-16 at 1M children
    and made every probability metric of the oracle refuse the score."""
    rng = np.random.default_rng(0)
    n = 100_000
    h = np.exp(rng.normal(0.0, 1.0, n))

    class Terms:
        transition, outcome = transition_matrices(h), np.zeros((n, 3))
        exit, allowed = rng.random(n) * 0.01, np.ones(n, dtype=bool)

    raw = 1 - (Terms.exit + (1 - Terms.exit) * Terms.transition.sum(axis=2)[:, 0])
    assert raw.min() < 0  # the rounding the clip guards against happens in this draw
    got = p_true(np.zeros(n, dtype=int), [Terms], np.ones(1))
    assert got.min() == 0.0 and got.max() <= 1.0


def test_generator_outcomes_are_frequent_and_predictable_by_p_true():
    params = small_params(n_children=1500, months=24)
    registry, model, sim = generate.simulate(params)
    truth = generate.truth_table(registry, model, sim, 180)
    fired = sim.outcomes.frame()
    outcomes = pd.DataFrame(
        {"child_id": registry.child_id[fired["child"].astype(int)], "date": fired["date"]}
    )
    labels = generate.realised_labels(truth, outcomes, 180)
    observed = (truth["as_of"] + pd.Timedelta(days=180) <= pd.Timestamp("2024-12-31")).to_numpy()
    assert 0.06 < labels[observed].mean() < 0.18
    assert abs(truth["p_true"][observed].mean() - labels[observed].mean()) < 0.02
    assert 0.78 < roc_auc_score(labels[observed], truth["p_true"][observed]) < 0.93


def simulated_absences(enabled: bool, mode: str = "omit") -> tuple:
    bias = {"enabled": enabled, "hukou": "rural", "share": 0.6, "mode": mode,
            "sources": ["school_absences", "casework_visits", "welfare_payments"]}  # fmt: skip
    registry, _, sim = generate.simulate(small_params(measurement_bias=bias))
    rows = pd.DataFrame(sim.frame("school_absences"))
    rows["rural"] = registry.hukou[rows["child"].astype(int)] == c.HUKOU.index("rural")
    return sim, rows


def untouched(rows: pd.DataFrame) -> pd.DataFrame:
    """Outcome-defining rows and the other group's rows: the knob must leave these alone."""
    return rows[rows["protected"].astype(bool) | ~rows["rural"]].reset_index(drop=True)


def unexcused_share(rows: pd.DataFrame) -> float:
    rural_background = rows[~rows["protected"].astype(bool) & rows["rural"]]
    return (rural_background["absence_type"] == c.ABSENCE_TYPE.index("unexcused")).mean()


@pytest.mark.parametrize("mode", ["relabel", "omit", "conceal"])
def test_measurement_bias_changes_only_the_groups_background_records(mode):
    off_sim, off = simulated_absences(False)
    sim, on = simulated_absences(True, mode)
    # the world is the same with the knob on: chain, outcomes, and every untouched row
    np.testing.assert_array_equal(sim.states, off_sim.states)
    assert pd.DataFrame(sim.outcomes.frame()).equals(pd.DataFrame(off_sim.outcomes.frame()))
    assert len(untouched(off)) > 0
    pd.testing.assert_frame_equal(untouched(on), untouched(off))
    recorded = (len(on) - len(untouched(on))) / (len(off) - len(untouched(off)))
    if mode == "relabel":  # every absence recorded, a share of the unexcused ones as excused
        assert recorded == 1
        assert unexcused_share(on) < 0.6 * unexcused_share(off)
    elif mode == "omit":  # about 40% of the group's absences recorded, the type mix unchanged
        assert 0.3 < recorded < 0.5
        assert abs(unexcused_share(on) - unexcused_share(off)) < 0.05
    else:  # only at-risk children's absences thinned, and retyped like a stable child's
        assert 0.6 < recorded < 0.8
        assert unexcused_share(on) < unexcused_share(off) - 0.02


def test_gb18030_option_writes_decodable_gb18030(tmp_path):
    generate.run(tmp_path / "gb", small_params(n_children=200, months=6, encoding="gb18030"))
    raw = (tmp_path / "gb" / "children.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "child_id" in raw.decode("gb18030")


def test_parquet_option(tmp_path):
    generate.run(tmp_path / "pq", small_params(n_children=200, months=6, file_format="parquet"))
    frame = pd.read_parquet(tmp_path / "pq" / "welfare_events.parquet")
    assert list(frame.columns) == c.TABLES["welfare_events"].column_names


def test_recert_due_falls_on_the_first_day_of_the_registration_anniversary_month(out):
    welfare = clean_rows(out, "welfare_events")
    due = welfare[welfare["event_type"] == "recert_due"].merge(
        clean_rows(out, "children")[["child_id", "registered_date"]], on="child_id"
    )
    day, registered = pd.to_datetime(due["event_date"]), pd.to_datetime(due["registered_date"])
    assert len(due) > 100 and (day.dt.day == 1).all()
    assert (day.dt.month == registered.dt.month).all() and ((day - registered).dt.days > 300).all()


def _lapses_in_recert_window(ratio: float) -> tuple[float, float]:
    """Share of benefit lapses, and of the other outcomes, in the child's recertification window."""
    registry, _, sim = generate.simulate(
        small_params(n_children=1500, months=24, recert_hazard_ratio=ratio)
    )
    fired = sim.outcomes.frame()
    child = fired["child"].astype(np.int64)
    month = fired["date"].astype("datetime64[M]").astype("datetime64[D]")
    inside = np.array(
        [recert_window(registry.registered[[i]], m)[0] for i, m in zip(child, month, strict=True)]
    )
    lapse = fired["rule"].astype(np.int64) == 0
    return inside[lapse].mean(), inside[~lapse].mean()


def test_benefit_lapses_cluster_in_each_childs_recertification_window():
    lapses, others = _lapses_in_recert_window(2.0)
    assert lapses > 0.3 and lapses > 1.5 * others  # due month + the next: 2 of 12 months
    flat_lapses, flat_others = _lapses_in_recert_window(1.0)  # 1 = not seasonal
    assert abs(flat_lapses - flat_others) < 0.08 and flat_lapses < 0.25


def test_prevalence_drift_moves_the_monthly_outcome_rate_and_p_true_stays_exact():
    def monthly_p_true(drift: float) -> pd.Series:
        registry, model, sim = generate.simulate(
            small_params(n_children=1500, months=24, prevalence_drift=drift)
        )
        truth = generate.truth_table(registry, model, sim, 180)
        return truth.groupby("as_of")["p_true"].mean(), model

    flat, flat_model = monthly_p_true(0.0)
    assert not flat_model.drift.any() and flat.max() / flat.min() < 1.08
    drifting, model = monthly_p_true(0.08)
    assert drifting.max() / drifting.min() > 1.15
    # a validation-like and a test-like quarter nine months apart differ by more than 5%
    assert abs(drifting.iloc[18:21].mean() / drifting.iloc[9:12].mean() - 1) > 0.05
    again = generate.simulate(small_params(n_children=1500, months=24, prevalence_drift=0.08))[1]
    np.testing.assert_array_equal(model.drift, again.drift)  # seeded


def test_school_absences_fall_in_term_time_only(out):
    days = pd.to_datetime(clean_rows(out, "school_absences")["absence_date"])
    month_day = days.dt.month * 100 + days.dt.day
    assert not ((month_day >= 115) & (month_day <= 220)).any()  # winter break
    assert not ((month_day >= 710) & (month_day <= 831)).any()  # summer break
    assert (days.dt.month == 9).any() and (days.dt.month == 3).any()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("prevalence_drift", -0.1, "synthetic.prevalence_drift must be in [0, 1]"),
        ("recert_hazard_ratio", 0, "synthetic.recert_hazard_ratio must be > 0"),
    ],
)
def test_seasonality_params_are_checked_at_load(key, value, message):
    with pytest.raises(SafetynetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        small_params(**{key: value})


def test_children_export_the_value_after_each_fields_last_recorded_change(out):
    history = clean_rows(out, "registry_history")
    assert len(history) and set(history["field"]) == set(c.REGISTRY_HISTORY_FIELDS)
    children = clean_rows(out, "children").set_index("child_id")
    ordered = history.sort_values(["child_id", "field", "change_date"], kind="stable")
    chains = ordered.groupby(["child_id", "field"])
    linked = ordered["old_value"].iloc[1:].to_numpy() == ordered["new_value"].iloc[:-1].to_numpy()
    same_chain = (chains.cumcount() > 0).to_numpy()[1:]
    assert linked[same_chain].all()  # each change starts where the previous one ended
    last = chains.tail(1)
    exported = [children.loc[r.child_id, r.field] for r in last.itertuples()]
    assert (last["new_value"].to_numpy() == np.array(exported)).all()


def test_guardian_lost_is_followed_by_a_new_guardian_type(out):
    history = clean_rows(out, "registry_history")
    protection = clean_rows(out, "protection_events")
    lost = protection[protection["event_type"] == "guardian_lost"]
    changed = history[history["field"] == "guardian_type"].merge(lost, on="child_id")
    after = pd.to_datetime(changed["change_date"]) - pd.to_datetime(changed["event_date"])
    followed = changed[after.between(pd.Timedelta(days=7), pd.Timedelta(days=60))]["child_id"]
    assert followed.nunique() >= 0.5 * lost["child_id"].nunique() > 0


def test_registry_history_can_be_switched_off_and_children_stay_as_of_export(out, tmp_path):
    generate.run(tmp_path / "off", small_params(hostile_name_rate=0.05, registry_history=False))
    assert not list((tmp_path / "off").glob("registry_history.*"))
    assert (tmp_path / "off" / "children.csv").read_bytes() == (out / "children.csv").read_bytes()


def test_the_service_directory_is_plausible_and_leaves_need_unmet(out):
    providers, children = read(out, "service_providers"), clean_rows(out, "children")
    assert providers["services"].str.split("|").explode().isin(c.TABLES["service_providers"].column("services").codes).all()
    assert providers["provider_id"].is_unique and set(providers["county_code"]) <= set(children["county_code"])
    rural_share = children.assign(rural=children["hukou"].eq("rural")).groupby("community_code")["rural"].mean()
    local = providers["community_codes"].str.split("|").explode().replace("", np.nan).dropna()
    hosted = rural_share.index.to_series().isin(local)
    assert hosted[rural_share > 0.5].mean() < hosted[rural_share <= 0.5].mean()  # fewer providers in rural villages
    offered = providers.assign(s=providers["services"].str.split("|")).explode("s")
    capacity = offered.groupby("s")["monthly_capacity"].apply(lambda v: v.astype(int).sum())
    listed = 5 * children["community_code"].nunique()  # base.children_per_caseworker x villages
    assert capacity.get("psychological_support", 0) < 0.1 * listed and capacity.sum() < 3 * listed
    assert (providers["active_to"].ne("") & (providers["active_to"] < "2024-06-01")).any()  # some contracts ended


def test_the_service_directory_can_be_switched_off(tmp_path):
    generate.run(tmp_path / "s", small_params(n_children=200, months=6, service_providers=False))
    assert not list((tmp_path / "s").glob("service_providers.*"))
