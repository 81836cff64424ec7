"""Analyses of fitted low-rank networks: pure functions returning small frozen dataclasses.

- :mod:`.connectivity` — overlaps and per-neuron loading tables.
- :mod:`.latents` — latent trajectories and variance explained by the recurrent/input subspaces.
- :mod:`.fixed_points` — fixed points, slow points, flow fields of the latent dynamics.
- :mod:`.populations` — Gaussian-mixture populations in connectivity space.
- :mod:`.meanfield` — mean-field reduction of Gaussian-mixture networks.
- :mod:`.resample` — networks resampled from the mixture; evaluation on tasks/data.
- :mod:`.inactivation` — silencing groups of neurons and predicting the effect.
- :mod:`.compare` — teacher vs student: principal angles, effective-connectivity correlation (ECC),
  connectivity recovery, fixed points of a teacher mapped into a student's latent space.
- :mod:`.dynamics_match` — are a student's dynamics the teacher's?  State R² both ways, the
  state of a network, fixed points paired in activity space, CtD's failure modes.
"""

from .compare import (
    FixedPointMatch,
    connectivity_recovery,
    ecc,
    effective_connectivity,
    match_fixed_points,
    principal_angle_cosines,
)
from .dynamics_match import (
    FixedPointAgreement,
    NetworkState,
    StateAgreement,
    affine_r2,
    compare_fixed_points,
    compare_states,
    failure_modes,
    latent_step,
    leaky_inputs,
    network_state,
    rms_activity,
)
from .connectivity import ConnectivityStats, connectivity_stats, loading_columns, loading_matrix, loading_table
from .fixed_points import (
    FixedPoint,
    FixedPointResult,
    FlowField,
    RadialScan,
    find_fixed_points,
    flow_field,
    latent_flow,
    latent_jacobian,
    radial_scan,
    stability_label,
)
from .inactivation import (
    InactivationAgreement,
    InactivationResult,
    attach_teacher_readout,
    compare_inactivation,
    groups_from_labels,
    map_groups,
    paired_change_pvalue,
    predict_inactivation,
    random_subset,
    resolve_groups,
    silence,
)
from .activity_inactivation import ActivityInactivation, predict_activity_inactivation
from .latents import LatentTrajectories, latent_trajectories, subspace_bases
from .meanfield import EffectiveOverlaps, effective_overlaps, meanfield_flow, meanfield_trajectory
from .populations import MixtureStats, PopulationResult, fit_populations, mixture_from_labels
from .resample import (
    TaskEvaluation,
    choose_populations_by_task,
    evaluate_on_task,
    gaussian_lowrank_rnn,
    r2_score_activity,
    run_network,
    sample_loadings,
    sample_network,
    set_loadings_,
    subset_trials,
)

__all__ = [
    "FixedPointAgreement",
    "NetworkState",
    "StateAgreement",
    "affine_r2",
    "compare_fixed_points",
    "compare_states",
    "failure_modes",
    "latent_step",
    "leaky_inputs",
    "network_state",
    "rms_activity",
    "ConnectivityStats",
    "EffectiveOverlaps",
    "FixedPoint",
    "FixedPointMatch",
    "FixedPointResult",
    "FlowField",
    "InactivationAgreement",
    "InactivationResult",
    "LatentTrajectories",
    "MixtureStats",
    "PopulationResult",
    "RadialScan",
    "TaskEvaluation",
    "attach_teacher_readout",
    "choose_populations_by_task",
    "compare_inactivation",
    "connectivity_recovery",
    "connectivity_stats",
    "ecc",
    "effective_connectivity",
    "effective_overlaps",
    "evaluate_on_task",
    "find_fixed_points",
    "fit_populations",
    "flow_field",
    "gaussian_lowrank_rnn",
    "groups_from_labels",
    "latent_flow",
    "latent_jacobian",
    "latent_trajectories",
    "loading_columns",
    "loading_matrix",
    "loading_table",
    "map_groups",
    "paired_change_pvalue",
    "meanfield_flow",
    "meanfield_trajectory",
    "match_fixed_points",
    "principal_angle_cosines",
    "mixture_from_labels",
    "predict_inactivation",
    "ActivityInactivation",
    "predict_activity_inactivation",
    "r2_score_activity",
    "radial_scan",
    "random_subset",
    "resolve_groups",
    "run_network",
    "sample_loadings",
    "sample_network",
    "set_loadings_",
    "silence",
    "stability_label",
    "subset_trials",
    "subspace_bases",
]
