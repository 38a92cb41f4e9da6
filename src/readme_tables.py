"""Regenerate the README's feature table from the catalogue: `python -m src.readme_tables`."""

from __future__ import annotations

from pathlib import Path

from src.delivery.reasons import warning_sign
from src.features.catalogue import CATALOGUE, SYSTEMS

START, END = "<!-- feature-table:start -->", "<!-- feature-table:end -->"


def feature_table() -> str:
    """One Markdown table row per catalogue entry, grouped by protection system."""
    lines = [
        "| feature | protection system | what it measures | role | warning sign (direction; normal range) "
        "| actionable | when unknown | reason (zh) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = list(SYSTEMS)
    for entry in sorted(CATALOGUE, key=lambda e: (order.index(e.system), e.name)):
        zh = entry.template_zh.replace("{value}", "…").replace("|", "\\|")
        lines.append(
            f"| `{entry.name}` | {SYSTEMS[entry.system][1]} | {entry.description} | {entry.role} | "
            f"{warning_sign(entry)} | {'yes' if entry.actionable else 'no'}{' (protected)' if entry.protected else ''} | {entry.missing} | {zh} |"
        )
    return "\n".join(lines)


def refresh_readme(path: Path = Path("README.md")) -> None:
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    path.write_text(f"{head}{START}\n{feature_table()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    refresh_readme()
