"""Saving figures: written atomically (never a half-written PNG), then closed to free memory."""
from __future__ import annotations

from pathlib import Path

from .io import atomic_path


def save_figure(fig, path: str | Path, dpi: int = 120, tight: bool = True) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix, PNG by default) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if tight:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    plt.close(fig)
    return path


def wrap_to(text: str, width_in: float, fontsize_pt: float = 12.0) -> str:
    """``text`` broken at spaces into lines that fit ``width_in`` inches at ``fontsize_pt`` points
    (an average glyph taken as 0.6 em, generous for DejaVu Sans); existing line breaks are kept."""
    import textwrap

    n = max(8, int(width_in * 72 / (0.6 * fontsize_pt)))
    return "\n".join(textwrap.fill(line, n, break_long_words=False) if line else "" for line in str(text).split("\n"))


def set_wrapped_title(ax, text: str, fontsize_pt: float | None = None):
    """``ax.set_title`` with the title wrapped to the Axes' width (no title cut or running into the next panel)."""
    import matplotlib

    size = fontsize_pt or matplotlib.rcParams["axes.titlesize"]
    size = size if isinstance(size, (int, float)) else matplotlib.font_manager.FontProperties(size=size).get_size()
    width = ax.get_position().width * ax.figure.get_figwidth()
    return ax.set_title(wrap_to(text, width, size), fontsize=size)
