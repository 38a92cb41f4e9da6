"""Issue 10's figures: import cycles, the largest modules, `make test` wall time, and whether a
repro leaves the work tree clean.

    .venv/bin/python benchmarks/bench_layout.py              # layout only (a second)
    .venv/bin/python benchmarks/bench_layout.py --time-tests # also time the fast tests
    .venv/bin/python benchmarks/bench_layout.py --repro      # also `dvc repro` + `git status`

Run on demand, never inside a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_dvc_deps import direct_imports  # noqa: E402


def cycles() -> list[list[Path]]:
    """Every elementary cycle's entry point found by a depth-first walk (0 = a clean graph)."""
    files = sorted((ROOT / "src").rglob("*.py"))
    graph = {f: sorted(d for d in direct_imports(f) if d.name != "__init__.py") for f in files}
    found, state = [], {}

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1 and nxt in trail:
                found.append([*trail[trail.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in files:
        if node not in state:
            visit(node, [node])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-tests", action="store_true")
    parser.add_argument("--repro", action="store_true")
    args = parser.parse_args()
    found = cycles()
    print(f"import cycles: {len(found)}")
    for cycle in found:
        print("  " + " -> ".join(str(p.relative_to(ROOT)) for p in cycle))
    sizes = sorted(((len(p.read_text(encoding="utf-8").splitlines()), p) for p in (ROOT / "src").rglob("*.py")),
                   reverse=True)  # fmt: skip
    print("largest modules:")
    for n, path in sizes[:5]:
        print(f"  {n:5d}  {path.relative_to(ROOT)}")
    print(f"modules over 400 lines: {sum(n > 400 for n, _ in sizes)}")
    if args.time_tests:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "not e2e and not slow"], cwd=ROOT, check=True)
        print(f"fast tests: {time.perf_counter() - start:.0f} s")
    if args.repro:
        subprocess.run(["dvc", "repro"], cwd=ROOT, check=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
        print(f"git status after dvc repro: {status.stdout.strip() or 'clean'}")


if __name__ == "__main__":
    main()
