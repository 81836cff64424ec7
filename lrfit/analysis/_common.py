"""Shared helpers of the analysis modules.

Parameters as float64 NumPy arrays, transfer functions, Gauss–Hermite quadrature, JSON conversion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import LrfitError, check_choice
from ..jsonable import jsonable  # noqa: F401  (re-exported for the analysis modules)

Array = np.ndarray


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


#: name -> (phi, phi', phi'') on float64 NumPy arrays (mirrors lrfit.models.rollout)
PHI: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array], Callable[[Array], Array]]] = {
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2, lambda x: -2.0 * np.tanh(x) * (1.0 - np.tanh(x) ** 2)),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float), lambda x: np.zeros_like(x)),
    "softplus": (lambda x: np.logaddexp(0.0, x), _sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "identity": (
        lambda x: np.asarray(x, float),
        lambda x: np.ones_like(x, dtype=float),
        lambda x: np.zeros_like(x, dtype=float),
    ),
}


def phi_fns(name: str) -> tuple[Callable[[Array], Array], Callable[[Array], Array], Callable[[Array], Array]]:
    """Return ``(phi, phi', phi'')`` for a nonlinearity name."""
    check_choice(name, PHI, "nonlinearity")
    return PHI[name]


@dataclass(frozen=True)
class NetParams:
    """Parameters of a low-rank network as float64 arrays (``J = m n^T / N``)."""

    m: Array  # (N, R)
    n: Array  # (N, R)
    w_in: Array  # (N, C)
    w_out: Array  # (N, O)
    x0: Array  # (N,)
    nonlinearity: str
    alpha: float

    @property
    def n_units(self) -> int:
        return self.m.shape[0]

    @property
    def rank(self) -> int:
        return self.m.shape[1]

    @property
    def n_inputs(self) -> int:
        return self.w_in.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.w_out.shape[1]


def to_numpy(x: Any) -> Array:
    """Tensor / array-like -> float64 NumPy array (detached, on the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def lowrank_params(model: Any) -> NetParams:
    """Extract the parameters of a :class:`~lrfit.models.LowRankRNN` as float64 arrays.

    Raises
    ------
    LrfitError
        If *model* has no low-rank factors ``m`` and ``n``.
    """
    if not (hasattr(model, "m") and hasattr(model, "n")):
        kind = getattr(model, "kind", type(model).__name__)
        raise LrfitError(
            f"This analysis needs a low-rank network (with m and n), got a '{kind}' model; "
            "fit a low-rank student or use FullRankRNN.truncated(rank) first."
        )
    return NetParams(
        m=to_numpy(model.m),
        n=to_numpy(model.n),
        w_in=to_numpy(model.w_in),
        w_out=to_numpy(model.w_out),
        x0=to_numpy(model.x0),
        nonlinearity=str(getattr(model, "nonlinearity", "tanh")),
        alpha=float(getattr(model, "alpha", 1.0)),
    )


def as_input_vector(u: Any, n_inputs: int) -> Array:
    """Constant input ``u`` as a ``(C,)`` float64 vector (``None`` -> zeros)."""
    if u is None:
        return np.zeros(n_inputs)
    u = np.atleast_1d(to_numpy(u)).ravel()
    if u.shape[0] != n_inputs:
        raise LrfitError(
            f"The constant input has {u.shape[0]} channels but the network has {n_inputs}; pass a vector of length "
            f"{n_inputs}."
        )
    return u


@lru_cache(maxsize=16)
def gauss_hermite(order: int = 80) -> tuple[Array, Array]:
    """Nodes ``z`` and weights ``w`` with ``sum_i w_i f(z_i) ~ E[f(Z)]``, ``Z ~ N(0, 1)``.

    Probabilists' Gauss–Hermite rule (``numpy.polynomial.hermite_e``), weights
    normalised to sum to one.
    """
    z, w = np.polynomial.hermite_e.hermegauss(order)
    return z, w / w.sum()


def gaussian_average(f: Callable[[Array], Array], mean: Array | float, var: Array | float, order: int = 80) -> Array:
    """``<f>`` = E[f(mean + sqrt(var) Z)], ``Z ~ N(0,1)``, by Gauss–Hermite; broadcasts over mean/var."""
    z, w = gauss_hermite(order)
    mean = np.asarray(mean, float)[..., None]
    sd = np.sqrt(np.maximum(np.asarray(var, float), 0.0))[..., None]
    return (f(mean + sd * z) * w).sum(-1)


def fields_json(result: Any, **extra: Any) -> dict[str, Any]:
    """The JSON form of a result dataclass: every field by name, plus *extra* entries.

    Parameters
    ----------
    result : dataclass instance
        An analysis result.
    **extra
        Further entries (derived properties) to include.

    Returns
    -------
    dict
        JSON-serialisable dictionary (see :func:`lrfit.jsonable.jsonable`).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> import numpy as np
    >>> @dataclass
    ... class Result:
    ...     angles: np.ndarray
    >>> fields_json(Result(np.zeros(2)), n=2)
    {'angles': [0.0, 0.0], 'n': 2}
    """
    return jsonable({**{k: getattr(result, k) for k in result.__dataclass_fields__}, **extra})
