"""``LowRankEnsembleFit``: K low-rank fits (seeds, ranks) trained as one batched tensor program.

Every member is the :class:`LowRankFit` one would get alone with the same settings:
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

import inspect
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from ..errors import LrfitError
from ..models.ensemble_rollout import ensemble_rollout
from ..threads import step_work, with_fit_threads
from .estimator import HIDDEN_INIT_SCALE, LowRankFit
from .losses import TrialRows, lowrank_loss_members, masked_mse
from .policies import RollbackPolicy
from .solver import ShuffledBatches, Solver, SolverResult

log = logging.getLogger(__name__)

_BETAS, _EPS = (0.9, 0.999), 1e-8
#: LowRankFit parameters that the ensemble sets per member (from ``seeds`` and ``ranks``) or not at all.
_PER_MEMBER = ("rank", "random_state", "checkpoint_dir")
#: The members' shared parameters: every other LowRankFit parameter, with its default.
_SHARED = tuple(p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                for name, p in inspect.signature(LowRankFit.__init__).parameters.items()
                if name not in ("self", *_PER_MEMBER))

#: Members simulated together keep each per-batch array (rates, residuals, targets) within about
#: this many bytes: more members per kernel share the per-step call overhead, the cap bounds memory.
_GROUP_BYTES = 64 << 20


class LowRankEnsembleFit(BaseEstimator):
    """Fit K low-rank RNNs to the same data at once (different seeds and/or ranks).

    Parameters
    ----------
    seeds : sequence of int
        ``random_state`` of each member.
    ranks : int or sequence of int
        One rank for all members, or one per member.
    batched : bool, optional
        Simulate the K members in one batched rollout (default on GPUs), or with the
        fitter's latent-coordinate loss (:func:`lrfit.fitting.losses.lowrank_loss_members`,
        as many members per kernel as keep each per-batch array under 64 MB: all of them
        for a few networks of a few hundred units; default on CPUs, where it is several
        times faster).
        The data, the losses, the optimiser and the closed-form start are shared
        either way; results agree to float rounding.
    **params
        Every other :class:`LowRankFit` parameter but ``checkpoint_dir`` (shared by the
        members, same defaults); ``x0="shared"``, ``init`` ``"regression"`` or
        ``"random"`` and the targets ``"rates"`` and ``"currents"`` are supported.  ``progress`` shows the ensemble's progress bar.

    Attributes
    ----------
    fits_ : list of LowRankFit
        The fitted members, each usable like a single fit (``predict``, ``save``, ...).
    fit_seconds_ : float
        Wall time of the whole ensemble.

    Notes
    -----
    A scikit-learn estimator like :class:`LowRankFit` (``get_params``, ``set_params``,
    ``sklearn.base.clone``); its signature is ``seeds, ranks, batched`` followed by the
    shared :class:`LowRankFit` parameters, taken from ``LowRankFit.__init__``.

    Examples
    --------
    Two seeds of a rank-1 fit, trained together:

    >>> import numpy as np
    >>> from lrfit import LowRankEnsembleFit, TrialData
    >>> rng = np.random.default_rng(0)
    >>> data = TrialData(activity=0.5 * np.tanh(rng.normal(size=(8, 10, 6))), inputs=rng.normal(size=(8, 10, 1)),
    ...                  dt=0.02)
    >>> ensemble = LowRankEnsembleFit(seeds=[0, 1], ranks=1, max_epochs=2, progress=False).fit(data)
    >>> [fit.random_state for fit in ensemble.fits_], ensemble.get_params()["max_epochs"]
    ([0, 1], 2)
    """

    def __init__(self, seeds: Sequence[int], ranks: int | Sequence[int] = 1, batched: bool | None = None,
                 **params: Any) -> None:
        self.seeds = seeds
        self.ranks = ranks
        self.batched = batched
        unknown = sorted(set(params) - {p.name for p in _SHARED})
        if unknown:
            raise TypeError(f"LowRankEnsembleFit got unexpected keyword argument(s) {unknown}; its parameters are "
                            f"seeds, ranks, batched and {[p.name for p in _SHARED]}.")
        for parameter in _SHARED:
            setattr(self, parameter.name, params.get(parameter.name, parameter.default))

    # scikit-learn reads the parameters from the signature: advertise the shared ones explicitly.
    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*list(inspect.signature(__init__).parameters.values())[:4], *_SHARED]
    )

    def _seeds_and_ranks(self) -> tuple[list[int], list[int]]:
        """The members' seeds and ranks, checked (one rank per seed, or one rank for all)."""
        seeds = [int(s) for s in self.seeds]
        ranks = [int(self.ranks)] * len(seeds) if isinstance(self.ranks, (int, np.integer)) else [int(r) for r in self.ranks]
        if not seeds or len(ranks) != len(seeds):
            raise LrfitError(f"An ensemble needs one rank per seed (or one rank); got {len(seeds)} seeds and "
                             f"{len(ranks)} ranks.")
        return seeds, ranks

    def _members(self, seeds: list[int], ranks: list[int]) -> list[LowRankFit]:
        shared = {p.name: getattr(self, p.name) for p in _SHARED}
        members = []
        for seed, rank in zip(seeds, ranks):
            member = LowRankFit(**{**shared, "rank": rank, "random_state": seed, "progress": False})
            if member.x0 != "shared" or member.init == "fullrank_svd" or member.target == "counts":
                raise LrfitError("LowRankEnsembleFit supports x0='shared', init 'regression' or 'random' and targets "
                                 "'rates' or 'currents'; fit other settings (target='counts' too) one by one with "
                                 "LowRankFit.")
            members.append(member)
        return members

    @staticmethod
    def _prepare(member: LowRankFit, train: Any, same_start: LowRankFit | None) -> None:
        """What :meth:`LowRankFit.fit` does before optimising (same order, same seeds).

        The closed-form start depends on the data and the rank but not on the seed: a
        member with the rank of an earlier one (*same_start*) copies its start instead of
        recomputing it (the hidden units keep their own seeded random weights).
        """
        member._check_settings(train)
        member.lr_ = member._learning_rate()
        member.dt_ = float(train.dt)
        member.neuron_ids_ = np.asarray(train.neuron_ids)
        member.input_names_ = tuple(train.input_names or ())
        member.condition_table_ = ["all"]
        model = member._new_network(train)
        member.x0_table_ = nn.Parameter(torch.zeros(1, model.n_units, device=model.device))
        if same_start is None or member.init == "random":
            member._initialise(model, train, None)
        else:
            n_obs, ref = train.n_neurons, same_start.model_
            with torch.no_grad():
                for param, source in ((model.m, ref.m), (model.n, ref.n), (model.w_in, ref.w_in)):
                    param.mul_(HIDDEN_INIT_SCALE)
                    param[:n_obs] = source[:n_obs]
                member.x0_table_[:, :n_obs] = same_start.x0_table_[:, :n_obs]
            member.init_seconds_ = 0.0
        member.model_ = model

    def _step_work(self, train: Any) -> int:
        """Multiply-adds of one training step of all members (the thread policy of :mod:`lrfit.threads`)."""
        seeds, ranks = self._seeds_and_ranks()
        return len(seeds) * step_work(self.batch_size, train.n_neurons + self.hidden_units,
                                      2 * max(ranks) + train.n_inputs + 1)

    @with_fit_threads(_step_work)
    def fit(self, train: Any) -> "LowRankEnsembleFit":
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
        seeds, ranks = self._seeds_and_ranks()
        members = self._members(seeds, ranks)
        first = members[0]
        starts: dict[int, LowRankFit] = {}
        for member in members:
            self._prepare(member, train, starts.get(member.rank))
            starts.setdefault(member.rank, member)
        tensors = first._tensors(train)
        settings = first._settings(scale=tensors.variance)
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
                return torch.cat([
                    lowrank_loss_members(pm[i : i + group], pn[i : i + group], pw[i : i + group],
                                        px0[i : i + group, None, :], rows[i : i + group], *gather(idx[i : i + group]),
                                        alpha, nonlin, first.target)
                    for i in range(0, k, group)
                ])
            inputs, target, weight = gather(idx)
            t, c = inputs.shape[2], inputs.shape[3]
            drive = torch.bmm(inputs.reshape(k, b * t, c), pw.transpose(1, 2) * alpha)
            drive = drive.reshape(k, b, t, units).permute(2, 0, 1, 3)
            start = px0[:, None, :].expand(k, b, units)
            states, rates = ensemble_rollout(start, drive, alpha, nonlin, pm, pn, float(units))  # (T, K, B, N)
            out = (rates if first.target == "rates" else states)[..., : target.shape[-1]].permute(1, 2, 0, 3)
            return masked_mse(out, target, weight, dims=(1, 2, 3))

        named = dict(zip(("m", "n", "w_in", "x0"), params))
        solver = Solver(named, _MemberAdam(params, rank_mask, settings, k), settings.stop_rule(n_trials), members=k,
                        schedule=settings.plateau(), rollback=RollbackPolicy(max_rollbacks=0, lr_key="'optim.lr'"),
                        progress=self.progress, desc="ensemble", stacked=True)
        result = solver.run(ShuffledBatches(n_trials, settings.batch_size, seeds, dev, stacked=True), member_losses,
                            started=started)
        self._finish(members, named, result, tensors.variance)
        self.fits_ = members
        self.fit_seconds_ = time.perf_counter() - started
        return self

    @staticmethod
    def _finish(members: list[LowRankFit], params: dict[str, torch.Tensor], result: SolverResult,
                variance: float) -> None:
        """Copy each member's best parameters (restored by the solver) into its network."""
        for i, member in enumerate(members):
            model, history, state = member.model_, result.histories[i], result.states[i]
            with torch.no_grad():
                model.m.copy_(params["m"][i, :, : model.rank])
                model.n.copy_(params["n"][i, :, : model.rank])
                model.w_in.copy_(params["w_in"][i])
                member.x0_table_.copy_(params["x0"][i][None])
            for row in history:
                row["train_r2"] = 1.0 - row["train_loss"] / variance
            member.history_ = history
            member.best_epoch_, member.epochs_, member.rollbacks_ = state.best_epoch, state.epoch, 0
            member.stopped_ = state.stopped or "max_epochs"
            model.svd_normalize_()
            with torch.no_grad():
                model.x0.copy_(member.x0_table_.mean(0))
            member.fit_seconds_ = history[-1]["seconds"] if history else 0.0


class _MemberAdam:
    """Per-member gradient clipping and Adam (as ``torch.optim.Adam``) on stacked ``(K, ...)`` tensors.

    Each member has its own learning rate (``member_groups[i]["lr"]``, lowered by the
    solver's schedule); members that stopped (``active[i]`` false) are left untouched,
    moments included.
    """

    def __init__(self, params: list[torch.Tensor], rank_mask: torch.Tensor, settings: Any, members: int) -> None:
        self.params, self.rank_mask, self.settings = params, rank_mask, settings
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.member_groups = [{"lr": settings.lr} for _ in range(members)]
        self.active = [True] * members
        self.steps = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients."""
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        """Moments, step count and learning rates."""
        return {"moments": [[m.clone(), v.clone()] for m, v in self.moments], "steps": self.steps,
                "lr": [g["lr"] for g in self.member_groups]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        for (m, v), (m0, v0) in zip(self.moments, state["moments"]):
            m.copy_(m0)
            v.copy_(v0)
        self.steps = int(state["steps"])
        for group, lr in zip(self.member_groups, state["lr"]):
            group["lr"] = lr

    @torch.no_grad()
    def step(self) -> None:
        """One clipped Adam step of the active members."""
        self.steps += 1
        params, settings, k = self.params, self.settings, len(self.active)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        grads[0] = grads[0] * self.rank_mask
        grads[1] = grads[1] * self.rank_mask
        if settings.clip_grad:
            norms = torch.sqrt(sum(g.reshape(k, -1).square().sum(1) for g in grads))
            coef = (settings.clip_grad / (norms + 1e-6)).clamp(max=1.0)
            grads = [g * coef.view(-1, *[1] * (g.dim() - 1)) for g in grads]
        beta1, beta2 = _BETAS
        lr = torch.tensor([g["lr"] if on else 0.0 for g, on in zip(self.member_groups, self.active)],
                          dtype=params[0].dtype, device=params[0].device)
        # Frozen members must not advance their moments either: only active rows are updated.
        on = torch.tensor(self.active, device=params[0].device)
        bias1, bias2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        for p, g, (mom, vel) in zip(params, grads, self.moments):
            if settings.weight_decay:
                g = g.add(p, alpha=settings.weight_decay)
            shape = (-1, *[1] * (p.dim() - 1))
            keep = on.view(shape)
            mom.copy_(torch.where(keep, mom * beta1 + g * (1 - beta1), mom))
            vel.copy_(torch.where(keep, vel * beta2 + g * g * (1 - beta2), vel))
            denom = (vel.sqrt() / math.sqrt(bias2)).add_(_EPS)
            p.sub_(mom / denom * (lr / bias1).view(shape))
