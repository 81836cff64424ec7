"""Connectivity-space scatter plots and the population-selection curve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._base import axes_or_new, color

__all__ = ["plot_connectivity_scatter", "plot_population_selection"]


def plot_connectivity_scatter(
    loadings: pd.DataFrame, x: str, y: str, labels: Any = None, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Each neuron as a point ``(loading x, loading y)``, coloured by population.

    Parameters
    ----------
    loadings : pandas.DataFrame
        Per-neuron loading table (:func:`lrfit.analysis.loading_table`).
    x, y : str
        Columns (e.g. ``"m_1"``, ``"n_1"``, ``"w_in_motion"``).
    labels : array-like of int, optional
        Population of each neuron.
    ax : Axes, optional
        Where to draw.
    title : str, optional
        Axes title.

    Returns
    -------
    Figure
    """
    fig, ax = axes_or_new(ax, (3.6, 3.4))
    for col in (x, y):
        if col not in loadings.columns:
            from ..errors import LrfitError

            raise LrfitError(f"Unknown loading column '{col}'; the table has {list(loadings.columns)}.")
    lab = np.zeros(len(loadings), int) if labels is None else np.asarray(labels).astype(int)
    for p in np.unique(lab):
        sel = lab == p
        ax.scatter(
            loadings[x].to_numpy()[sel],
            loadings[y].to_numpy()[sel],
            s=9,
            alpha=0.7,
            color=color(p),
            label=f"population {p} ({sel.sum()})",
            lw=0,
        )
    ax.axhline(0, color="0.8", lw=0.6, zorder=0)
    ax.axvline(0, color="0.8", lw=0.6, zorder=0)
    ax.set_xlabel(f"{x} (loading, a.u.)")
    ax.set_ylabel(f"{y} (loading, a.u.)")
    if labels is not None:
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.set_title(title or f"{y} vs {x}", fontsize=10)
    return fig


def plot_population_selection(
    candidates: Any,
    bic: Any,
    ari: Any,
    chosen: int,
    ax: Axes | None = None,
    task_accuracy: Mapping[Any, float] | None = None,
) -> Figure:
    """BIC, seed stability (ARI) and, if known, resampled task accuracy against the number of populations.

    Parameters
    ----------
    candidates, bic, ari : array-like
        From :class:`lrfit.analysis.populations.PopulationResult`.
    chosen : int
        Number chosen (marked).
    ax : Axes, optional
        Where to draw.
    task_accuracy : mapping of int to float, optional
        Mean accuracy of networks resampled with each number of populations tried
        (``PopulationResult.task_accuracy``), drawn on the right axis with the ARI.

    Returns
    -------
    Figure
    """
    fig, ax = axes_or_new(ax, (4.2, 3.2))
    c = np.asarray(candidates)
    ax.plot(c, bic, "o-", color="C0", label="BIC (lower is better)")
    ax.axvline(chosen, color="0.5", ls=":", label=f"chosen: {chosen}")
    ax.set_xlabel("number of populations")
    ax.set_ylabel("BIC", color="C0")
    ax.set_xticks(c)
    ax2 = ax.twinx()
    ax2.plot(c, ari, "s--", color="C1", label="ARI across seeds")
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_ylabel("ARI across seeds", color="C1")
    if task_accuracy:
        counts = sorted(int(k) for k in task_accuracy)
        acc = {int(k): float(v) for k, v in task_accuracy.items()}
        ax2.plot(counts, [acc[k] for k in counts], "^-", color="C2", label="task accuracy of resampled networks")
        ax2.set_ylabel("ARI across seeds / accuracy", color="0.2")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    ax.set_title("Choosing the number of populations")
    return fig
