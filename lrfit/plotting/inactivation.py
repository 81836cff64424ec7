"""Inactivation bar chart and psychometric curves under silencing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._base import axes_or_new, color

__all__ = ["plot_activity_inactivation", "plot_inactivation", "plot_inactivation_psychometric"]


def plot_inactivation(
    table: pd.DataFrame, teacher_table: pd.DataFrame | None = None, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Accuracy after silencing each group, one bar per context, with the intact network's accuracy.

    Bars: predicted accuracy of the (fitted) network with the group silenced; dashed
    line per context: intact accuracy; black diamonds: the teacher's actual accuracy
    under the same silencing (if given); dotted line: chance (0.5).

    Parameters
    ----------
    table : pandas.DataFrame
        ``InactivationResult.table`` (columns ``group``, ``context``, ``accuracy``, ...).
    teacher_table : pandas.DataFrame, optional
        The teacher's table for the same groups.
    ax : Axes, optional
        Where to draw.
    title : str, optional
        Axes title.

    Returns
    -------
    Figure
    """
    contexts = [c for c in dict.fromkeys(table["context"]) if c != "all"] or ["all"]
    groups = [g for g in dict.fromkeys(table["group"]) if g != "control"]
    width_in = max(6.0, 1.1 * len(groups) * max(1, len(contexts)) + 2)
    fig, ax = axes_or_new(ax, (width_in, 4.2))
    width = 0.8 / len(contexts)
    x = np.arange(len(groups))
    t = table.set_index(["group", "context"])
    tt = teacher_table.set_index(["group", "context"]) if teacher_table is not None else None
    for j, ctx in enumerate(contexts):
        acc = [float(t.loc[(g, ctx), "accuracy"]) if (g, ctx) in t.index else np.nan for g in groups]
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(pos, acc, width * 0.9, color=color(j), label=f"context {ctx}" if ctx != "all" else "all trials")
        if ("control", ctx) in t.index:
            ax.axhline(float(t.loc[("control", ctx), "accuracy"]), color=color(j), ls="--", lw=1)
        if tt is not None:
            ta = [float(tt.loc[(g, ctx), "accuracy"]) if (g, ctx) in tt.index else np.nan for g in groups]
            ax.plot(pos, ta, "D", color="k", ms=5, zorder=3)
    ax.axhline(0.5, color="0.4", ls=":", lw=1)
    ax.set_xticks(x)
    n_sil = table.drop_duplicates("group").set_index("group")["n_silenced"]
    ax.set_xticklabels([f"{g}\n({int(n_sil[g])} units)" for g in groups], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("silenced group")
    ax.set_ylabel("accuracy (fraction correct)")
    handles, labels = ax.get_legend_handles_labels()
    intact = "intact network (dashed, in its context's colour)" if len(contexts) > 1 else "intact network"
    handles += [Line2D([], [], color="0.3", ls="--", label=intact), Line2D([], [], color="0.4", ls=":", label="chance")]
    if tt is not None:
        handles.append(Line2D([], [], marker="D", ls="", color="k", label="teacher with the same units silenced"))
    # below the axes: inside, the legend would hide bars and diamonds near the bottom
    ax.legend(
        handles=handles,
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.28),
        ncol=3 if width_in >= 9 else 2,
        frameon=False,
    )
    ax.set_title(title or "Predicted accuracy after silencing")
    return fig


def plot_inactivation_psychometric(
    psychometric: pd.DataFrame, x: str = "coherence", ax: Axes | None = None, **select: Any
) -> Figure:
    """Psychometric curves ``P(choice = +1)`` against *x*, one line per silenced group.

    Parameters
    ----------
    psychometric : pandas.DataFrame
        ``InactivationResult.psychometric`` (has a ``group`` column).
    x : str
        Column on the x axis.
    ax : Axes, optional
        Where to draw.
    **select
        Column filters, e.g. ``context="motion", stimulus="motion"``.

    Returns
    -------
    Figure
    """
    fig, ax = axes_or_new(ax, (4.2, 3.2))
    df = psychometric
    for k, v in select.items():
        df = df[df[k] == v]
    for i, (g, d) in enumerate(df.groupby("group", sort=False)):
        d = d.groupby(x, as_index=False)["p_choice"].mean()
        ax.plot(
            d[x],
            d["p_choice"],
            "o-",
            ms=3,
            color="k" if g == "control" else color(i),
            label=g,
            lw=2 if g == "control" else 1.2,
        )
    ax.set_xlabel(x)
    ax.set_ylabel("P(choice = +1)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, title="silenced", title_fontsize=7)
    ax.set_title(", ".join(f"{k}={v}" for k, v in select.items()) or "Psychometric curves")
    return fig


def plot_activity_inactivation(table: pd.DataFrame, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Change of activity and of decodable information when each group is silenced (fits without a task).

    Left bars: RMS change of the observed units' activity; right bars (one per decoded
    variable): decoder score with the group silenced, beside the intact score (dashed).

    Parameters
    ----------
    table : pandas.DataFrame
        ``ActivityInactivation.table``.
    ax : Axes, optional
        Where to draw the activity change (a second axes is added for decoding).
    title : str, optional
        Figure title.

    Returns
    -------
    Figure
    """
    rows = table[table["group"] != "control"]
    decoded = [c[len("decode_"):] for c in table.columns if c.startswith("decode_") and not c.endswith("_control")]
    fig, ax = axes_or_new(ax, figsize=(4.5 + 3.0 * bool(decoded), 3.2))
    x = np.arange(len(rows))
    ax.bar(x, rows["activity_change"], color=[color(i) for i in range(len(rows))])
    ax.set_xticks(x, rows["group"], rotation=30, ha="right")
    ax.set_ylabel("RMS activity change")
    ax.set_title("activity")
    if decoded:
        box = ax.get_position()
        dax = fig.add_axes([box.x1 + 0.12, box.y0, box.width * 0.9, box.height])
        width = 0.8 / len(decoded)
        for j, name in enumerate(decoded):
            dax.bar(x + (j - (len(decoded) - 1) / 2) * width, rows[f"decode_{name}"], width=width, label=name,
                    color=color(j), alpha=0.8)
            dax.axhline(float(table[f"decode_{name}_control"].iloc[0]), color=color(j), ls="--", lw=1)
        dax.set_xticks(x, rows["group"], rotation=30, ha="right")
        dax.set_ylabel("decoder score (dashed: intact)")
        dax.set_title("decoding")
        dax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return fig
