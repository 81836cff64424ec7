"""Spike counts: the Poisson readout's units and closed-form start, bits per spike, smoothing.

A counts fit (``LowRankFit(observation=Poisson())``) gives every recorded neuron ``i`` one
unit whose expected count per bin is

    lambda_i(t) = scale_i * softplus(a_i * s_i(t) + b_i)

with ``s_i`` the unit's rate ``phi(x_i)`` or current ``x_i`` (``counts_from``), a learnt
gain ``a_i`` and offset ``b_i``, and a fixed unit ``scale_i`` (:func:`count_scale`).
Softplus is the link: it is smooth, never overflows, and is linear for large arguments
and exponential for small ones, so ``a_i, b_i`` choose the regime of each neuron.

The closed-form start (:func:`count_start`) smooths each trial's counts with a Gaussian
kernel (``sd`` :data:`START_SMOOTHING_S`), inverts the link, and maps each neuron's
log-rates affinely into the range of the compared quantity (tanh's range for rates,
unit spread for currents); that affine map gives ``a_i, b_i`` and the mapped activity
is what the teacher-forced regression start (:mod:`lrfit.fitting.regression_init`) fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from data_adapters.binning import gaussian_kernel

#: Gaussian smoothing (s) of single-trial counts behind the closed-form start.
START_SMOOTHING_S = 0.05
#: The softplus link is linear above about 3: ``scale_i`` puts a neuron's mean rate there, at
#: ``softplus = MEAN_LEVEL``, so gain and offset can make it linear (large offset) or
#: exponential (negative offset) with parameters of order 1-10.
MEAN_LEVEL = 4.0
#: Rates below this fraction of a neuron's mean are floored before the link is inverted.
RATE_FLOOR_FRACTION = 1e-3
#: Fraction of tanh's range the start's rates span (the 1st-99th percentiles of the log-rates).
RATE_SPAN = 0.8
COUNTS_FROM = ("rates", "currents")

__all__ = ["CountStart", "bits_per_spike", "count_scale", "count_start", "poisson_log_likelihood", "smooth_counts"]


def count_scale(counts: np.ndarray, mask: np.ndarray, dt: float, floor_hz: float = 0.1) -> np.ndarray:
    """The unit of each neuron's expected count: its mean count per valid bin over :data:`MEAN_LEVEL`.

    Parameters
    ----------
    counts : ndarray
        ``(trials, time, neurons)`` counts.
    mask : ndarray of bool
        ``(trials, time)`` valid bins.
    dt : float
        Bin width in seconds.
    floor_hz : float
        Mean rates below this (silent neurons) are raised to it.

    Returns
    -------
    ndarray
        ``(neurons,)`` float32.
    """
    from .reductions import column_moments

    count, mean, _ = column_moments(np.asarray(counts), np.asarray(mask, dtype=bool))  # no copy of the data
    mean = mean if count else np.zeros(np.shape(counts)[-1])
    return (np.maximum(mean, floor_hz * dt) / MEAN_LEVEL).astype(np.float32)


def smooth_counts(counts: np.ndarray, mask: np.ndarray, sd_bins: float) -> np.ndarray:
    """Gaussian-smoothed counts per bin along time, from valid bins only (normalised convolution).

    Parameters
    ----------
    counts : ndarray
        ``(trials, time, neurons)``.
    mask : ndarray of bool
        ``(trials, time)`` valid bins; invalid bins neither contribute nor get a value (0).
    sd_bins : float
        Standard deviation of the kernel in bins (0: no smoothing).

    Returns
    -------
    ndarray
        ``(trials, time, neurons)`` float32 smoothed counts per bin (a new array).

    Examples
    --------
    >>> x = np.zeros((1, 21, 1), np.float32); x[0, 10, 0] = 1.0
    >>> s = smooth_counts(x, np.ones((1, 21), bool), 1.0)
    >>> round(float(s.sum()), 3), int(s[0, :, 0].argmax())
    (1.0, 10)
    """
    from scipy.ndimage import convolve1d

    valid = np.asarray(mask, dtype=np.float32)[..., None]
    x = np.asarray(counts, dtype=np.float32)
    if not valid.all():  # (a fully valid recording is read as it is: no copy)
        x = x * valid
    if sd_bins <= 0:
        return x.copy() if x is counts else x
    kernel = gaussian_kernel(sd_bins).astype(np.float32)
    out = convolve1d(x, kernel, axis=1, mode="constant")
    den = convolve1d(valid, kernel, axis=1, mode="constant")
    np.maximum(den, 1e-6, out=den)
    out /= den
    out *= valid
    return out


def _softplus_inverse(y: np.ndarray, chunk: int = 64) -> np.ndarray:
    """``log(exp(y) - 1)`` for ``y > 0``, without overflow, in place (a chunk of the first axis at a time)."""
    for start in range(0, len(y), chunk):
        part = y[start : start + chunk]
        tmp = np.negative(part)
        np.expm1(tmp, out=tmp)
        np.negative(tmp, out=tmp)
        np.log(tmp, out=tmp)
        part += tmp
    return y


@dataclass(frozen=True)
class CountStart:
    """A closed-form start of the Poisson readout (:func:`count_start`).

    Attributes
    ----------
    activity : ndarray
        ``(trials, time, neurons)`` the compared quantity (rates in tanh's range, or
        currents) that the regression start and the initial state are fitted to.
    gain, bias, scale : ndarray
        ``(neurons,)`` readout parameters: ``lambda = scale * softplus(gain * s + bias)``.
    """

    activity: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    scale: np.ndarray


#: Valid bins sampled (evenly) for the per-neuron statistics of the start.
START_SAMPLE_BINS = 20000


def count_start(counts: np.ndarray, mask: np.ndarray, dt: float, counts_from: str = "rates",
                smoothing_s: float = START_SMOOTHING_S) -> CountStart:
    """Closed-form start of a counts fit: smoothed log-rates mapped into the network's range.

    Each trial's counts are smoothed (Gaussian, ``sd = smoothing_s``), divided by
    :func:`count_scale` and passed through the inverse link (floored at
    :data:`RATE_FLOOR_FRACTION` of the mean); each neuron's values ``eta`` are then mapped
    by ``s = (eta - b) / a``: for rates, the 1st-99th percentiles onto
    ``[-RATE_SPAN, RATE_SPAN]`` (inside tanh's range); for currents, centred to unit
    standard deviation.  ``(a, b)`` start the readout's gain and offset.  The
    percentiles, means and spreads are taken over at most :data:`START_SAMPLE_BINS`
    valid bins, evenly spaced.

    Parameters
    ----------
    counts : ndarray
        ``(trials, time, neurons)`` training counts.
    mask : ndarray of bool
        ``(trials, time)`` valid bins.
    dt : float
        Bin width in seconds.
    counts_from : {"rates", "currents"}
        What drives the readout.
    smoothing_s : float
        Standard deviation of the smoothing kernel in seconds.

    Returns
    -------
    CountStart
    """
    mask = np.asarray(mask, dtype=bool)
    scale = count_scale(counts, mask, dt)
    eta = smooth_counts(counts, mask, smoothing_s / dt)
    eta /= scale
    np.maximum(eta, MEAN_LEVEL * RATE_FLOOR_FRACTION, out=eta)
    _softplus_inverse(eta)
    trial, step = np.nonzero(mask)
    pick = np.linspace(0, len(trial) - 1, min(len(trial), START_SAMPLE_BINS)).astype(np.int64)
    sample = eta[trial[pick], step[pick]].astype(np.float64)
    if counts_from == "rates":
        lo, hi = np.percentile(sample, [1.0, 99.0], axis=0)
        gain = np.maximum((hi - lo) / (2.0 * RATE_SPAN), 1e-3)
        bias = (hi + lo) / 2.0
    else:
        bias = sample.mean(0)
        gain = np.maximum(sample.std(0), 1e-3)
    eta -= bias.astype(np.float32)
    eta /= gain.astype(np.float32)
    if counts_from == "rates":
        np.clip(eta, -0.99, 0.99, out=eta)
    eta *= mask[..., None]
    return CountStart(activity=eta, gain=gain.astype(np.float32), bias=bias.astype(np.float32), scale=scale)


def poisson_log_likelihood(counts: np.ndarray, rate: np.ndarray, mask: np.ndarray | None = None,
                           per_neuron: bool = False) -> float | np.ndarray:
    """Poisson log-likelihood ``sum(y log(lambda) - lambda - log(y!))`` over valid bins.

    Parameters
    ----------
    counts, rate : ndarray
        ``(trials, time, neurons)`` counts and expected counts per bin (broadcastable).
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins.
    per_neuron : bool
        Return one value per neuron.

    Returns
    -------
    float or ndarray
    """
    y = np.asarray(counts, dtype=np.float64)
    lam = np.broadcast_to(np.asarray(rate, dtype=np.float64), y.shape)
    if mask is not None:
        sel = np.asarray(mask, dtype=bool)
        y, lam = y[sel], lam[sel]
    else:
        y, lam = y.reshape(-1, y.shape[-1]), lam.reshape(-1, lam.shape[-1])
    from scipy.special import gammaln, xlogy

    terms = xlogy(y, np.maximum(lam, 1e-300)) - lam - gammaln(y + 1.0)
    return terms.sum(0) if per_neuron else float(terms.sum())


def bits_per_spike(counts: np.ndarray, rate: np.ndarray, mask: np.ndarray | None = None,
                   per_neuron: bool = False) -> float | np.ndarray:
    """Log-likelihood gain over each neuron's mean rate, in bits per spike (the Neural Latents Benchmark's).

    ``(LL_model - LL_null) / (n_spikes ln 2)`` with the null model predicting each neuron's
    mean count per bin over the scored (valid) bins.

    Parameters
    ----------
    counts : ndarray
        ``(trials, time, neurons)`` recorded counts.
    rate : ndarray
        Predicted expected counts per bin, same shape.
    mask : ndarray of bool, optional
        ``(trials, time)`` valid bins.
    per_neuron : bool
        One value per neuron (NaN for a neuron without spikes).

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> y = np.array([[[0.0], [2.0], [0.0], [2.0]]])
    >>> bits_per_spike(y, np.full_like(y, 1.0))  # the null model itself
    0.0
    >>> bits_per_spike(y, y + 1e-9) > 0  # knowing when the spikes come is worth bits
    True
    """
    y = np.asarray(counts, dtype=np.float64)
    sel = np.ones(y.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    null = y[sel].mean(0)
    gain = (poisson_log_likelihood(y, rate, sel, per_neuron=True)
            - poisson_log_likelihood(y, np.broadcast_to(null, y.shape), sel, per_neuron=True))
    spikes = y[sel].sum(0)
    if per_neuron:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(spikes > 0, gain / (spikes * math.log(2.0)), np.nan)
    total = float(spikes.sum())
    return float(gain.sum() / (total * math.log(2.0))) if total > 0 else float("nan")
