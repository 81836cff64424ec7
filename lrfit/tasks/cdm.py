"""Context-dependent decision making (Mante, Sussillo, Shenoy & Newsome 2013).

Timing and stimulus statistics follow the networks of Dubreuil, Valente et al.
(2022): a fixation period, a context-only period, a stimulus period in which two
noisy sensory channels (motion, colour) carry signed coherences, a delay, and a
short decision period.  Two context-cue channels tell which stimulus is relevant;
the target is the sign of the relevant coherence during the decision period.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import LrfitError
from .base import Task, TaskTrials, sample_or_fixed, signed_target

CONTEXTS = ("motion", "color")


class ContextDecisionTask(Task):
    """Context-dependent decision making (``"cdm"``).

    Parameters
    ----------
    dt : float
        Step in seconds (default 0.02; at most the shortest epoch, 20 ms by default).
    fixation_ms, context_only_ms, stimulus_ms, delay_ms, decision_ms : float
        Epoch durations (defaults 100, 350, 800, 100, 20 ms).
    coherences : list of float
        Signed coherences drawn uniformly and independently for each stimulus
        (default ``0.1 * [-4, -2, -1, 1, 2, 4]``).
    input_noise : float
        Standard deviation of the sensory noise per 20 ms step (default 0.1;
        dt-corrected, present during the whole trial).
    context_amplitude : float
        Value of the active context cue (default 1.0), on from the end of fixation
        to the start of the decision period.
    target : float
        Target magnitude during the decision period (default 1.0).

    Notes
    -----
    Inputs: ``motion``, ``color`` (coherence plus noise), ``ctx_motion``,
    ``ctx_color``.  Conditions: ``context``, ``coh_motion``, ``coh_color``,
    ``coh_relevant``, ``coh_irrelevant``, ``target`` (+1/-1; a zero relevant
    coherence gets a random target).  ``generate`` accepts fixed ``context``,
    ``coh_motion`` and ``coh_color``.
    """

    name: ClassVar[str] = "cdm"
    defaults: ClassVar[dict[str, Any]] = {
        "fixation_ms": 100.0,
        "context_only_ms": 350.0,
        "stimulus_ms": 800.0,
        "delay_ms": 100.0,
        "decision_ms": 20.0,
        "coherences": [-0.4, -0.2, -0.1, 0.1, 0.2, 0.4],
        "input_noise": 0.1,
        "context_amplitude": 1.0,
        "target": 1.0,
    }
    input_names: ClassVar[tuple[str, ...]] = ("motion", "color", "ctx_motion", "ctx_color")
    condition_columns: ClassVar[tuple[str, ...]] = ("context", "coh_motion", "coh_color")
    noise_channels: ClassVar[tuple[str, ...]] = ("motion", "color")

    def _validate(self, params: dict[str, Any]) -> None:
        super()._validate(params)
        if params["decision_ms"] <= 0:
            raise LrfitError("Task 'cdm' needs a decision epoch: decision_ms must be > 0.")

    def _min_durations(self, params: dict[str, Any]) -> dict[str, float]:
        return {
            "fixation": params["fixation_ms"],
            "context": params["context_only_ms"],
            "stimulus": params["stimulus_ms"],
            "delay": params["delay_ms"],
            "decision": params["decision_ms"],
        }

    def _sample_conditions(self, n_trials, rng, params, fixed) -> pd.DataFrame:
        context = sample_or_fixed("context", fixed, rng, CONTEXTS, n_trials)
        context = self._check_categorical("context", np.asarray(context, dtype=object), CONTEXTS).astype(str)
        coh_m = self._check_numeric(
            "coh_motion", sample_or_fixed("coh_motion", fixed, rng, params["coherences"], n_trials)
        )
        coh_c = self._check_numeric(
            "coh_color", sample_or_fixed("coh_color", fixed, rng, params["coherences"], n_trials)
        )
        is_motion = context == "motion"
        relevant = np.where(is_motion, coh_m, coh_c)
        irrelevant = np.where(is_motion, coh_c, coh_m)
        return pd.DataFrame(
            {
                "context": context,
                "coh_motion": coh_m,
                "coh_color": coh_c,
                "coh_relevant": relevant,
                "coh_irrelevant": irrelevant,
                "target": signed_target(relevant, rng),
            }
        )

    def _fill(self, trials: TaskTrials, params: dict[str, Any]) -> None:
        c = trials.conditions
        stim = trials.epoch_mask("stimulus")
        trials.inputs[:, :, 0] = stim * c["coh_motion"].to_numpy()[:, None]
        trials.inputs[:, :, 1] = stim * c["coh_color"].to_numpy()[:, None]
        cue_start, _ = trials.epoch_bounds("context")
        cue_stop, _ = trials.epoch_bounds("decision")
        steps = np.arange(trials.n_steps)
        cue = (steps[None] >= cue_start[:, None]) & (steps[None] < cue_stop[:, None])
        is_motion = (c["context"] == "motion").to_numpy()
        amp = params["context_amplitude"]
        trials.inputs[:, :, 2] = cue * is_motion[:, None] * amp
        trials.inputs[:, :, 3] = cue * (~is_motion)[:, None] * amp
        self._fill_decision(trials, params)

    def psychometric(self, outputs: Any, trials: TaskTrials) -> pd.DataFrame:
        """Probability of choice +1 against each stimulus's coherence, per context.

        Parameters
        ----------
        outputs : np.ndarray or Tensor
            ``(trials, time, 1)`` readout.
        trials : TaskTrials
            The trials the outputs were produced on.

        Returns
        -------
        pandas.DataFrame
            Long format, columns ``context``, ``stimulus`` (``"motion"`` or
            ``"color"``), ``relevant`` (bool: the stimulus is the one the context
            cues), ``coherence``, ``p_choice``, ``n``.  Within a context, the
            relevant stimulus gives a steep curve and the irrelevant one a flat curve.
        """
        choice = self.choices(outputs, trials)
        frames = []
        for stimulus in CONTEXTS:
            df = pd.DataFrame(
                {
                    "context": trials.conditions["context"].to_numpy(),
                    "stimulus": stimulus,
                    "coherence": trials.conditions[f"coh_{stimulus}"].to_numpy(),
                    "choice": choice,
                }
            )
            frames.append(self._p_choice(df, ["context", "stimulus", "coherence"]))
        out = pd.concat(frames, ignore_index=True)
        out.insert(2, "relevant", out["context"] == out["stimulus"])
        return out.sort_values(["context", "stimulus", "coherence"]).reset_index(drop=True)
