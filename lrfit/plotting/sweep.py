"""Summary figure of a sweep: each metric against the first grid key, mean +- s.d. over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._base import color, new_figure, save_figure

#: Metrics drawn when present in the results, with their axis labels.
SUMMARY_METRICS = {
    "r2_test": "test R$^2$ (held-out trials)",
    "bits_per_spike_test": "bits per spike (held-out trials)",
    "accuracy_student": "task accuracy (teacher's readout)",
    "heldout_r2": "held-out neuron R$^2$",
}


def _x_positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None, bool]:
    """Numeric x values (or category positions with tick labels) and whether to use a log axis."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        x = numeric.to_numpy(float)
        log = bool((x > 0).all() and x.max() / x.min() >= 50)
        return x, None, log
    cats = list(dict.fromkeys(values.astype(str)))
    return np.array([cats.index(v) for v in values.astype(str)], float), cats, False


def plot_sweep_summary(results: pd.DataFrame, keys: Sequence[str], path: str | Path | None = None,
                       seeds: Sequence[str] = ()) -> Figure:
    """Plot sweep metrics against the first grid key, one line per combination of the other keys.

    The *seeds* keys (the sweep passes :func:`lrfit.runs.sweep.seed_keys`) are averaged over:
    points show the mean, error bars the standard deviation across seeds.

    Parameters
    ----------
    results : pandas.DataFrame
        ``results.csv`` rows (grid columns + metric columns).
    keys : sequence of str
        Grid keys in sweep order (the first one not in *seeds* is the x axis).
    path : str or Path, optional
        Save the figure there.
    seeds : sequence of str
        Grid keys that only vary seeds, averaged over.

    Returns
    -------
    matplotlib.figure.Figure
    """
    keys = list(keys)
    seeds = [k for k in seeds if k in keys]
    x_key = next((k for k in keys if k not in seeds), keys[0])
    groups = [k for k in keys if k != x_key and k not in seeds]
    metrics = [m for m in SUMMARY_METRICS if m in results and results[m].notna().any()] or ["r2_test"]
    fig, axes = new_figure((4.6 * len(metrics), 3.8), 1, len(metrics), squeeze=False)
    x_all, cats, log = _x_positions(results[x_key])
    frame = results.assign(_x=x_all)
    grouped = frame.groupby(groups, sort=False, dropna=False) if groups else [((), frame)]
    for ax, metric in zip(axes[0], metrics):
        for k, (label, part) in enumerate(grouped):
            stats = part.groupby("_x")[metric].agg(["mean", "std", "count"]).sort_index()
            label = label if isinstance(label, tuple) else (label,)
            name = ", ".join(f"{g.split('.')[-1]}={v}" for g, v in zip(groups, label)) or "all points"
            n = int(stats["count"].max()) if len(stats) else 0
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0.0), marker="o", capsize=3,
                        color=color(k), label=f"{name} (n={n})" if seeds else name)
        if metric == "accuracy_student" and "accuracy_teacher" in results:
            ax.axhline(float(results["accuracy_teacher"].mean()), color="0.4", ls="--", lw=1, label="teacher")
        ax.set_xlabel(x_key)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_ylabel(SUMMARY_METRICS.get(metric, metric))
        if log:
            ax.set_xscale("log")
        if cats is not None:
            ax.set_xticks(range(len(cats)), cats)
        elif not log and np.allclose(x_all, np.round(x_all)) and len(set(x_all)) <= 12:
            ax.set_xticks(sorted(set(x_all)))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title=("mean ± s.d. over " + ", ".join(seeds)) if seeds else None, title_fontsize=8)
    fig.suptitle(f"Sweep: {', '.join(SUMMARY_METRICS.get(m, m).split(' (')[0] for m in metrics)} vs {x_key} "
                 f"({len(results)} points)")
    if path is not None:
        save_figure(fig, path)
    return fig
