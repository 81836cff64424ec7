"""Figure helpers: figures built on :class:`matplotlib.figure.Figure` with the Agg canvas.

No pyplot state is used, so nothing ever opens a window (``plt.show`` is never
called) and figures can be made from worker threads or headless machines.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Colours of population / group k (colour-blind friendly "tab10").
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def new_figure(
    figsize: tuple[float, float] = (5.0, 4.0), nrows: int = 1, ncols: int = 1, **kwargs: Any
) -> tuple[Figure, Any]:
    """A new Agg-backed figure and its axes (``fig.subplots(nrows, ncols)``)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


def axes_or_new(ax: Axes | None, figsize: tuple[float, float] = (5.0, 4.0)) -> tuple[Figure, Axes]:
    """``(ax.figure, ax)`` or a new single-axes figure."""
    if ax is None:
        return new_figure(figsize)
    return ax.figure, ax


def color(k: int) -> str:
    """Colour of group ``k``."""
    return PALETTE[int(k) % len(PALETTE)]


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """PNG bytes of a figure."""
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def figure_base64(fig: Figure, dpi: int = 110) -> str:
    """``data:image/png;base64,...`` URI of a figure (for self-contained HTML)."""
    return "data:image/png;base64," + base64.b64encode(figure_png(fig, dpi)).decode("ascii")


def save_figure(fig: Figure, path: str | Path, dpi: int = 130) -> Path:
    """Write a figure (format from the suffix) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def group_labels(conditions: Any, columns: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Label each trial by its values of *columns* (e.g. ``context=motion, target=1``).

    Default columns: ``context`` and ``target`` where present, else the first column.

    Returns
    -------
    tuple
        ``(labels (K,) str, columns used)``.
    """
    import pandas as pd

    if conditions is None or len(getattr(conditions, "columns", [])) == 0:
        n = 0 if conditions is None else len(conditions)
        return np.array(["all"] * n), []
    cond = pd.DataFrame(conditions)
    if columns is None:
        columns = [c for c in ("context", "target") if c in cond.columns] or [cond.columns[0]]
    cols = [c for c in columns if c in cond.columns]
    if not cols:
        return np.array(["all"] * len(cond)), []
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)

    labels = np.array([", ".join(f"{c}={fmt(v)}" for c, v in zip(cols, row))
                       for row in cond[cols].itertuples(index=False)], dtype=object).astype(str)
    return labels, cols
