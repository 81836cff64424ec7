"""Draw the README's overview figure from an analysed run directory.

Usage (after the README's first command, which writes ``runs/student`` and its report)::

    python notebooks/readme_figure.py runs/student notebooks/overview.png

Three panels: a neuron's recorded and fitted activity on held-out trials, the latent
kappa_1(t) by condition, and the neurons in connectivity space coloured by population.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lrfit.plotting import plot_connectivity_scatter, plot_latent_trajectories  # noqa: E402
from lrfit.runs import LATENTS_FILE, LOADINGS_FILE, latent_conditions, load_context  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run directory analysed by lrfit analyze (or lrfit report)")
    parser.add_argument("out", help="PNG to write")
    args = parser.parse_args()
    ctx = load_context(args.run_dir)
    analysis = Path(args.run_dir) / "analysis"
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))

    act = ctx.activity(split="test", n_trials=4)
    neuron = int(np.argmax(act.recorded.var(axis=(0, 1))))
    for trial in range(min(3, act.recorded.shape[0])):
        axes[0].plot(act.time, act.recorded[trial, :, neuron], color=f"C{trial}", lw=1.5,
                     label="recorded" if trial == 0 else None)
        axes[0].plot(act.time, act.fitted[trial, :, neuron], color=f"C{trial}", ls="--", lw=1.5,
                     label="fitted" if trial == 0 else None)
    axes[0].set(xlabel="time in trial (s)", ylabel="rate (a.u.)",
                title=f"Neuron {ctx.neuron_ids[neuron]}, three held-out trials")
    axes[0].legend(fontsize=8)

    latents = np.load(analysis / LATENTS_FILE, allow_pickle=False)
    plot_latent_trajectories(latents["kappa"], latents["time"], latent_conditions(latents), dims=0, ax=axes[1],
                             title="Latent $\\kappa_1(t)$ by condition")

    table = pd.read_csv(analysis / LOADINGS_FILE, index_col=0)
    labels = table["population"].to_numpy() if "population" in table else None
    x = next((c for c in table if c.startswith("w_in_ctx") or c.startswith("w_in_context")), "m_1")
    plot_connectivity_scatter(table, x, "n_1", labels, ax=axes[2], title="Connectivity space, by population")
    fig.suptitle("A rank-1 student fitted neuron by neuron to a teacher network's activity")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
