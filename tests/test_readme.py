"""The README's two set-up commands are exactly what CI and the end-to-end test exercise."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def setup_commands() -> list[str]:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    return [line.split("#")[0].strip() for line in first_block.strip().splitlines()]


def test_readme_opens_with_exactly_two_setup_commands():
    assert README.index("```bash") < README.index("\n## ")
    assert setup_commands() == ["make pipeline", "make test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_make_targets_do_what_the_readme_says():
    pipeline = subprocess.run(["make", "-n", "pipeline"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    test = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "dvc repro" in pipeline and "pip install" in pipeline
    assert "pytest" in test and '.[test]' in test


def test_feature_table_matches_the_catalogue():
    from src.readme_tables import feature_table

    section = README.split("<!-- feature-table:start -->")[1].split("<!-- feature-table:end -->")[0]
    assert section.strip() == feature_table().strip(), "run `python -m src.readme_tables` to refresh README.md"
