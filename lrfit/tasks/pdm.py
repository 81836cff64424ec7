"""Perceptual decision making: integrate one noisy channel (random-dots style)."""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd

from ..errors import LrfitError
from .base import Task, TaskTrials, sample_or_fixed, signed_target


class PerceptualDecisionTask(Task):
    """Perceptual decision making (``"pdm"``), as in Dubreuil, Valente et al. (2022).

    One input channel carries a signed coherence plus noise during the stimulus
    period; after a delay the output must report the sign of the coherence.

    Parameters
    ----------
    dt : float
        Step in seconds (default 0.02).
    fixation_ms, stimulus_ms, delay_ms, decision_ms : float
        Epoch durations (defaults 100, 800, 100, 20 ms).
    coherences : list of float
        Signed coherences drawn uniformly (default
        ``±[0.0125, 0.025, 0.05, 0.1, 0.2]``, from near threshold to easy).
    input_noise : float
        Noise standard deviation per 20 ms step (default 0.1, dt-corrected).
    target : float
        Target magnitude (default 1.0).

    Notes
    -----
    Conditions: ``coherence``, ``target`` (a zero coherence gets a random target).
    ``generate`` accepts a fixed ``coherence``.
    """

    name: ClassVar[str] = "pdm"
    defaults: ClassVar[dict[str, Any]] = {
        "fixation_ms": 100.0,
        "stimulus_ms": 800.0,
        "delay_ms": 100.0,
        "decision_ms": 20.0,
        "coherences": [-0.2, -0.1, -0.05, -0.025, -0.0125, 0.0125, 0.025, 0.05, 0.1, 0.2],
        "input_noise": 0.1,
        "target": 1.0,
    }
    input_names: ClassVar[tuple[str, ...]] = ("stimulus",)
    condition_columns: ClassVar[tuple[str, ...]] = ("coherence",)
    noise_channels: ClassVar[tuple[str, ...]] = ("stimulus",)

    def _validate(self, params: dict[str, Any]) -> None:
        super()._validate(params)
        if params["decision_ms"] <= 0:
            raise LrfitError("Task 'pdm' needs a decision epoch: decision_ms must be > 0.")

    def _min_durations(self, params: dict[str, Any]) -> dict[str, float]:
        return {
            "fixation": params["fixation_ms"],
            "stimulus": params["stimulus_ms"],
            "delay": params["delay_ms"],
            "decision": params["decision_ms"],
        }

    def _sample_conditions(self, n_trials, rng, params, fixed) -> pd.DataFrame:
        coh = self._check_numeric("coherence", sample_or_fixed("coherence", fixed, rng, params["coherences"], n_trials))
        return pd.DataFrame({"coherence": coh, "target": signed_target(coh, rng)})

    def _fill(self, trials: TaskTrials, params: dict[str, Any]) -> None:
        c = trials.conditions
        trials.inputs[:, :, 0] = trials.epoch_mask("stimulus") * c["coherence"].to_numpy()[:, None]
        self._fill_decision(trials, params)

    def psychometric(self, outputs: Any, trials: TaskTrials) -> pd.DataFrame:
        """Probability of choice +1 against coherence.

        Returns
        -------
        pandas.DataFrame
            Columns ``coherence``, ``p_choice``, ``n``.
        """
        df = pd.DataFrame(
            {"coherence": trials.conditions["coherence"].to_numpy(), "choice": self.choices(outputs, trials)}
        )
        return self._p_choice(df, ["coherence"])
