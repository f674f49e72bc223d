"""Charts drawn for files and HTTP responses, never for a screen. matplotlib's Agg backend is
selected here, once, before pyplot is imported: every module that draws imports ``plt`` from
this one, so none depends on which was imported first and no display is ever needed."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["plt", "png", "save"]


def png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (a response body); the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


def save(figure: Figure, path: Path, dpi: int = 110) -> None:
    """The figure written to ``path`` (its suffix names the format); the figure is closed."""
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
