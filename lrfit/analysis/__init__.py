"""Analyses of fitted low-rank networks: pure functions returning small frozen dataclasses.

- :mod:`.connectivity` — overlaps and per-neuron loading tables.
- :mod:`.latents` — latent trajectories and variance explained by the recurrent/input subspaces.
- :mod:`.fixed_points` — fixed points, slow points, flow fields of the latent dynamics.
- :mod:`.populations` — Gaussian-mixture populations in connectivity space.
- :mod:`.meanfield` — mean-field reduction of Gaussian-mixture networks.
- :mod:`.resample` — networks resampled from the mixture; evaluation on tasks/data.
- :mod:`.network_inactivation` — silencing groups of neurons and predicting the effect.
- :mod:`.teacher_connectivity` — teacher vs student: principal angles, effective-connectivity correlation (ECC),
  connectivity recovery, fixed points of a teacher mapped into a student's latent space.
- :mod:`.teacher_dynamics` — are a student's dynamics the teacher's?  State R² both ways, the
  state of a network, fixed points paired in activity space, CtD's failure modes.

Examples
--------
>>> from lrfit import LowRankRNN
>>> from lrfit.analysis import connectivity_stats
>>> connectivity_stats(LowRankRNN(50, rank=2, seed=0)).overlaps.shape  # n^T m / N
(2, 2)
"""

from .connectivity import connectivity_stats, loading_table
from .decoding_inactivation import predict_activity_inactivation
from .fixed_points import find_fixed_points, flow_field, latent_flow, radial_scan
from .latents import latent_trajectories
from .meanfield import effective_overlaps, meanfield_flow, meanfield_trajectory
from .network_inactivation import compare_inactivation, groups_from_labels, map_groups, predict_inactivation, silence
from .populations import fit_populations, mixture_from_labels
from .resample import choose_populations_by_task, evaluate_on_task, gaussian_lowrank_rnn, run_network, sample_network
from .teacher_connectivity import (
    connectivity_recovery,
    ecc,
    effective_connectivity,
    map_teacher_fixed_points,
    principal_angle_cosines,
)
from .teacher_dynamics import compare_states, failure_modes, network_state, pair_fixed_points

#: The analyses a user calls; their result classes and helpers (``leaky_inputs``, ``rms_activity``,
#: ``subset_trials``, ``set_loadings_``, ...) stay importable from here and from their modules.
__all__ = [
    "choose_populations_by_task",
    "compare_inactivation",
    "compare_states",
    "connectivity_recovery",
    "connectivity_stats",
    "ecc",
    "effective_connectivity",
    "effective_overlaps",
    "evaluate_on_task",
    "failure_modes",
    "find_fixed_points",
    "fit_populations",
    "flow_field",
    "gaussian_lowrank_rnn",
    "groups_from_labels",
    "latent_flow",
    "latent_trajectories",
    "loading_table",
    "map_groups",
    "map_teacher_fixed_points",
    "meanfield_flow",
    "meanfield_trajectory",
    "mixture_from_labels",
    "network_state",
    "pair_fixed_points",
    "predict_activity_inactivation",
    "predict_inactivation",
    "principal_angle_cosines",
    "radial_scan",
    "run_network",
    "sample_network",
    "silence",
]
