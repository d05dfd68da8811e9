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
