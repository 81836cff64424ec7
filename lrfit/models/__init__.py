"""Rate networks: low-rank and full-rank RNNs sharing one simulation core."""

from .io import load_model, read_model_meta, save_model
from .rnn import FullRankRNN, LowRankRNN, RNNBase, Trajectory, svd_normalized_factors

__all__ = [
    "FullRankRNN",
    "LowRankRNN",
    "RNNBase",
    "Trajectory",
    "load_model",
    "read_model_meta",
    "save_model",
    "svd_normalized_factors",
]
