"""Adam on stacked ``(K, ...)`` tensors: the optimiser of K members trained as one (:class:`lrfit.LowRankEnsembleFit`).

It sits beside :func:`lrfit.fitting.solver.adam` (one network's optimiser) and is driven by the same
:class:`lrfit.fitting.solver.Solver`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

_BETAS, _EPS = (0.9, 0.999), 1e-8


class StackedAdam:
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
