"""Figures of fitted networks: each function takes ``ax=None`` and returns the figure.

Figures are :class:`matplotlib.figure.Figure` objects with an Agg canvas (no pyplot,
nothing is ever shown); save them with :func:`save_figure` or embed them in HTML with
:func:`figure_base64`.

- :func:`plot_latent_trajectories` — ``kappa(t)`` by condition, or the state-space path.
- :func:`plot_phase_portrait` — rank-1 flow and potential; rank-2 flow, nullclines, fixed points.
- :func:`plot_connectivity_scatter`, :func:`plot_population_selection` — loadings by population, BIC/ARI.
- :func:`plot_rank_curve`, :func:`plot_history`, :func:`plot_r2_histogram`, :func:`plot_example_neurons` — fit quality.
- :func:`plot_inactivation`, :func:`plot_inactivation_psychometric`, :func:`plot_activity_inactivation` — silencing
  effects.

Examples
--------
>>> from lrfit.plotting import new_figure
>>> fig, ax = new_figure()
>>> type(fig).__name__, len(fig.axes)
('Figure', 1)
"""

from ._base import figure_base64, figure_png, group_labels, new_figure, save_figure
from .connectivity import plot_connectivity_scatter, plot_population_selection
from .dynamics import plot_latent_trajectories, plot_phase_portrait
from .fit import plot_example_neurons, plot_history, plot_inputs_over_response, plot_r2_histogram, plot_rank_curve
from .inactivation import plot_activity_inactivation, plot_inactivation, plot_inactivation_psychometric

__all__ = [
    "figure_base64",
    "figure_png",
    "group_labels",
    "new_figure",
    "plot_connectivity_scatter",
    "plot_example_neurons",
    "plot_history",
    "plot_inputs_over_response",
    "plot_activity_inactivation",
    "plot_inactivation",
    "plot_inactivation_psychometric",
    "plot_latent_trajectories",
    "plot_phase_portrait",
    "plot_population_selection",
    "plot_r2_histogram",
    "plot_rank_curve",
    "save_figure",
]
