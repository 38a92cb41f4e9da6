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
    # base/data/label are shared; `synthetic` is the generate stage's section (named by issue #2)
    assert set(raw) - stages <= {"base", "data", "label", "synthetic"}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("train", "lightgbm", "num_leafs"), 3, "unknown key 'train.lightgbm.num_leafs'"),
        (("tarin",), {}, "unknown key 'tarin'"),
        (("base", "seed"), "abc", "base.seed: expected an integer"),
        (("train", "calibration"), "sigmoid", "train.calibration: 'sigmoid' is not one of"),
        (("base", "export_date"), "2024-13-01", "base.export_date: '2024-13-01' is not a YYYY-MM-DD date"),
        (("label", "rules", "benefit_lapse"), "yes", "label.rules.benefit_lapse: expected true or false"),
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


def test_missing_key_is_named(raw):
    bad = copy.deepcopy(raw)
    del bad["train"]["val_months"]
    with pytest.raises(SafetynetError, match="train.val_months: missing key"):
        parse_params(bad)


def test_overrides_merge_into_nested_sections():
    params = load_params(ROOT / "params.yaml", overrides={"synthetic": {"n_children": 50}})
    assert params.synthetic.n_children == 50
    assert params.synthetic.months == 36
