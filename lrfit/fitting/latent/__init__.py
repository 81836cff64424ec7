"""The latent loss engine: a noise-free low-rank network's loss computed in latent coordinates.

A low-rank network's state splits into a part driven by the inputs and the initial state, and a
part on the columns of ``M`` (DESIGN.md)::

    x[t] = (1 - alpha)^t x[0] + W_in u~[t] + M kappa[t]
    u~[t+1] = (1 - alpha) u~[t] + alpha u[t]
    kappa[t+1] = (1 - alpha) kappa[t] + alpha N^T phi(x[t]) / N_units

with ``u~[0] = kappa[0] = 0``.  The filtered inputs ``u~`` are one small matrix product for all
steps, so a step of the simulation is one thin product of the loadings ``[M, W_in, x0 table]`` with
the step's ``(kappa, u~, start)`` block, the transfer function, and the update of the ``R``
latents; the hand-written backward pass runs through the latents the same way, accumulating the
weight gradients as it goes.

- :mod:`.engine` — the one entry point, :func:`latent_loss` of :class:`LatentNetworks` on a
  :class:`LatentBatch` (K stacked members; one network is a stack of one);
- :mod:`.problem` — a mini-batch as numpy views (:class:`TrialRows` names targets by trial);
- :mod:`.simulation` — forward and backward passes: the compiled loops of :mod:`.compiled`
  (numba, float32 ``tanh``, one trajectory at a time) or numpy loops over blocks;
- :mod:`.poisson` — spike counts' Poisson terms after the time loop;
- :mod:`.workspace` — the per-batch arrays kept from one mini-batch to the next;
- :mod:`.autograd` — the torch Function that ties them together.
"""

from .engine import LatentBatch, LatentNetworks, latent_loss
from .problem import TrialRows

__all__ = ["LatentBatch", "LatentNetworks", "TrialRows", "latent_loss"]
