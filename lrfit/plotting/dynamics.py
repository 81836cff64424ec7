"""Latent trajectories and phase portraits of low-rank networks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._base import axes_or_new, color, group_labels

__all__ = ["plot_latent_trajectories", "plot_phase_portrait"]

_MARKERS = {"stable": ("o", True), "saddle": ("X", True), "source": ("o", False), "marginal": ("s", False)}


def plot_latent_trajectories(
    kappa: np.ndarray,
    time: np.ndarray | None = None,
    conditions: Any = None,
    columns: Sequence[str] | None = None,
    dims: int | tuple[int, int] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    heldout: Any = (),
) -> Figure:
    """Latent trajectories ``kappa_r(t)`` averaged per condition.

    Parameters
    ----------
    kappa : ndarray, (K, T, R)
        Latents of each trial (e.g. ``LatentTrajectories.kappa``).
    time : ndarray, (T,), optional
        Time of each step in seconds (default: step index).
    conditions : pandas.DataFrame, optional
        One row per trial; trials are grouped by *columns*.
    columns : sequence of str, optional
        Grouping columns (default ``context`` and ``target`` where present).
    dims : int or (int, int), optional
        One latent axis: ``kappa_r`` against time; two: the state-space trajectory
        ``(kappa_a, kappa_b)``.  Default: time course for rank 1, plane (0, 1) otherwise.
    ax : Axes, optional
        Where to draw.
    title : str, optional
        Axes title.
    heldout : collection of str
        Condition labels (as grouped here) that the fit never saw: drawn dashed and marked.

    Returns
    -------
    Figure
    """
    kappa = np.asarray(kappa, float)
    heldout = set(heldout)
    if kappa.ndim == 2:
        kappa = kappa[None]
    k, t, r = kappa.shape
    if dims is None:
        dims = 0 if r == 1 else (0, 1)
    fig, ax = axes_or_new(ax)
    labels, cols = group_labels(conditions, columns) if conditions is not None else (np.array(["all"] * k), [])
    tt = np.arange(t) if time is None else np.asarray(time, float)
    uniq = list(dict.fromkeys(labels.tolist()))
    for g, lab in enumerate(uniq):
        mean = kappa[labels == lab].mean(0)
        style = {"ls": "--", "label": f"{lab} (held out)"} if lab in heldout else {"label": lab}
        if isinstance(dims, (int, np.integer)):
            ax.plot(tt, mean[:, int(dims)], color=color(g), lw=1.6, **style)
        else:
            a, b = dims
            ax.plot(mean[:, a], mean[:, b], color=color(g), lw=1.6, **style)
            ax.plot(mean[0, a], mean[0, b], "o", color=color(g), ms=4)
            ax.plot(mean[-1, a], mean[-1, b], "s", color=color(g), ms=5)
    if isinstance(dims, (int, np.integer)):
        ax.set_xlabel("time (s)" if time is not None else "time step")
        ax.set_ylabel(f"$\\kappa_{{{int(dims) + 1}}}$ (a.u.)")
        ax.axhline(0, color="0.7", lw=0.8, zorder=0)
    else:
        a, b = dims
        ax.set_xlabel(f"$\\kappa_{{{a + 1}}}$ (a.u.)")
        ax.set_ylabel(f"$\\kappa_{{{b + 1}}}$ (a.u.)")
        handles = [
            Line2D([], [], marker="o", ls="", color="0.3", ms=4, label="start"),
            Line2D([], [], marker="s", ls="", color="0.3", ms=5, label="end"),
        ]
        ax.add_artist(ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False))
    if len(uniq) > 1 or cols:
        ax.legend(fontsize=7, title=", ".join(cols) if cols else None, title_fontsize=7, loc="best")
    ax.set_title(title or "Latent trajectories (mean per condition)")
    return fig


def _draw_fixed_points(
    ax: Axes, fixed_points: Any, plane: np.ndarray | None, rank1: bool, flow_zero: bool = True
) -> list[Line2D]:
    seen: dict[str, Line2D] = {}
    for fp in list(fixed_points.fixed_points) + list(getattr(fixed_points, "slow_points", ())):
        kap = np.asarray(fp.kappa, float)
        x, y = (kap[0], 0.0) if rank1 else tuple(kap @ plane) if plane is not None else (kap[0], kap[1])
        label = fp.stability if fp.kind == "fixed" else "slow point"
        marker, filled = _MARKERS.get(fp.stability, ("o", False)) if fp.kind == "fixed" else ("d", False)
        ax.plot(x, y, marker=marker, ls="", ms=9, mec="k", mew=1.3, mfc="k" if filled else "white", zorder=5)[0]
        seen.setdefault(
            label, Line2D([], [], marker=marker, ls="", ms=8, mec="k", mfc="k" if filled else "white", label=label)
        )
    return list(seen.values())


def plot_phase_portrait(
    flow: Any,
    fixed_points: Any = None,
    ax: Axes | None = None,
    title: str | None = None,
    trajectories: np.ndarray | None = None,
) -> Figure:
    """Phase portrait of the latent dynamics ``kappa_dot = -kappa + n^T phi(m kappa + W_in u) / N``.

    Rank 1: the velocity ``F(kappa)`` and, on a second axis, the potential
    ``U(kappa) = -int_0^kappa F`` with the fixed points on the ``F = 0`` line.  Rank 2 (or
    the top-2 plane of a higher rank): streamlines of the flow coloured by speed
    ``|F|``, the nullclines ``F_1 = 0`` and ``F_2 = 0`` and the fixed points
    (filled circle stable, open circle source, cross saddle, diamond slow point).

    Parameters
    ----------
    flow : FlowField
        From :func:`lrfit.analysis.flow_field`.
    fixed_points : FixedPointResult, optional
        From :func:`lrfit.analysis.find_fixed_points` (same input).
    ax : Axes, optional
        Where to draw.
    title : str, optional
        Axes title.
    trajectories : ndarray, (K, T, R), optional
        Latent trajectories drawn on top (projected on the plane).

    Returns
    -------
    Figure
    """
    fig, ax = axes_or_new(ax, (5.2, 4.2))
    handles: list[Any] = []
    if len(flow.axes) == 1:
        kap = flow.axes[0]
        ax.plot(kap, flow.flow, color="C0", lw=1.8)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xlabel("$\\kappa$ (a.u.)")
        ax.set_ylabel("$d\\kappa/dt$ (a.u. per $\\tau$)", color="C0")
        ax2 = ax.twinx()
        ax2.plot(kap, flow.potential, color="C1", lw=1.4, ls="--")
        ax2.set_ylabel("potential $U(\\kappa)$ (a.u.)", color="C1")
        handles = [
            Line2D([], [], color="C0", lw=1.8, label="flow $d\\kappa/dt$"),
            Line2D([], [], color="C1", ls="--", label="potential $U$"),
        ]
        if fixed_points is not None:
            handles += _draw_fixed_points(ax, fixed_points, None, True)
        if trajectories is not None:
            tr = np.asarray(trajectories)[..., 0]
            ax.plot(tr[:, -1], np.zeros(tr.shape[0]), "|", color="0.4", ms=10, label="trial end states")
        ax.set_xlim(kap[0], kap[-1])
    else:
        c1, c2 = flow.axes
        u, v = flow.flow
        speed = flow.speed
        strm = ax.streamplot(c1, c2, u, v, color=speed, cmap="viridis", density=1.1, linewidth=0.8, arrowsize=0.8)
        cb = fig.colorbar(strm.lines, ax=ax, shrink=0.85)
        cb.set_label("speed $|d\\kappa/dt|$ (a.u. per $\\tau$)")
        ax.contour(c1, c2, u, levels=[0.0], colors=["#d62728"], linewidths=1.4)
        ax.contour(c1, c2, v, levels=[0.0], colors=["#ff7f0e"], linewidths=1.4, linestyles="--")
        handles = [
            Line2D([], [], color="#d62728", lw=1.4, label="$\\dot\\kappa_1=0$"),
            Line2D([], [], color="#ff7f0e", ls="--", lw=1.4, label="$\\dot\\kappa_2=0$"),
        ]
        if fixed_points is not None:
            handles += _draw_fixed_points(ax, fixed_points, flow.plane, False)
        if trajectories is not None:
            tr = np.asarray(trajectories) @ (flow.plane if flow.plane is not None else np.eye(2))
            for trial in tr[:20]:
                ax.plot(trial[:, 0], trial[:, 1], color="0.35", lw=0.6, alpha=0.6)
        ax.set_xlim(c1[0], c1[-1])
        ax.set_ylim(c2[0], c2[-1])
        ax.set_xlabel("$\\kappa_1$ (a.u.)")
        ax.set_ylabel("$\\kappa_2$ (a.u.)")
    # below the axes: inside, the legend hides the flow where it is largest (the corners)
    ax.legend(
        handles=handles,
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=min(len(handles), 4),
        frameon=False,
    )
    u_in = np.asarray(getattr(flow, "input", np.zeros(0)))
    ax.set_title(title or ("Phase portrait" + (" (input off)" if not np.any(u_in) else "")))
    return fig
