"""Observation models: how a network's units are compared with the recorded activity.

An observation model owns everything that depends on what was recorded: the readout from a
unit's rate ``phi(x)`` or current ``x`` (its *signal*) to the observed quantity, the loss, the
null model and the natural score, the start of the readout, the checks of the data, and the
labels under which its scores are reported.  :class:`lrfit.LowRankFit` takes one through its
``observation`` parameter and never branches on what it is; a new likelihood is one new class.

- :class:`Gaussian` — rates in tanh's range (``signal="rates"``) or centred currents
  (``"currents"``) compared by the masked mean squared error; scored by R².
- :class:`Poisson` — spike counts per bin, ``lambda_i = scale_i * softplus(a_i s_i + b_i)``
  with ``s_i`` the unit's rate or current, compared by the Poisson negative log-likelihood;
  scored in bits per spike over each neuron's mean count (:mod:`lrfit.fitting.counts`).

Config files spell them ``model.target: rates | currents | counts`` (and ``model.counts_from``
for the signal of counts): :func:`as_observation` reads the spelling.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import LrfitError, check_choice
from .counts import bits_per_spike, count_start
from .losses import CountReadout, masked_mse, poisson_nll
from .metrics import psth_r2

if TYPE_CHECKING:
    from data_adapters import TrialData

log = logging.getLogger(__name__)

SIGNALS = ("rates", "currents")
#: Expected spike rates above this (Hz) mean the activity holds rates, not counts per bin.
MAX_PLAUSIBLE_RATE_HZ = 1000.0


def _source(data: TrialData) -> str:
    return data.meta.get("source", "the data") if isinstance(data.meta, dict) else "the data"


class Observation:
    """What each observed unit is compared with, and how (the base class of the observation models).

    Parameters
    ----------
    signal : {"rates", "currents"}
        What each observed unit contributes: its rate ``phi(x)`` or its current ``x``.

    Attributes
    ----------
    name : str
        The config spelling (``model.target``).
    score_name, score_label : str
        The natural score's metric key (``"r2"``, ``"bits_per_spike"``) and its label.
    readout_names : tuple of str
        The learnt parameters of the readout (none for an identity readout).
    """

    name: ClassVar[str] = ""
    score_name: ClassVar[str] = "r2"
    score_label: ClassVar[str] = "R²"
    readout_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, signal: str = "rates") -> None:
        self.signal = signal

    def __repr__(self) -> str:
        return f"{type(self).__name__}(signal={self.signal!r})"

    def __eq__(self, other: object) -> bool:
        # a spelling equals the model it spells, so that parameters compare as scikit-learn's tools expect
        if isinstance(other, str | dict):
            try:
                other = as_observation(other)  # type: ignore[arg-type]
            except LrfitError:
                return False
        return isinstance(other, Observation) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(self.name)

    # -- description ------------------------------------------------------------------
    def to_dict(self) -> dict[str, str]:
        """JSON form: the config spelling and the signal (read back by :func:`as_observation`)."""
        return {"name": self.name, "signal": self.signal}

    def check(self) -> None:
        """Raise one sentence for an unknown signal."""
        check_choice(self.signal, SIGNALS, f"{type(self).__name__} signal")

    @property
    def counts(self) -> bool:
        """Whether the recording holds counts per bin (scored in bits per spike, shown as rates in Hz)."""
        return self.score_name == "bits_per_spike"

    # -- data ---------------------------------------------------------------------------
    def check_data(self, data: TrialData) -> None:
        """Raise one sentence if *data* cannot be compared with this model's observations."""

    def null_and_unit(self, mean: np.ndarray, variance: float) -> tuple[float, float]:
        """The null model's mean loss and the loss change worth one unit of the score.

        The score of a mean loss ``L`` is ``(null - L) / unit``: R² is ``(var - L) / var``.

        Parameters
        ----------
        mean : ndarray
            ``(n_obs,)`` each neuron's mean over valid bins.
        variance : float
            Mean squared deviation from each neuron's mean.

        Returns
        -------
        tuple of float
        """
        return variance, variance

    # -- readout ------------------------------------------------------------------------
    def start(self, train: TrialData, device: torch.device) -> tuple[np.ndarray, CountReadout | None]:
        """The activity the closed-form starts fit (in the signal's units), and the readout's start.

        Parameters
        ----------
        train : TrialData
            Training trials.
        device : torch.device
            Where the readout's parameters live.

        Returns
        -------
        tuple
            ``(activity, readout)``; the readout is None for an identity readout.
        """
        return np.asarray(train.activity), None

    def observe(self, s: Tensor, readout: CountReadout | None) -> Tensor:
        """The observed quantity of the observed units' signal *s* ``(..., n_obs)``."""
        return s

    def loss(self, s: Tensor, target: Tensor, weight: Tensor | None, readout: CountReadout | None) -> Tensor:
        """Masked mean loss of the signal *s* against the recorded *target* (autograd)."""
        return masked_mse(s, target, weight)

    # -- scores -------------------------------------------------------------------------
    def natural_score(self, truth: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
        """The natural score of a prediction (R² here)."""
        from .metrics import r2_score

        return r2_score(truth, pred, mask)

    def extra_scores(self, truth: np.ndarray, pred: np.ndarray, mask: np.ndarray,
                     labels: np.ndarray | None, split: str) -> dict[str, Any]:
        """Scores beside R² that this model adds to a fit's metrics (none for a Gaussian)."""
        return {}


class Gaussian(Observation):
    """Rates (``tanh`` of the currents, data scaled into (-1, 1)) or currents, by mean squared error.

    Parameters
    ----------
    signal : {"rates", "currents"}
        Fit ``tanh(x)`` to rates scaled into (-1, 1), or ``x`` to centred data.

    Examples
    --------
    >>> Gaussian("currents").name, Gaussian().score_name
    ('currents', 'r2')
    """

    @property
    def name(self) -> str:  # type: ignore[override]
        """The config spelling: the signal itself."""
        return self.signal

    def check_data(self, data: TrialData) -> None:
        """Rates must lie inside tanh's range (-1, 1) in valid bins."""
        if self.signal != "rates":
            return
        valid = np.asarray(data.mask, dtype=bool)
        activity = np.asarray(data.activity)
        per_bin = np.maximum(activity.max(-1), -activity.min(-1))  # max |a| per bin without a copy
        peak = float(per_bin[valid].max()) if valid.any() else 0.0
        if peak >= 1.0:
            raise LrfitError(
                f"Activity of {_source(data)} reaches |{peak:.3g}|, outside tanh's range (-1, 1) for rates; "
                "normalise it (config key preprocess.normalise, e.g. centre_global or soft; in Python "
                "data.normalise(...)) and/or lower the config key preprocess.scale, or fit model.target: currents."
            )


class Poisson(Observation):
    """Spike counts per bin through a softplus readout of each unit's rate or current.

    Parameters
    ----------
    signal : {"rates", "currents"}
        Whether each unit's rate ``phi(x_i)`` or its current ``x_i`` drives its readout
        (config key ``model.counts_from``).

    Examples
    --------
    >>> Poisson().name, Poisson().score_name, Poisson("currents").to_dict()
    ('counts', 'bits_per_spike', {'name': 'counts', 'signal': 'currents'})
    """

    name = "counts"
    score_name = "bits_per_spike"
    score_label = "bits/spike"
    readout_names = ("gain", "bias")

    def check_data(self, data: TrialData) -> None:
        """Counts must be finite, non-negative and look like counts per bin in valid bins."""
        source = _source(data)
        mask = np.asarray(data.mask, dtype=bool)
        valid = np.asarray(data.activity)[mask]
        if valid.size == 0:
            raise LrfitError(f"The activity of {source} has no valid bin to fit; check the mask and the time window.")
        if isinstance(data.meta, dict) and str(data.meta.get("units", "")).lower() in ("hz", "spikes/s", "1/s"):
            raise LrfitError(
                f"The activity of {source} is in {data.meta['units']} (rates), but target='counts' (config key "
                "model.target) fits spike counts per bin; load the counts (e.g. rate: false in the data: section of "
                "an NWB file), or fit target rates/currents.")
        low = float(valid.min())
        if low < 0:
            k, t, i = np.argwhere((np.asarray(data.activity) < 0) & mask[..., None])[0]
            raise LrfitError(
                f"The activity of {source} holds negative values (first {low:.3g} at trial {k}, bin {t}, neuron "
                f"{data.neuron_ids[i]}), but target='counts' (config key model.target) fits spike counts per bin; "
                "pass the raw counts (no centring or normalisation: preprocess.normalise: null), or fit target "
                "rates/currents.")
        mean_hz = valid.mean(0) / float(data.dt)
        if float(mean_hz.max()) > MAX_PLAUSIBLE_RATE_HZ:
            i = int(mean_hz.argmax())
            raise LrfitError(
                f"Neuron {data.neuron_ids[i]} of {source} has a mean of {valid[:, i].mean():.3g} counts per "
                f"{data.dt:g} s bin ({mean_hz[i]:.0f} Hz): the activity looks like rates, not counts per bin; multiply "
                "rates in Hz by dt (or bin the spikes), or fit target rates/currents.")
        silent = np.flatnonzero(valid.sum(0) == 0)
        if silent.size:
            log.warning("%d neuron(s) of %s have no spike in the fitted trials (e.g. %s); their readout only learns "
                        "that they are silent.", silent.size, source, data.neuron_ids[silent[0]])

    def null_and_unit(self, mean: np.ndarray, variance: float) -> tuple[float, float]:
        """The per-neuron mean-count null (``mean - y log mean`` per entry) and ln 2 per spike (bits per spike)."""
        from scipy.special import xlogy

        spikes = float(mean.mean()) if mean.size else 0.0
        null = float((mean - xlogy(mean, mean)).mean()) if mean.size else 0.0
        return null, (spikes * math.log(2.0) if spikes > 0 else float("nan"))

    def start(self, train: TrialData, device: torch.device) -> tuple[np.ndarray, CountReadout | None]:
        """The readout's closed-form start (:func:`lrfit.fitting.counts.count_start`) and its mapped log-rates."""
        start = count_start(np.asarray(train.activity), np.asarray(train.mask), float(train.dt), self.signal)
        readout = CountReadout(nn.Parameter(torch.as_tensor(start.gain, device=device)),
                               nn.Parameter(torch.as_tensor(start.bias, device=device)),
                               torch.as_tensor(start.scale, device=device))
        return start.activity, readout

    def observe(self, s: Tensor, readout: CountReadout | None) -> Tensor:
        """Expected counts per bin: ``scale * softplus(gain * s + bias)``."""
        gain, bias, scale = readout  # type: ignore[misc]
        return torch.nn.functional.softplus(torch.addcmul(bias, s, gain)) * scale

    def loss(self, s: Tensor, target: Tensor, weight: Tensor | None, readout: CountReadout | None) -> Tensor:
        """Masked mean Poisson negative log-likelihood (:func:`lrfit.fitting.losses.poisson_nll`)."""
        return poisson_nll(s, target, weight, readout)  # type: ignore[arg-type]

    def natural_score(self, truth: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
        """Bits per spike over each neuron's mean count."""
        return bits_per_spike(truth, pred, mask)

    def extra_scores(self, truth: np.ndarray, pred: np.ndarray, mask: np.ndarray,
                     labels: np.ndarray | None, split: str) -> dict[str, Any]:
        """Bits per spike (pooled and per neuron) and the R² of condition-averaged rates."""
        suffix = f"_{split}" if split else ""
        return {
            f"bits_per_spike{suffix}": bits_per_spike(truth, pred, mask),
            f"bits_per_spike{suffix}_per_neuron": [float(v) for v in bits_per_spike(truth, pred, mask, True)],
            f"psth_r2{suffix}": psth_r2(truth, pred, labels, mask),
        }


def recorded_observation(metrics: dict[str, Any]) -> Observation:
    """The observation model a run's ``metrics.json`` records (``target``, ``counts_from``; rates when absent).

    Examples
    --------
    >>> recorded_observation({"target": "currents"}).score_name
    'r2'
    """
    return as_observation(metrics.get("target") or "rates", metrics.get("counts_from") or "rates")


def as_observation(spec: str | Observation | dict[str, str], counts_from: str = "rates") -> Observation:
    """The observation model of a spelling: ``"rates"``, ``"currents"`` or ``"counts"`` (or an object, or its dict).

    Parameters
    ----------
    spec : str, Observation or dict
        A config spelling (``model.target``), an observation model (returned as it is),
        or :meth:`Observation.to_dict`'s form.
    counts_from : {"rates", "currents"}
        With ``"counts"``: the signal that drives the Poisson readout.

    Returns
    -------
    Observation

    Examples
    --------
    >>> as_observation("counts", counts_from="currents")
    Poisson(signal='currents')
    >>> as_observation({"name": "rates", "signal": "rates"})
    Gaussian(signal='rates')
    """
    if isinstance(spec, Observation):
        return spec
    if isinstance(spec, dict):
        name, counts_from = spec.get("name"), spec.get("signal", counts_from)
    else:
        name = spec
    check_choice(name, ("rates", "currents", "counts"), "observation")
    check_choice(counts_from, SIGNALS, "counts_from")
    return Poisson(counts_from) if name == "counts" else Gaussian(str(name))
