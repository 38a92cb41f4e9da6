"""Each notebook is paired with a percent-format .py (jupytext) and the two agree."""

from pathlib import Path

import jupytext

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_every_notebook_has_an_identical_percent_script():
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert notebooks
    for ipynb in notebooks:
        script = ipynb.with_suffix(".py")
        assert script.exists(), f"{script.name} missing: run `jupytext --sync {ipynb.name}`"
        a, b = jupytext.read(ipynb), jupytext.read(script)
        assert [c.source for c in a.cells] == [c.source for c in b.cells], f"{ipynb.name} and {script.name} differ"
