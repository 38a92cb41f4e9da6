import copy
from pathlib import Path

import pytest
import yaml

from src.config import load_params, parse_params
from src.errors import SafetynetError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def raw():
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def test_params_yaml_loads_into_frozen_typed_objects(raw):
    params = parse_params(raw)
    assert params.label.horizon_days == 180
    assert params.features.windows_days == (30, 90, 180, 365)
    assert params.label.rules.enabled() == ["benefit_lapse", "school_dropout", "medical_lapse", "protection_crisis"]
    with pytest.raises(AttributeError):
        params.base.seed = 1  # frozen


def test_every_params_section_is_a_stage_or_shared(raw):
    import yaml as _yaml

    stages = set(_yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    # base/data/label/spark are shared; `synthetic` is the generate stage's section (issue #2)
    assert set(raw) - stages <= {"base", "data", "label", "spark", "synthetic"}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("train", "lightgbm", "num_leafs"), 3, "unknown key 'train.lightgbm.num_leafs'"),
        (("tarin",), {}, "unknown key 'tarin'"),
        (("base", "seed"), "abc", "base.seed: expected an integer"),
        (("train", "calibration"), "sigmoid", "train.calibration: 'sigmoid' is not one of"),
        (("base", "export_date"), "2024-13-01", "base.export_date: '2024-13-01' is not a YYYY-MM-DD date"),
        (("label", "rules", "benefit_lapse"), "yes", "label.rules.benefit_lapse: expected true or false"),
        # checks across fields, at load rather than inside a stage
        (("evaluate", "gate_metric"), "f1", "evaluate.gate_metric 'f1' is not an evaluated metric"),
        (("features", "windows_days"), [30, 60], "features.windows_days [30, 60] differs from the catalogue"),
        (("train", "test_months"), 0, "train.test_months must be at least 1"),
        (("train", "backtest", "folds"), 1, "train.backtest: folds must be >= 2"),
        (("train", "backtest", "calibration_folds"), 9, "train.backtest.calibration_folds must be between"),
        (("train", "negative_sample_rate"), 0, "train.negative_sample_rate must be in (0, 1]"),
        (("label", "horizon_days"), 0, "label.horizon_days must be a whole number >= 1"),
        (("watchlist", "risk_bands"), [0.3, 0.2], "watchlist.risk_bands: expected two increasing"),
        (("fairness", "tolerance"), [1.1, 1.25], "fairness.tolerance must be [low, high]"),
        (("fairness", "intersections"), [["hukou"]], "fairness.intersections entries must name two"),
        (("fairness", "attributes"), ["sex", "income"], "fairness: 'income' is not an audited attribute"),
        (("explain", "shap_margin"), -0.5, "explain: top_n_reasons must be >= 1, shap_margin >= 0"),
        (("evaluate", "logistic_max_rows"), 0, "evaluate: peer_max_rows and logistic_max_rows must be >= 1"),
        (("synthetic", "measurement_bias", "sources"), ["payroll"], "measurement_bias.sources must list some of"),
        (("features", "engine"), "polars", "features.engine: 'polars' is not one of"),
        (("spark", "executor_memory"), "4GB", "spark.executor_memory must be a JVM size"),
        (("spark", "shuffle_partitions"), 0, "spark.shuffle_partitions must be at least 1"),
    ],
)
def test_bad_keys_stop_with_one_line_naming_the_key(raw, path, value, message):
    bad = copy.deepcopy(raw)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(SafetynetError) as err:
        parse_params(bad)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_bad_gate_metric_fails_before_any_stage_runs(raw, tmp_path):
    bad = copy.deepcopy(raw)
    bad["evaluate"]["gate_metric"] = "precision_at_5"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(SafetynetError, match="gate_metric"):
        load_params(path)


def test_an_unquoted_date_is_one_line_saying_how_to_write_it(tmp_path):
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("export_date: null", "export_date: 2024-12-31"), encoding="utf-8")
    with pytest.raises(SafetynetError) as err:
        load_params(path)
    assert 'base.export_date: write the date in quotes, export_date: "2024-12-31"' in str(err.value)
    path.write_text(text.replace("export_date: null", 'export_date: "2024-12-31"'), encoding="utf-8")
    assert str(load_params(path).base.export_date) == "2024-12-31"


def test_the_data_span_must_hold_the_split():
    import datetime as dt

    from src.config import check_split

    params = load_params(ROOT / "params.yaml")
    months = [dt.date(2024, m, 1) for m in range(1, 13)]
    with pytest.raises(SafetynetError, match="cannot hold 4 backtest folds"):
        check_split(params, months, dt.date(2024, 12, 31))


def test_missing_key_is_named(raw):
    bad = copy.deepcopy(raw)
    del bad["train"]["test_months"]
    with pytest.raises(SafetynetError, match="train.test_months: missing key"):
        parse_params(bad)


def test_overrides_merge_into_nested_sections():
    params = load_params(ROOT / "params.yaml", overrides={"synthetic": {"n_children": 50}})
    assert params.synthetic.n_children == 50
    assert params.synthetic.months == 36


def test_the_tests_params_file_has_exactly_the_projects_keys(raw):
    from tests.params import PARAMS_FILE

    def keys(tree, prefix=""):
        if not isinstance(tree, dict):
            return {prefix}
        return set().union(*(keys(v, f"{prefix}.{k}") for k, v in tree.items()))

    assert keys(yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))) == keys(raw)
