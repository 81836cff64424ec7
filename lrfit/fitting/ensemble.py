"""``LowRankEnsembleFit``: K low-rank fits (seeds, ranks) trained as one batched tensor program.

Every member is ``clone(estimator)`` with its own seed and rank, the :class:`LowRankFit` one would get
alone with the same settings:
the same closed-form start, its own seeded batch order, and its own optimiser
(Adam with per-member gradient clipping, plateau schedule, early stopping and
best-epoch restore).  Only the arithmetic is shared: the K rollouts run as one
batched simulation (on CPUs the latent-coordinate loss of :mod:`lrfit.fitting.losses`,
on GPUs :func:`lrfit.models.ensemble_rollout.ensemble_rollout`; see ``batched``) and
Adam updates stacked ``(K, ...)`` tensors.  Ranks are padded to the largest with zero
columns that stay zero.  The closed-form start, which depends on the data and the
rank only, is computed once per rank and shared.  The loop is :class:`lrfit.fitting.solver.Solver`'s, with
one batch order per member; a non-finite loss stops the ensemble with the solver's one-sentence error
(a rollback would change the batch order of every member, so the single fit's rollback is not reproduced).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone

from ..errors import LrfitError
from ..models.ensemble_rollout import ensemble_rollout
from ..threads import step_work, with_fit_threads
from .checks import check_fit
from .estimator import LowRankFit
from .latent import LatentBatch, LatentNetworks, TrialRows, latent_loss
from .losses import masked_mse
from .observation import as_observation
from .policies import RollbackPolicy
from .solver import ShuffledBatches, Solver, SolverResult
from .stacked_adam import StackedAdam
from .staging import StagedTrials, stage
from .starts import NetworkStart, learning_rate, optimiser_settings, start_network

if TYPE_CHECKING:
    from data_adapters import TrialData

log = logging.getLogger(__name__)

#: Members simulated together keep each per-batch array (rates, residuals, targets) within about
#: this many bytes: more members per kernel share the per-step call overhead, the cap bounds memory.
_GROUP_BYTES = 64 << 20


class LowRankEnsembleFit(BaseEstimator):
    """Fit K low-rank RNNs to the same data at once: clones of one estimator with different seeds and/or ranks.

    Parameters
    ----------
    estimator : LowRankFit, optional
        The unfitted estimator whose settings the members share (default ``LowRankFit()``);
        ``x0="shared"``, ``init`` ``"regression"`` or ``"random"`` and an observation model
        without a learnt readout (rates or currents) are supported.  Its ``progress`` shows the
        ensemble's progress bar; its ``checkpoint_dir`` is not used.
    seeds : sequence of int
        ``random_state`` of each member.
    ranks : int or sequence of int, optional
        One rank for all members, or one per member (default: the estimator's).
    batched : bool, optional
        Simulate the K members in one batched rollout (default on GPUs), or with the
        fitter's latent-coordinate loss (:func:`lrfit.fitting.latent.latent_loss`,
        as many members per kernel as keep each per-batch array under 64 MB; default on
        CPUs, where it is several times faster).  Results agree to float rounding.

    Attributes
    ----------
    estimator_ : LowRankFit
        The validated base estimator.
    fits_ : list of LowRankFit
        The fitted members, each usable like a single fit (``predict``, ``save``, ...).
    fit_seconds_ : float
        Wall time of the whole ensemble.

    Examples
    --------
    Two seeds of a rank-1 fit, trained together:

    >>> import numpy as np
    >>> from lrfit import LowRankEnsembleFit, LowRankFit, TrialData
    >>> rng = np.random.default_rng(0)
    >>> data = TrialData(activity=0.5 * np.tanh(rng.normal(size=(8, 10, 6))), inputs=rng.normal(size=(8, 10, 1)),
    ...                  dt=0.02)
    >>> ensemble = LowRankEnsembleFit(LowRankFit(max_epochs=2, progress=False), seeds=[0, 1]).fit(data)
    >>> [fit.random_state for fit in ensemble.fits_], [fit.max_epochs for fit in ensemble.fits_]
    ([0, 1], [2, 2])
    """

    def __init__(self, estimator: LowRankFit | None = None, seeds: Sequence[int] = (0,),
                 ranks: int | Sequence[int] | None = None, batched: bool | None = None) -> None:
        self.estimator = estimator
        self.seeds = seeds
        self.ranks = ranks
        self.batched = batched

    def _members(self) -> list[LowRankFit]:
        """Unfitted members: clones of the estimator with their seed and rank (one rank per seed, or one for all)."""
        self.estimator_ = clone(self.estimator) if self.estimator is not None else LowRankFit()
        seeds = [int(s) for s in self.seeds]
        ranks = self.estimator_.rank if self.ranks is None else self.ranks
        ranks = [int(ranks)] * len(seeds) if isinstance(ranks, int | np.integer) else [int(r) for r in ranks]
        if not seeds or len(ranks) != len(seeds):
            raise LrfitError(f"An ensemble needs one rank per seed (or one rank); got {len(seeds)} seeds and "
                             f"{len(ranks)} ranks.")
        base = self.estimator_
        if base.x0 != "shared" or base.init == "fullrank_svd" or as_observation(base.observation).readout_names:
            raise LrfitError("LowRankEnsembleFit supports x0='shared', init 'regression' or 'random' and observations "
                             "without a learnt readout (rates or currents); fit other settings (spike counts too) one "
                             "by one with LowRankFit.")
        return [clone(base).set_params(rank=r, random_state=s, progress=False, checkpoint_dir=None)
                for s, r in zip(seeds, ranks)]

    def _step_work(self, train: TrialData) -> int:
        """Multiply-adds of one training step of all members (the thread policy of :mod:`lrfit.threads`)."""
        base = self.estimator if self.estimator is not None else LowRankFit()
        ranks = base.rank if self.ranks is None else self.ranks
        widest = max(ranks) if isinstance(ranks, Sequence) and ranks else int(ranks)
        return len(self.seeds) * step_work(base.batch_size, train.n_neurons + base.hidden_units,
                                           2 * widest + train.n_inputs + 1)

    @with_fit_threads(_step_work)
    def fit(self, train: TrialData) -> LowRankEnsembleFit:
        """Fit every member to *train* (early stopping on the training loss, as ``LowRankFit.fit`` without validation).

        Parameters
        ----------
        train : TrialData
            Training trials.

        Returns
        -------
        LowRankEnsembleFit
            ``self``; the members are in ``fits_``.
        """
        started = time.perf_counter()
        members = self._members()
        starts: dict[int, NetworkStart] = {}
        for member in members:
            check_fit(member, train)
            start = start_network(member, train, same_start=starts.get(member.rank))
            starts.setdefault(member.rank, start)
            member.observation_, member.readout_ = as_observation(member.observation), None
            member.lr_, member.dt_ = learning_rate(member), float(train.dt)
            member.neuron_ids_, member.input_names_ = np.asarray(train.neuron_ids), tuple(train.input_names or ())
            member.model_, member.x0_table_, member.condition_table_ = start.model, start.x0_table, ["all"]
            member.init_seconds_ = start.seconds
        first = members[0]
        seeds, ranks = [member.random_state for member in members], [member.rank for member in members]
        tensors = stage(train, np.zeros(train.n_trials, dtype=np.int64), first.observation_, first.device)
        settings = optimiser_settings(first, scale=tensors.loss_unit)
        k, r_max = len(members), max(ranks)
        models = [mb.model_ for mb in members]
        units, alpha, nonlin = models[0].n_units, models[0].alpha, models[0].nonlinearity
        dev = tensors.activity.device
        with torch.no_grad():
            m = torch.zeros(k, units, r_max, device=dev)
            n = torch.zeros(k, units, r_max, device=dev)
            for i, model in enumerate(models):
                m[i, :, : model.rank] = model.m
                n[i, :, : model.rank] = model.n
            w_in = torch.stack([model.w_in.detach() for model in models])  # (K, N, C)
            x0 = torch.stack([mb.x0_table_.detach()[0] for mb in members])  # (K, N)
        params = [p.clone().requires_grad_(True) for p in (m, n, w_in, x0)]
        rank_mask = (torch.arange(r_max, device=dev)[None, None, :] < torch.tensor(ranks, device=dev)[:, None, None])
        n_trials = tensors.n_trials
        batched = dev.type != "cpu" if self.batched is None else bool(self.batched)

        def gather(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:  # idx (K', B)
            kk, b = idx.shape
            flat = idx.reshape(-1)
            inputs = tensors.inputs.index_select(0, flat).view(kk, b, *tensors.inputs.shape[1:])
            weight = None if tensors.weight is None else tensors.weight.index_select(0, flat).view(kk, b, -1)
            if not batched:  # the latent loss reads the trials where they lie
                target = TrialRows(tensors.activity, idx)
            else:
                target = tensors.activity.index_select(0, flat).view(kk, b, *tensors.activity.shape[1:])
            return inputs, target, weight

        def member_losses(idx: torch.Tensor) -> torch.Tensor:  # idx (K, B) -> (K,)
            pm, pn, pw, px0 = params
            b = idx.shape[1]
            if not batched:  # latent coordinates, members grouped under _GROUP_BYTES per array (CPU default)
                group = max(1, _GROUP_BYTES // (b * tensors.activity.shape[1] * units * 4))
                rows = torch.zeros((k, b), dtype=torch.long, device=dev)
                return torch.cat(
                    [
                        latent_loss(
                            LatentNetworks(
                                pm[i : i + group],
                                pn[i : i + group],
                                pw[i : i + group],
                                alpha,
                                nonlin,
                                first.observation_.signal,
                            ),
                            LatentBatch(px0[i : i + group, None, :], rows[i : i + group], *gather(idx[i : i + group])),
                        )
                        for i in range(0, k, group)
                    ]
                )
            inputs, target, weight = gather(idx)
            t, c = inputs.shape[2], inputs.shape[3]
            drive = torch.bmm(inputs.reshape(k, b * t, c), pw.transpose(1, 2) * alpha)
            drive = drive.reshape(k, b, t, units).permute(2, 0, 1, 3)
            start = px0[:, None, :].expand(k, b, units)
            states, rates = ensemble_rollout(start, drive, alpha, nonlin, pm, pn, float(units))  # (T, K, B, N)
            out = (rates if first.observation_.signal == "rates" else states)[..., : target.shape[-1]].permute(
                1, 2, 0, 3
            )
            return masked_mse(out, target, weight, dims=(1, 2, 3))

        named = dict(zip(("m", "n", "w_in", "x0"), params))
        solver = Solver(named, StackedAdam(params, rank_mask, settings, k), settings.stop_rule(n_trials), members=k,
                        schedule=settings.plateau(), rollback=RollbackPolicy(max_rollbacks=0, lr_key="'optim.lr'"),
                        progress=self.estimator_.progress, desc="ensemble", stacked=True)
        result = solver.run(ShuffledBatches(n_trials, settings.batch_size, seeds, dev, stacked=True), member_losses,
                            started=started)
        self._finish(members, named, result, tensors)
        self.fits_ = members
        self.fit_seconds_ = time.perf_counter() - started
        return self

    @staticmethod
    def _finish(members: list[LowRankFit], params: dict[str, torch.Tensor], result: SolverResult,
                tensors: StagedTrials) -> None:
        """Copy each member's best parameters (restored by the solver) into its network."""
        for i, member in enumerate(members):
            model, history, state = member.model_, result.histories[i], result.states[i]
            with torch.no_grad():
                model.m.copy_(params["m"][i, :, : model.rank])
                model.n.copy_(params["n"][i, :, : model.rank])
                model.w_in.copy_(params["w_in"][i])
                member.x0_table_.copy_(params["x0"][i][None])
            for row in history:
                row[f"train_{member.observation_.score_name}"] = tensors.score(row["train_loss"])
            member.history_ = history
            member.best_epoch_, member.epochs_, member.rollbacks_ = state.best_epoch, state.epoch, 0
            member.stopped_ = state.stopped or "max_epochs"
            model.svd_normalize_()
            with torch.no_grad():
                model.x0.copy_(member.x0_table_.mean(0))
            member.fit_seconds_ = history[-1]["seconds"] if history else 0.0
