"""Inactivation without a task: what silencing a group does to activity, latents and decodable information.

A network fitted to a recording has no behaviour to score, but silencing a group of its
units (:func:`lrfit.analysis.network_inactivation.silence`) still changes what the other units
do.  :func:`predict_activity_inactivation` runs the intact and each silenced network on
the same trials from the same initial states and reports, per group:

* ``activity_change``: the RMS change of the observed units' activity (rates ``phi(x)``)
  over the valid bins, averaged over units, and the same per unit (``unit_change``),
  so that populations can be summarised;
* ``latent_change``: the RMS change of the latents ``kappa = Q_M^T x`` (low-rank networks);
* for each condition variable named in ``decode``, the score of a linear decoder
  fitted on the *intact* network's trials (each unit's mean rate over the valid bins as
  features; logistic regression and accuracy for categorical variables, ridge regression
  and R^2 for numeric ones with more than ``max_classes`` values) applied to the silenced
  network's activity on the same trials: how much of the information about that
  variable survives the silencing.

Pure functions: arrays and groups in, a result dataclass out (no file I/O).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LrfitError
from ._common import to_numpy
from .network_inactivation import CONTROL, _check_units, silence
from .resample import run_network

__all__ = ["ActivityInactivation", "predict_activity_inactivation"]


@dataclass
class ActivityInactivation:
    """Result of :func:`predict_activity_inactivation`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per group (the intact network first, as ``control``): ``group``,
        ``n_silenced``, ``activity_change``, ``latent_change`` and, per decoded variable
        ``v``, ``decode_v`` (silenced), ``decode_v_control`` (intact) and ``delta_decode_v``.
    unit_change : pandas.DataFrame
        ``(groups, observed units)`` RMS activity change of each unit.
    decoders : dict
        Variable -> ``"accuracy"`` or ``"r2"`` (what ``decode_v`` measures).
    groups : dict
        Group -> silenced unit indices.
    """

    table: pd.DataFrame
    unit_change: pd.DataFrame
    decoders: dict[str, str] = field(default_factory=dict)
    groups: dict[str, np.ndarray] = field(default_factory=dict)

    def population_change(self, labels: Sequence[int]) -> pd.DataFrame:
        """Mean RMS activity change of the units of each population, per silenced group.

        Parameters
        ----------
        labels : sequence of int
            Population of each observed unit.

        Returns
        -------
        pandas.DataFrame
            ``(groups, populations)``, columns ``pop<k>``.
        """
        labels = np.asarray(labels)[: self.unit_change.shape[1]]
        return pd.DataFrame({f"pop{k}": self.unit_change.iloc[:, labels == k].mean(axis=1) for k in np.unique(labels)})

    def to_json_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for ``analysis/inactivation.json``)."""
        return {"table": self.table.to_dict(orient="records"), "decoders": dict(self.decoders),
                "unit_change": self.unit_change.to_dict(orient="split")}


def _features(rates: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each trial's mean rate of every unit over its valid bins ``(K, n)``."""
    w = mask[..., None].astype(np.float64)
    return (rates * w).sum(1) / np.maximum(w.sum(1), 1.0)


def _decoder(values: pd.Series, max_classes: int) -> tuple[str, Any]:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique() > max_classes:
        return "r2", make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    return "accuracy", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))


def predict_activity_inactivation(
    model: Any,
    inputs: np.ndarray,
    groups: Mapping[str, Any],
    *,
    x0: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    n_observed: int | None = None,
    conditions: pd.DataFrame | None = None,
    decode: Sequence[str] = (),
    max_classes: int = 12,
    observe: Callable[[Any], Any] | None = None,
) -> ActivityInactivation:
    """Silence each group and measure the change of activity, latents and decodable information.

    Parameters
    ----------
    model : RNNBase
        The fitted network.
    inputs : ndarray
        ``(K, T, C)`` inputs of the trials (e.g. the fit's training trials).
    groups : mapping of str to sequence of int
        Silenced units per group.
    x0 : ndarray, optional
        ``(K, N)`` initial states (the fit's), default the network's own.
    mask : ndarray, optional
        ``(K, T)`` valid bins (default all).
    n_observed : int, optional
        Units that stand for recorded neurons (default all).
    conditions : pandas.DataFrame, optional
        One row per trial; needed for *decode*.
    decode : sequence of str
        Condition columns to decode.
    max_classes : int
        A numeric variable with at most this many values is decoded as categories.
    observe : callable, optional
        Maps a simulation (:class:`lrfit.models.Trajectory`) to the observed units'
        activity ``(K, T, n_observed)`` (default: their rates ``phi(x)``); e.g. a counts
        fit's expected rates (``LowRankFit.observe``), so that changes are in Hz.

    Returns
    -------
    ActivityInactivation

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from lrfit import LowRankRNN
    >>> net = LowRankRNN(20, rank=1, n_inputs=1, seed=0)
    >>> u = np.repeat(np.array([-1.0, -0.5, 0.5, 1.0] * 2)[:, None, None], 10, 1)
    >>> res = predict_activity_inactivation(net, u, {"half": range(10)},
    ...                                     conditions=pd.DataFrame({"sign": np.sign(u[:, 0, 0])}), decode=["sign"])
    >>> list(res.table["group"]), bool(res.table["activity_change"].iloc[1] > 0)
    (['control', 'half'], True)
    """
    n = int(model.n_units)
    n_obs = n if n_observed is None else int(n_observed)
    groups = {str(k): _check_units(v, n, f"group '{k}'") for k, v in groups.items()}
    if CONTROL in groups:
        raise LrfitError(f"'{CONTROL}' is reserved for the intact network; rename that group.")
    inputs = np.asarray(inputs, np.float32)
    mask = np.ones(inputs.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    decode = list(decode)
    if decode and conditions is None:
        raise LrfitError("Decoding needs the trials' conditions; pass conditions=... or no decode columns.")
    missing = [c for c in decode if c not in conditions.columns] if decode else []
    if missing:
        raise LrfitError(f"Cannot decode {missing}: the trials' condition columns are {list(conditions.columns)}; "
                         "pick --decode from those.")
    qm = np.linalg.qr(to_numpy(model.m))[0] if hasattr(model, "m") else None

    def simulate(net: Any) -> tuple[np.ndarray, np.ndarray | None]:
        traj = run_network(net, inputs, noise_std=0.0, x0=x0)
        rates = to_numpy(traj.rates if observe is None else observe(traj))[..., :n_obs].astype(np.float64)
        return rates, None if qm is None else to_numpy(traj.currents) @ qm

    rates0, lat0 = simulate(model)
    feats0 = _features(rates0, mask)
    decoders: dict[str, tuple[str, Any]] = {}
    for column in decode:
        values = conditions[column].reset_index(drop=True)
        if values.nunique() < 2:
            raise LrfitError(f"'{column}' takes one value on these trials; there is nothing to decode.")
        kind, est = _decoder(values, max_classes)
        target = values.to_numpy() if kind == "r2" else values.astype(str).to_numpy()
        decoders[column] = (kind, est.fit(feats0, target), target)
    rows, unit_rows = [], {}
    for name, units in [(CONTROL, np.zeros(0, np.int64))] + list(groups.items()):
        rates, lat = (rates0, lat0) if name == CONTROL else simulate(silence(model, units))
        diff = (rates - rates0)[mask]
        unit = np.sqrt(np.mean(diff**2, axis=0)) if diff.size else np.zeros(n_obs)
        unit_rows[name] = unit
        row: dict[str, Any] = {
            "group": name,
            "n_silenced": int(units.size),
            "activity_change": float(unit.mean()),
            "latent_change": float(np.sqrt(np.mean(((lat - lat0)[mask] ** 2).sum(-1))))
            if lat is not None
            else float("nan"),
        }
        feats = _features(rates, mask)
        for column, (_kind, est, target) in decoders.items():
            control = float(est.score(feats0, target))
            score = float(est.score(feats, target))
            row.update({f"decode_{column}": score, f"decode_{column}_control": control,
                        f"delta_decode_{column}": score - control})
        rows.append(row)
    unit_change = pd.DataFrame(unit_rows).T
    return ActivityInactivation(table=pd.DataFrame(rows), unit_change=unit_change,
                                decoders={c: k for c, (k, _, _) in decoders.items()}, groups=groups)
