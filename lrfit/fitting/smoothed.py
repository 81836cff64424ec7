"""The classic way to fit spikes: smooth them, fit rates by squared error, and score the result as counts.

Before a Poisson target existed, spike data were smoothed with a Gaussian kernel,
normalised into tanh's range and fitted as rates (notebook 5).  :class:`SmoothedRateFit`
does exactly that and maps its predictions back to expected counts per bin, so that it
can be scored in bits per spike on the same held-out trials as a counts fit
(``LowRankFit(observation=Poisson())``) and the smoothed PSTH
(:func:`lrfit.fitting.baselines.compute_count_baselines`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .baselines import COUNT_FLOOR_FRACTION
from .counts import bits_per_spike, smooth_counts
from .estimator import LowRankFit

if TYPE_CHECKING:
    from data_adapters import TrialData

#: The smoothed rates are centred per neuron and scaled by one global factor so that their
#: largest magnitude is this (inside tanh's range), as notebook 5's preprocessing does.
TANH_SPAN = 0.8


class SmoothedRateFit:
    """A rates fit of Gaussian-smoothed spike counts, read back as expected counts per bin.

    Parameters
    ----------
    sd_s : float
        Standard deviation (s) of the Gaussian kernel.
    **params
        :class:`LowRankFit` parameters (``observation`` is rates).

    Attributes
    ----------
    fit_ : LowRankFit
        The rates fit of the normalised smoothed counts.
    offset_, scale_ : ndarray
        ``(neurons,)`` centring and the global scale: ``counts ~ rates * scale_ + offset_``.
    floor_ : ndarray
        Expected counts are floored here (:data:`lrfit.fitting.baselines.COUNT_FLOOR_FRACTION`
        of each neuron's training mean), as the count baselines are.

    Examples
    --------
    >>> import numpy as np
    >>> from lrfit import TrialData
    >>> rng = np.random.default_rng(0)
    >>> data = TrialData(activity=rng.poisson(2.0, (16, 30, 5)), inputs=rng.normal(size=(16, 30, 1)), dt=0.02)
    >>> smoothed = SmoothedRateFit(0.04, rank=1, max_epochs=2, progress=False).fit(data)
    >>> smoothed.predict_counts(data).shape, bool(smoothed.predict_counts(data).min() > 0)
    ((16, 30, 5), True)
    """

    def __init__(self, sd_s: float, **params: Any) -> None:
        self.sd_s = float(sd_s)
        self.params = {**params, "observation": "rates"}

    def fit(self, train: TrialData, validation: TrialData | None = None) -> SmoothedRateFit:
        """Smooth *train*'s counts, normalise them into tanh's range and fit rates.

        Parameters
        ----------
        train : TrialData
            Spike counts per bin.
        validation : TrialData, optional
            Counts of held-out trials for early stopping (smoothed and normalised alike).

        Returns
        -------
        SmoothedRateFit
        """
        counts, mask = np.asarray(train.activity, dtype=np.float64), np.asarray(train.mask, dtype=bool)
        smooth = smooth_counts(counts, mask, self.sd_s / train.dt).astype(np.float64)
        self.offset_ = smooth[mask].mean(0)
        centred = smooth - self.offset_
        self.scale_ = float(np.abs(centred[mask]).max()) / TANH_SPAN or 1.0
        self.floor_ = COUNT_FLOOR_FRACTION * np.maximum(counts[mask].mean(0), 1e-12)
        self.fit_ = LowRankFit(**self.params).fit(self._rates(train),
                                                  None if validation is None else self._rates(validation))
        return self

    def _rates(self, data: TrialData) -> TrialData:
        smooth = smooth_counts(data.activity, data.mask, self.sd_s / data.dt).astype(np.float64)
        rates = np.clip((smooth - self.offset_) / self.scale_, -0.99, 0.99)
        return data.replace(activity=np.where(np.asarray(data.mask)[..., None], rates, 0.0).astype(np.float32))

    def predict_counts(self, data: TrialData) -> np.ndarray:
        """Expected counts per bin ``(trials, time, neurons)``: the fitted rates mapped back, floored."""
        rates = np.asarray(self.fit_.predict(self._rates(data)).activity, dtype=np.float64)
        return np.maximum(rates * self.scale_ + self.offset_, self.floor_)

    def score(self, data: TrialData, metric: str = "bits_per_spike") -> float:
        """Bits per spike of :meth:`predict_counts` on *data*'s counts (``metric="r2"``: their R^2)."""
        from .metrics import r2_score

        pred = self.predict_counts(data)
        if metric == "r2":
            return r2_score(np.asarray(data.activity), pred, np.asarray(data.mask))
        return bits_per_spike(np.asarray(data.activity), pred, np.asarray(data.mask))
