"""Fit quality: rank curve, training history, per-neuron R^2, example neurons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._base import axes_or_new, group_labels, new_figure

__all__ = ["plot_example_neurons", "plot_history", "plot_inputs_over_response", "plot_r2_histogram", "plot_rank_curve"]


def plot_rank_curve(ranks: Sequence[int], r2_test: Sequence[float], r2_train: Sequence[float] | None = None,
                    chosen: int | None = None, ax: Axes | None = None,
                    ylabel: str = "$R^2$ of the activity (pooled)") -> Figure:
    """Held-out (and training) R^2 (or another score) against rank, with the chosen rank marked.

    Parameters
    ----------
    ranks : sequence of int
        Ranks fitted.
    r2_test, r2_train : sequence of float
        Pooled R^2 per rank (``rank_selection.json``), or the score the rank was chosen by.
    chosen : int, optional
        Rank chosen.
    ax : Axes, optional
        Where to draw.
    ylabel : str
        What the scores are.

    Returns
    -------
    Figure
    """
    fig, ax = axes_or_new(ax, (4.2, 3.2))
    if r2_train is not None:
        ax.plot(ranks, r2_train, "o--", color="0.55", label="train")
    ax.plot(ranks, r2_test, "o-", color="C0", label="held-out trials")
    if chosen is not None:
        ax.axvline(chosen, color="C3", ls=":", label=f"chosen rank {chosen}")
    ax.set_xticks(list(ranks))
    ax.set_xlabel("rank R")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.set_title("Rank selection")
    return fig


#: Legend names of the history columns (others: underscores become spaces).
_CURVE_NAMES = {
    "train_loss": "loss, training trials",
    "val_loss": "loss, validation trials",
    "test_loss": "loss, test trials",
    "train_r2": "$R^2$, training trials",
    "val_r2": "$R^2$, validation trials",
    "test_r2": "$R^2$, test trials",
    "train_bits_per_spike": "bits/spike, training trials",
    "val_bits_per_spike": "bits/spike, validation trials",
    "accuracy": "task accuracy",
    "val_accuracy": "task accuracy, validation trials",
}


def plot_history(history: pd.DataFrame, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Training curves: every ``*loss*`` column against epoch (log scale), and accuracy if present.

    Parameters
    ----------
    history : pandas.DataFrame
        One row per epoch (``history.csv`` or ``metrics.json["history"]``).
    ax : Axes, optional
        Where to draw.
    title : str, optional
        Axes title.

    Returns
    -------
    Figure
    """
    fig, ax = axes_or_new(ax, (4.6, 3.2))
    x = history["epoch"].to_numpy() if "epoch" in history.columns else np.arange(1, len(history) + 1)
    loss_cols = [c for c in history.columns if "loss" in c.lower()]
    for i, c in enumerate(loss_cols):
        vals = pd.to_numeric(history[c], errors="coerce").to_numpy(float)
        ax.plot(x, vals, color=f"C{i}", label=_CURVE_NAMES.get(c, c.replace("_", " ")))
    if loss_cols and np.nanmin(pd.to_numeric(history[loss_cols].stack(), errors="coerce")) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    counts = any("bits_per_spike" in c for c in history.columns)
    ax.set_ylabel("loss (Poisson neg. log-likelihood)" if counts else "loss (mean squared error)")
    if counts and ax.get_yscale() == "log":  # Poisson terms without log(y!) need not be positive
        ax.set_yscale("linear")
    acc_cols = [c for c in history.columns if "acc" in c.lower() or "r2" in c.lower() or "bits_per_spike" in c]
    handles, labels = ax.get_legend_handles_labels()
    if acc_cols:
        ax2 = ax.twinx()
        for i, c in enumerate(acc_cols):
            ax2.plot(x, pd.to_numeric(history[c], errors="coerce"), color=f"C{len(loss_cols) + i}", ls="--",
                     label=_CURVE_NAMES.get(c, c.replace("_", " ")))
        kinds = {"$R^2$" if "r2" in c.lower() else "bits/spike" if "bits" in c else "accuracy" for c in acc_cols}
        ax2.set_ylabel(" / ".join(sorted(kinds)))
        values = pd.to_numeric(history[acc_cols].stack(), errors="coerce").to_numpy(float).reshape(len(history), -1)
        late = values[len(values) // 10 :]  # the first epochs would squash the rest of the curve
        if np.isfinite(late).any():
            low, high = np.nanpercentile(late, 1), np.nanmax(late)
            pad = max(0.05 * (high - low), 1e-3)
            ax2.set_ylim(low - pad, high + pad)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="center right")
    ax.set_title(title or "Training history")
    return fig


def plot_r2_histogram(r2: Sequence[float], ax: Axes | None = None, title: str | None = None,
                      metric: str = "r2") -> Figure:
    """Histogram of per-neuron R^2 from ``max(-1, min R^2)`` (at most 0.9) to 1; values below -1 are piled at -1.

    Parameters
    ----------
    r2 : sequence of float
        One value per neuron.
    ax : Axes, optional
        Where to draw.
    title : str, optional
        Axes title.
    metric : {"r2", "bits_per_spike"}
        What the values are; bits per spike are drawn over their own range.

    Returns
    -------
    Figure
    """
    fig, ax = axes_or_new(ax, (4.2, 3.2))
    vals = np.asarray(r2, float)
    vals = vals[np.isfinite(vals)]
    if metric == "bits_per_spike":
        ax.hist(vals, bins=40, color="C0", edgecolor="white")
        if vals.size:
            ax.axvline(float(np.median(vals)), color="C3", ls="--", label=f"median {float(np.median(vals)):.3f}")
            ax.axvline(0.0, color="0.4", lw=0.8)
            ax.legend(fontsize=8, loc="upper left")
        ax.set_xlabel("bits per spike per neuron (0: the neuron's mean rate)")
        ax.set_ylabel("number of neurons")
        ax.set_title(title or f"Per-neuron fit quality ({vals.size} neurons)")
        return fig
    # Zoom on the values present: with every neuron above 0.9 a [-1, 1] axis shows one bar.
    lo = -1.0 if not vals.size else float(max(-1.0, np.floor(np.min(vals) * 20.0) / 20.0))
    lo = min(lo, 0.9)
    ax.hist(np.clip(vals, -1.0, 1.0), bins=np.linspace(lo, 1.0, 41), color="C0", edgecolor="white")
    ax.set_xlim(lo, 1.0)
    if vals.size:
        med = float(np.median(vals))
        ax.axvline(med, color="C3", ls="--", label=f"median {med:.3f}")
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xlabel("$R^2$ per neuron" + (" (values below -1 shown at -1)" if lo <= -1.0 else ""))
    ax.set_ylabel("number of neurons")
    ax.set_title(title or f"Per-neuron fit quality ({vals.size} neurons)")
    return fig


def plot_example_neurons(
    time: np.ndarray,
    true: np.ndarray,
    fitted: np.ndarray,
    neuron_names: Sequence[Any] | None = None,
    r2: Sequence[float] | None = None,
    conditions: Any = None,
    ncols: int = 3,
    unit: str = "rate, a.u.",
) -> Figure:
    """Example neurons: recorded (solid) against fitted (dashed) activity, a few trials each.

    Parameters
    ----------
    time : ndarray, (T,)
        Seconds.
    true, fitted : ndarray, (K, T, n)
        Activity of the *n* example neurons on *K* trials (or condition averages).
    neuron_names : sequence, optional
        Names for the panel titles.
    r2 : sequence of float, optional
        Per-neuron R^2 shown in the titles.
    conditions : pandas.DataFrame, optional
        One row per trial: the legend names each trial's colour by its condition.
    ncols : int
        Panels per row.
    unit : str
        Unit of the activity, for the y label.

    Returns
    -------
    Figure
    """
    true = np.asarray(true, float)
    fitted = np.asarray(fitted, float)
    n = true.shape[-1]
    nrows = int(np.ceil(n / ncols))
    fig, axes = new_figure((3.2 * min(n, ncols), 2.4 * nrows), nrows, min(n, ncols), squeeze=False)
    k = min(true.shape[0], 4)
    for j in range(nrows * min(n, ncols)):
        ax = axes.flat[j]
        if j >= n:
            ax.set_visible(False)
            continue
        for i in range(k):
            ax.plot(time, true[i, :, j], color=f"C{i}", lw=1.4, label="recorded" if i == 0 else None)
            ax.plot(time, fitted[i, :, j], color=f"C{i}", lw=1.4, ls="--", label="fitted" if i == 0 else None)
        name = neuron_names[j] if neuron_names is not None else j
        ax.set_title(f"neuron {name}" + (f"  ($R^2$ = {r2[j]:.2f})" if r2 is not None else ""), fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"activity ({unit})")
        if j == 0:
            from matplotlib.lines import Line2D

            names, _ = group_labels(conditions.iloc[:k], list(conditions.columns)) if conditions is not None and len(
                getattr(conditions, "columns", [])) else ([f"trial {i + 1}" for i in range(k)], [])
            handles = [Line2D([], [], color="0.3", lw=1.4, label="recorded"),
                       Line2D([], [], color="0.3", lw=1.4, ls="--", label="fitted")]
            handles += [Line2D([], [], color=f"C{i}", lw=1.4, label=str(names[i])) for i in range(k)]
            # outside the panels: condition names are long enough to hide a panel's curves
            fig.legend(handles=handles, fontsize=6, title="colour: trial", title_fontsize=6, loc="upper left",
                       bbox_to_anchor=(1.0, 0.93))
    fig.suptitle("Example neurons: recorded (solid) vs fitted (dashed)")
    return fig


def plot_inputs_over_response(time: np.ndarray, inputs: np.ndarray, activity: np.ndarray, mask: np.ndarray,
                              labels: Sequence[Any], input_names: Sequence[str] = (), n_pcs: int = 2) -> Figure:
    """Each input channel over the recorded population response, to check where the cues sit in time.

    Top rows: the first principal components of the condition-averaged activity (one line
    per condition); bottom row: every input channel of the same conditions.  A cue placed
    at the wrong time shows as an input step that does not line up with the response it
    should drive.

    Parameters
    ----------
    time : ndarray
        ``(T,)`` bin centres in seconds.
    inputs, activity : ndarray
        ``(K, T, C)`` and ``(K, T, N)``.
    mask : ndarray
        ``(K, T)`` valid bins.
    labels : sequence
        Condition label of each trial.
    input_names : sequence of str
        Channel names.
    n_pcs : int
        Principal components shown.

    Returns
    -------
    Figure
    """
    def short(v: Any) -> str:
        try:
            return f"{float(v):.4g}"
        except (TypeError, ValueError):
            return str(v)

    labels = np.asarray([short(v) for v in labels])
    conds = list(dict.fromkeys(labels))
    w = np.asarray(mask, float)[..., None]
    means = np.stack([(activity[labels == c] * w[labels == c]).sum(0) / np.maximum(w[labels == c].sum(0), 1)
                      for c in conds])
    valid = np.asarray(mask).any(0)
    rows = means[:, valid].reshape(-1, means.shape[-1])
    centre = rows.mean(0)
    _, _, vt = np.linalg.svd(rows - centre, full_matrices=False)
    k = min(n_pcs, vt.shape[0])
    pcs = (means - centre) @ vt[:k].T
    pcs[:, ~valid] = np.nan
    u = np.stack([inputs[labels == c].mean(0) for c in conds])
    n_in = u.shape[-1]
    fig, axes = new_figure((6.5, 1.6 * k + 0.9 * n_in + 0.6), nrows=k + n_in, ncols=1, sharex=True, squeeze=False,
                           gridspec_kw={"height_ratios": [1.6] * k + [0.9] * n_in})
    colors = [f"C{i % 10}" for i in range(len(conds))]
    for j in range(k):
        ax = axes[j, 0]
        for i, c in enumerate(conds):
            ax.plot(time, pcs[i, :, j], color=colors[i], lw=1, label=c if j == 0 else None)
        ax.set_ylabel(f"PC{j + 1}")
    for j in range(n_in):
        ax = axes[k + j, 0]
        for i in range(len(conds)):
            ax.plot(time, u[i, :, j], color=colors[i], lw=1)
        ax.set_ylabel(input_names[j] if j < len(input_names) else f"in_{j}")
    axes[-1, 0].set_xlabel("time (s)")
    if len(conds) <= 12:
        axes[0, 0].legend(fontsize=6, ncol=min(4, len(conds)), loc="upper left", frameon=False)
    axes[0, 0].set_title("Population response (condition means) and the inputs that drive it")
    return fig
