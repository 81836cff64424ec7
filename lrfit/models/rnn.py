"""Rate networks: :class:`LowRankRNN` and :class:`FullRankRNN`.

Both share one simulation core (:mod:`lrfit.models.rollout`) for the dynamics

    x[t+1] = x[t] + alpha * ( -x[t] + J phi(x[t]) + W_in u[t] ) + noise[t]
    r[t]   = phi(x[t]),      z[t] = W_out^T r[t] / N_units

with ``alpha = dt / tau``.  Tensors are batch first: ``(trials, time, channels)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import LrfitError, check_choice
from .rollout import NONLINEARITIES, rollout

Tensor = torch.Tensor


@dataclass
class Trajectory:
    """Result of a simulation.

    Attributes
    ----------
    currents : Tensor
        ``(trials, time, units)`` states ``x[1..T]`` after each input step.
    rates : Tensor
        ``(trials, time, units)`` ``phi(currents)``.
    outputs : Tensor or None
        ``(trials, time, n_outputs)`` linear readout of the rates, if the network has one.
    """

    currents: Tensor
    rates: Tensor
    outputs: Tensor | None


def _as_generator(seed: int | torch.Generator | None, device: torch.device) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


class RNNBase(nn.Module):
    """Common parts of every rate network: inputs, readout, initial state, simulation.

    Parameters
    ----------
    n_units : int
        Number of units ``N``.
    n_inputs : int
        Number of input channels ``C`` (may be 0).
    n_outputs : int
        Number of readout channels (may be 0: no readout).
    tau : float
        Time constant in seconds.
    dt : float
        Euler step in seconds; ``alpha = dt / tau``.
    noise_std : float
        Standard deviation of the private noise added to each unit at each step
        (scaled by ``sqrt(alpha)``, so that it is dt-invariant).
    nonlinearity : str
        ``"tanh"`` (default), ``"relu"``, ``"softplus"`` or ``"identity"``.
    train_x0 : bool
        Learn the initial state (shared by all trials).
    seed : int
        Seed of the parameter initialisation.
    device : str or torch.device
        Where parameters live (``"cpu"`` by default, ``"cuda"`` for a GPU).
    """

    kind = "base"

    def __init__(
        self,
        n_units: int,
        n_inputs: int = 0,
        n_outputs: int = 0,
        tau: float = 0.1,
        dt: float = 0.02,
        noise_std: float = 0.0,
        nonlinearity: str = "tanh",
        train_x0: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        if int(n_units) < 1:
            raise LrfitError(f"n_units must be a positive integer, got {n_units}.")
        if n_inputs < 0 or n_outputs < 0:
            raise LrfitError("n_inputs and n_outputs must be zero or positive.")
        if not (tau > 0 and dt > 0):
            raise LrfitError(f"tau and dt must be positive seconds, got tau={tau}, dt={dt}.")
        if dt > tau:
            raise LrfitError(f"dt={dt} s is larger than tau={tau} s: the Euler step would be unstable; use dt <= tau.")
        check_choice(nonlinearity, NONLINEARITIES, "nonlinearity")
        if noise_std < 0:
            raise LrfitError(f"noise_std must be >= 0, got {noise_std}.")
        self.n_units, self.n_inputs, self.n_outputs = int(n_units), int(n_inputs), int(n_outputs)
        self.tau, self.dt, self.noise_std = float(tau), float(dt), float(noise_std)
        self.nonlinearity = nonlinearity
        self.train_x0 = bool(train_x0)
        self.seed = int(seed)
        self._device = torch.device(device)
        gen = _as_generator(self.seed, torch.device("cpu"))
        self.w_in = nn.Parameter(torch.randn(self.n_units, self.n_inputs, generator=gen))
        self.w_out = nn.Parameter(torch.randn(self.n_units, self.n_outputs, generator=gen))
        self.x0 = nn.Parameter(torch.zeros(self.n_units), requires_grad=self.train_x0)
        self._init_recurrent(gen)
        self.to(self._device)

    # -- to be provided by subclasses -------------------------------------------------
    def _init_recurrent(self, gen: torch.Generator) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    kind_of_recurrence = "dense"

    def recurrent_weights(self) -> tuple:  # pragma: no cover - abstract
        """Arguments describing ``J`` for :func:`lrfit.models.rollout.rollout`."""
        raise NotImplementedError

    def connectivity(self) -> Tensor:  # pragma: no cover - abstract
        """The dense ``N x N`` matrix ``J`` (for analysis of small networks only)."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    @property
    def alpha(self) -> float:
        """Euler factor ``dt / tau``."""
        return self.dt / self.tau

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.w_in.device

    def phi(self, x: Tensor) -> Tensor:
        """Apply the transfer function."""
        return NONLINEARITIES[self.nonlinearity][0](x)

    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable (used by :func:`save_model`)."""
        return {
            "n_units": self.n_units,
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "tau": self.tau,
            "dt": self.dt,
            "noise_std": self.noise_std,
            "nonlinearity": self.nonlinearity,
            "train_x0": self.train_x0,
            "seed": self.seed,
        }

    def input_drive(self, inputs: Tensor, scale: float = 1.0) -> Tensor:
        """``scale * W_in u`` for all trials and steps in one matrix product.

        Parameters
        ----------
        inputs : Tensor
            ``(..., n_inputs)``, e.g. ``(trials, time, n_inputs)``.
        scale : float
            Factor folded into the product (the rollout uses ``alpha``).

        Returns
        -------
        Tensor
            ``(..., N)``.
        """
        if inputs.shape[-1] != self.n_inputs:
            raise LrfitError(
                f"inputs have {inputs.shape[-1]} channels but the network expects {self.n_inputs}; "
                "pass inputs of shape (trials, time, n_inputs)."
            )
        return inputs @ (self.w_in.T * scale)

    def forward(
        self,
        inputs: Tensor,
        x0: Tensor | None = None,
        noise_std: float | None = None,
        generator: torch.Generator | int | None = None,
        drive_offset: Tensor | None = None,
    ) -> Trajectory:
        """Simulate the network.

        Parameters
        ----------
        inputs : Tensor
            ``(trials, time, n_inputs)`` input time series.
        x0 : Tensor, optional
            Initial state ``(N,)`` or ``(trials, N)``; defaults to the ``x0`` parameter.
        noise_std : float, optional
            Overrides the network's ``noise_std`` (``0`` for a deterministic run).
        generator : torch.Generator or int, optional
            Source of the private noise (a seed is turned into a generator).
        drive_offset : Tensor, optional
            Extra drive ``(trials, time, N)`` added to ``W_in u`` (e.g. a perturbation).

        Returns
        -------
        Trajectory
            Currents, rates and readout outputs.
        """
        if inputs.dim() != 3:
            raise LrfitError(f"inputs must be 3-D (trials, time, channels), got shape {tuple(inputs.shape)}.")
        if inputs.shape[1] == 0:
            raise LrfitError("inputs have no time steps; pass at least one step.")
        inputs = inputs.to(self.device, torch.float32)
        drive = self.input_drive(inputs.transpose(0, 1), self.alpha)  # time-major (T, B, N)
        if drive_offset is not None:
            drive = drive + self.alpha * drive_offset.to(self.device, torch.float32).transpose(0, 1)
        sigma = self.noise_std if noise_std is None else float(noise_std)
        if sigma > 0:
            gen = _as_generator(generator, self.device)
            noise = torch.randn(drive.shape, generator=gen, device=self.device, dtype=drive.dtype)
            drive = drive + noise * (sigma * math.sqrt(self.alpha))
        start = self.x0 if x0 is None else x0.to(self.device, torch.float32)
        currents, rates = rollout(
            start, drive, self.kind_of_recurrence, self.alpha, self.nonlinearity, *self.recurrent_weights()
        )
        outputs = rates @ self.w_out / self.n_units if self.n_outputs else None
        return Trajectory(currents=currents, rates=rates, outputs=outputs)


class LowRankRNN(RNNBase):
    """Low-rank network with ``J = M N^T / N_units``; the N x N matrix is never formed.

    Parameters
    ----------
    n_units : int
        Number of units ``N``.
    rank : int
        Rank ``R`` of the connectivity, ``1 <= R <= N``.
    **kwargs
        Passed to :class:`RNNBase` (``n_inputs``, ``n_outputs``, ``tau``, ``dt``,
        ``noise_std``, ``nonlinearity``, ``train_x0``, ``seed``, ``device``).

    Attributes
    ----------
    m, n : nn.Parameter
        ``(N, R)`` connectivity vectors.

    Examples
    --------
    >>> import torch
    >>> net = LowRankRNN(100, rank=2, n_inputs=1, tau=0.1, dt=0.02, seed=0)
    >>> traj = net(torch.zeros(3, 20, 1), noise_std=0.0)  # 3 trials, 20 steps, no input
    >>> tuple(traj.rates.shape), net.m.shape == (100, 2)
    ((3, 20, 100), True)
    """

    kind = "lowrank"

    def __init__(self, n_units: int, rank: int = 1, **kwargs: Any) -> None:
        if int(rank) != rank or rank < 1:
            raise LrfitError(f"rank must be a positive integer, got {rank}.")
        if rank > n_units:
            raise LrfitError(f"rank {rank} is larger than the number of units {n_units}; use rank <= {n_units}.")
        self.rank = int(rank)
        super().__init__(n_units, **kwargs)

    def _init_recurrent(self, gen: torch.Generator) -> None:
        self.m = nn.Parameter(torch.randn(self.n_units, self.rank, generator=gen))
        self.n = nn.Parameter(torch.randn(self.n_units, self.rank, generator=gen))

    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {**super().config(), "rank": self.rank}

    kind_of_recurrence = "lowrank"

    def recurrent_weights(self) -> tuple:
        """``(m, n, N)`` for the rollout."""
        return (self.m, self.n, float(self.n_units))

    def connectivity(self) -> Tensor:
        """Dense ``J = M N^T / N`` (analysis of small networks only)."""
        return self.m @ self.n.T / self.n_units

    def overlaps(self) -> Tensor:
        """Overlap matrix ``sigma[k, l] = n_k . m_l / N``, shape ``(R, R)``."""
        return self.n.T @ self.m / self.n_units

    def input_overlaps(self) -> Tensor:
        """``n_k . w_in_c / N``, shape ``(R, C)``."""
        return self.n.T @ self.w_in / self.n_units

    def readout_overlaps(self) -> Tensor:
        """``w_out_o . m_l / N``, shape ``(O, R)``."""
        return self.w_out.T @ self.m / self.n_units

    @torch.no_grad()
    def svd_normalize_(self) -> LowRankRNN:
        """Remove the M/N degeneracy in place, preserving ``M N^T``.

        With ``U S V^T = svd(M N^T)`` (computed through thin QR factors, never
        forming ``N x N``), set ``M = U sqrt(S)`` and ``N = V sqrt(S)``: the columns
        of M (and of N) are mutually orthogonal, M and N have equal column norms,
        columns are ordered by decreasing singular value, and signs are fixed so that
        each column of ``M`` has a non-negative sum.  ``J = M N^T / N_units`` is
        unchanged.

        Returns
        -------
        LowRankRNN
            ``self``.
        """
        m, n = svd_normalized_factors(self.m, self.n)
        self.m.copy_(m)
        self.n.copy_(n)
        return self


class FullRankRNN(RNNBase):
    """Network with a dense ``N x N`` connectivity ``J``.

    Parameters
    ----------
    n_units : int
        Number of units ``N``.
    rho : float
        Standard deviation of the initial random connectivity is ``rho / sqrt(N)``.
    **kwargs
        Passed to :class:`RNNBase`.

    Examples
    --------
    >>> import torch
    >>> net = FullRankRNN(50, rho=0.5, n_inputs=2, seed=0)
    >>> tuple(net(torch.zeros(3, 10, 2), noise_std=0.0).rates.shape)
    (3, 10, 50)
    >>> net.truncated(2).rank  # the rank-2 network of J's truncated SVD
    2
    """

    kind = "fullrank"

    def __init__(self, n_units: int, rho: float = 1.0, **kwargs: Any) -> None:
        if rho < 0:
            raise LrfitError(f"rho must be >= 0, got {rho}.")
        self.rho = float(rho)
        super().__init__(n_units, **kwargs)

    def _init_recurrent(self, gen: torch.Generator) -> None:
        self.j = nn.Parameter(
            torch.randn(self.n_units, self.n_units, generator=gen) * (self.rho / math.sqrt(self.n_units))
        )

    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {**super().config(), "rho": self.rho}

    def recurrent_weights(self) -> tuple:
        """``(j,)`` for the rollout."""
        return (self.j,)

    def connectivity(self) -> Tensor:
        """The dense matrix ``J``."""
        return self.j

    def truncated(self, rank: int) -> LowRankRNN:
        """Low-rank network from the truncated SVD of ``J`` (same inputs, readout, x0).

        Parameters
        ----------
        rank : int
            Number of singular components kept.

        Returns
        -------
        LowRankRNN
            With ``M N^T / N`` the best rank-``rank`` approximation of ``J``.
        """
        cfg = {k: v for k, v in self.config().items() if k != "rho"}
        low = LowRankRNN(rank=rank, device=self.device, **cfg)
        with torch.no_grad():
            u, s, vh = torch.linalg.svd(self.j * self.n_units)
            root = s[:rank].sqrt()
            low.m.copy_(u[:, :rank] * root)
            low.n.copy_(vh[:rank].T * root)
            low.w_in.copy_(self.w_in)
            low.w_out.copy_(self.w_out)
            low.x0.copy_(self.x0)
        return low


@torch.no_grad()
def svd_normalized_factors(m: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    """Balanced, orthogonal factors with the same product ``m @ n.T``.

    ``U S V^T = svd(m n^T)`` through thin QR factors (``O(N R^2)``); returns
    ``(U sqrt(S), V sqrt(S))`` ordered by decreasing singular value, each column of
    the first factor with a non-negative sum.

    Parameters
    ----------
    m, n : Tensor
        ``(N, R)`` factors.

    Returns
    -------
    tuple of Tensor
        The normalised ``(m, n)``.
    """
    qm, rm = torch.linalg.qr(m.double())
    qn, rn = torch.linalg.qr(n.double())
    u, s, vh = torch.linalg.svd(rm @ rn.T)
    root = s.sqrt()
    m_new = (qm @ u) * root
    n_new = (qn @ vh.T) * root
    signs = torch.where(m_new.sum(0) < 0, -1.0, 1.0).to(m_new.dtype)
    return (m_new * signs).to(m.dtype), (n_new * signs).to(n.dtype)
