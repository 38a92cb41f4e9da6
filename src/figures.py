"""Every static figure of the project: matplotlib, headless, and byte-identical for the same data.

Reports are opened offline (government intranets), so figures are PNG files, never JS. A
figure is built with `figure()` (an object-oriented `Figure`, no pyplot global state, so
nothing leaks between stages or tests) and written with `save()` (no timestamp or software
metadata, so identical data gives identical bytes and `dvc repro` stays a no-op).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display on servers

from matplotlib.figure import Figure  # noqa: E402

PALETTE = tuple(f"C{i}" for i in range(10))
PNG_METADATA = {"Software": None}


def figure(width: float = 6.0, height: float = 4.5, **subplots) -> tuple[Figure, object]:
    """A new figure and its axes (`subplots` passes nrows/ncols/width_ratios/...)."""
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(**subplots)


def save(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write `fig` as PNG without metadata that changes between runs."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, format="png", metadata=PNG_METADATA)


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The PNG of `fig` in memory (for MLflow artifacts and inline images)."""
    buffer = io.BytesIO()
    save(fig, buffer, dpi=dpi)
    return buffer.getvalue()


def barh(labels, values, title: str, xlabel: str, colours=None, height: float | None = None):
    """A horizontal bar chart, largest value on top (labels and values in descending order)."""
    labels, values = list(labels)[::-1], list(values)[::-1]
    fig, ax = figure(7, height or max(2.5, 0.25 * len(labels) + 1))
    ax.barh(labels, values, color=list(colours)[::-1] if colours is not None else "#3b6ea8")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return fig, ax
