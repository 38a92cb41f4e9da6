"""The `safetynet` CLI: validate, doctor, one-line errors and --debug, on the tiny conformance export."""

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from src.cli import app
from tests.params import PARAMS_FILE

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT / "tests/fixtures/conformance/raw"
PARAMS = str(PARAMS_FILE)
runner = CliRunner()


@pytest.fixture
def export(tmp_path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(CONFORMANCE, raw)
    return raw


def invoke(*args: str):
    return runner.invoke(app, ["--params", PARAMS, *args])


def test_validate_accepts_a_conforming_export(export):
    result = invoke("validate", str(export))
    assert result.exit_code == 0, result.output
    assert "conforms to the data contract" in result.output


def test_validate_lists_defects_with_reasons_and_fails(export):
    with (export / "medical_events.csv").open("a", encoding="utf-8") as f:
        f.write("C01,2024-02-30,outpatient,,,\n")  # impossible date
        f.write("C01,2024-03-01,dentist,,,\n")  # unknown code
        f.write("C99,2024-03-01,outpatient,,,\n")  # not in the registry
    result = invoke("validate", str(export))
    assert result.exit_code == 1
    for reason in ("malformed_date:event_date", "unknown_code:event_type", "unknown_child"):
        assert reason in result.output
    assert "C99" not in result.output  # row numbers, never values


def test_structural_problem_is_one_line_naming_file_and_column(export, tmp_path):
    text = (export / "children.csv").read_text(encoding="utf-8").replace("hukou", "huk0u")
    (export / "children.csv").write_text(text, encoding="utf-8")
    out = tmp_path / "interim"
    result = invoke("ingest", "--raw", str(export), "--interim", str(out), "--quality", str(tmp_path / "q.json"))
    assert result.exit_code == 2
    message = result.stderr.strip() if result.stderr else result.output.strip()
    assert len(message.splitlines()) == 1
    assert "children.csv" in message and "hukou" in message
    assert not out.exists()


def test_debug_shows_the_traceback(export):
    (export / "children.csv").unlink()
    result = runner.invoke(app, ["--debug", "--params", PARAMS, "ingest", "--raw", str(export)])
    assert result.exit_code != 0
    assert result.exception is not None  # raised, not swallowed into one line


def test_bad_params_are_one_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text((PARAMS_FILE).read_text(encoding="utf-8").replace("test_months", "test_monts"))
    result = runner.invoke(app, ["--params", str(bad), "validate", str(CONFORMANCE)])
    assert result.exit_code == 2
    assert "unknown key 'train.test_monts'" in result.output


def test_doctor_reports_every_check():
    result = invoke("doctor")
    for what in ("python", "lightgbm", "SAFETYNET_PID_KEY", "params"):
        assert what in result.output
    assert result.exit_code in (0, 1)


def test_every_stage_has_a_subcommand():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    result = runner.invoke(app, ["--help"])
    for stage in stages:
        assert stage.replace("_", "-") in result.output


def test_validate_documents_its_exit_codes_and_names_a_missing_folder(tmp_path):
    from typer.testing import CliRunner

    from src.cli import app

    runner = CliRunner()
    assert "2 = not ingestible" in " ".join(runner.invoke(app, ["validate", "--help"]).output.split())
    result = runner.invoke(app, ["--params", PARAMS, "validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "does not exist" in result.output
