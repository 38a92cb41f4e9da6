"""Each stage's `deps` in dvc.yaml list exactly the project modules its process imports.

A stage runs `python -m src.cli <command>`: src/cli.py, its top-level imports, and the stage
module the command imports, with everything those import in turn (package __init__ files
included, since Python runs them). Every such file must be a dep, or DVC would not rerun the
stage when it changes; every Python dep must be imported, or the stage reruns for nothing.
The same walk finds import cycles, which the project has none of.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "src" / "cli.py"


def module_file(name: str) -> Path | None:
    """src.models.train -> src/models/train.py (or the package's __init__.py)."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _packages(name: str) -> list[Path]:
    parts = name.split(".")
    return [p for i in range(1, len(parts)) if (p := ROOT.joinpath(*parts[:i], "__init__.py")).exists()]


def imported_names(node: ast.AST) -> list[str]:
    """`src.*` modules imported anywhere under `node` (`from src.x import y` may name a module)."""
    names = []
    for item in ast.walk(node):
        if isinstance(item, ast.Import):
            names += [a.name for a in item.names]
        elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
            names.append(item.module)
            names += [f"{item.module}.{a.name}" for a in item.names]
    return [n for n in names if n.split(".")[0] == "src" and module_file(n)]


@cache
def direct_imports(path: Path) -> frozenset[Path]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    files = set()
    for name in imported_names(tree):
        files.add(module_file(name))
        files.update(_packages(name))
    return frozenset(files - {path})


def closure(start: set[Path]) -> set[Path]:
    seen, todo = set(), list(start)
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += direct_imports(path)
    return seen


def stage_module(command: str) -> Path:
    """The module the CLI subcommand imports (`from src.x import y as stage`)."""
    tree = ast.parse(CLI.read_text(encoding="utf-8"))
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name.replace("_", "-") == command:
            (name,) = {n for n in imported_names(fn) if module_file(n).name != "__init__.py"}
            return module_file(name)
    raise AssertionError(f"src/cli.py has no command {command}")


def stage_closure(command: str) -> set[Path]:
    cli_top = [n for n in ast.parse(CLI.read_text(encoding="utf-8")).body
               if isinstance(n, ast.Import | ast.ImportFrom)]  # fmt: skip
    start = {*_packages("src.cli"), stage_module(command)}
    start |= {module_file(n) for node in cli_top for n in imported_names(node)}
    start |= {p for p in list(start) for p in _packages(".".join(p.relative_to(ROOT).with_suffix("").parts))}
    return {CLI} | closure(start)  # the CLI's own imports: its top level and this command's


def declared_python_deps(deps: list[str]) -> set[Path]:
    files = set()
    for dep in deps:
        path = ROOT / dep
        if path.is_dir() and dep.startswith("src"):
            files |= set(path.rglob("*.py"))
        elif path.suffix == ".py":
            files.add(path)
    return files


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_deps_are_its_import_closure(name):
    stage = stages()[name]
    command = stage["cmd"].split("src.cli", 1)[1].split()[0]
    expected = stage_closure(command)
    declared = declared_python_deps(stage["deps"])
    rel = lambda files: sorted(str(p.relative_to(ROOT)) for p in files)  # noqa: E731
    assert rel(expected - declared) == [], f"{name}: imported but not in deps"
    assert rel(declared - expected) == [], f"{name}: in deps but never imported"


def test_no_import_cycles():
    files = set((ROOT / "src").rglob("*.py"))
    graph = {f: {d for d in direct_imports(f) if d.name != "__init__.py"} for f in files}
    state: dict[Path, int] = {}

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(str(p.relative_to(ROOT)) for p in cycle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(files):
        if node not in state:
            visit(node, [node])


def test_no_module_over_400_lines_except_declarative_tables():
    tables = {"src/features/catalogue.py"}
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "src").rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert {k: v for k, v in long.items() if k not in tables} == {}
