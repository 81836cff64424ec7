"""Fixed points, slow points and flow fields of the latent dynamics of a low-rank network.

Under a constant input ``u`` the currents of a rank-``R`` network
``x_dot = -x + m n^T phi(x) / N + W_in u`` relax onto ``x = m kappa + W_in u``
(the orthogonal remainder decays as ``exp(-t)``), and on that affine subspace the
dynamics are exactly

    kappa_dot = F(kappa) = -kappa + n^T phi(m kappa + W_in u) / N,

with ``kappa`` the coordinates on the raw (not necessarily orthogonal) columns of
``m``.  Fixed points of the network are ``x* = m kappa* + W_in u`` with
``F(kappa*) = 0``; the network's Jacobian at ``x*`` has the ``R`` eigenvalues of

    DF(kappa) = -I + n^T diag(phi'(x)) m / N

plus ``-1`` (multiplicity ``N - R``), so the stability read on ``DF`` is that of the
full network.  Time is in units of ``tau``; the Euler map of the simulation,
``x <- x + alpha (...)``, has eigenvalues ``1 + alpha lambda`` and the same labels for
``alpha`` small enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq

from ..errors import LrfitError
from ._common import NetParams, as_input_vector, jsonable, lowrank_params, phi_fns

__all__ = [
    "FixedPoint",
    "FixedPointResult",
    "FlowField",
    "RadialScan",
    "find_fixed_points",
    "flow_field",
    "latent_flow",
    "latent_jacobian",
    "radial_scan",
    "stability_label",
]


def _flow(p: NetParams, kappa: np.ndarray, drive: np.ndarray) -> np.ndarray:
    phi = phi_fns(p.nonlinearity)[0]
    x = kappa @ p.m.T + drive
    return -kappa + phi(x) @ p.n / p.n_units


def _jac(p: NetParams, kappa: np.ndarray, drive: np.ndarray) -> np.ndarray:
    dphi = phi_fns(p.nonlinearity)[1]
    x = kappa @ p.m.T + drive
    d = dphi(x)  # (B, N)
    jac = np.einsum("ik,bi,il->bkl", p.n, d, p.m, optimize=True) / p.n_units
    return jac - np.eye(p.rank)


def latent_flow(model: Any, kappa: Any, u: Any = None) -> np.ndarray:
    """Velocity of the latent dynamics, ``F(kappa) = -kappa + n^T phi(m kappa + W_in u) / N``.

    Parameters
    ----------
    model : LowRankRNN
        The network.
    kappa : array-like, (..., R)
        Coordinates on the columns of ``m``.
    u : array-like, (C,), optional
        Constant input (zeros if omitted).

    Returns
    -------
    ndarray, (..., R)
        ``F(kappa)`` in units of ``1 / tau``.
    """
    p = lowrank_params(model)
    kappa = np.asarray(kappa, float)
    if kappa.shape[-1] != p.rank:
        raise LrfitError(
            f"kappa has {kappa.shape[-1]} coordinates but the network has rank {p.rank}; pass (..., {p.rank})."
        )
    drive = p.w_in @ as_input_vector(u, p.n_inputs)
    shape = kappa.shape
    return _flow(p, kappa.reshape(-1, p.rank), drive).reshape(shape)


def latent_jacobian(model: Any, kappa: Any, u: Any = None) -> np.ndarray:
    """Jacobian ``DF(kappa) = -I + n^T diag(phi'(m kappa + W_in u)) m / N``, shape ``(R, R)``.

    Parameters
    ----------
    model : LowRankRNN
        The network.
    kappa : array-like, (R,)
        Point in latent space (coordinates on the ``m`` columns).
    u : array-like, (C,), optional
        Constant input.

    Returns
    -------
    ndarray, (R, R)
    """
    p = lowrank_params(model)
    drive = p.w_in @ as_input_vector(u, p.n_inputs)
    return _jac(p, np.asarray(kappa, float).reshape(1, p.rank), drive)[0]


def stability_label(eigenvalues: np.ndarray, marginal_tol: float = 1e-6) -> str:
    """Stability of a fixed point of a continuous-time system from its Jacobian eigenvalues.

    ``"stable"`` if all ``Re(lambda) < -tol``, ``"source"`` if all ``Re(lambda) > tol``,
    ``"saddle"`` if there are eigenvalues on both sides, and ``"marginal"`` if some
    ``|Re(lambda)| <= tol`` and no pair of opposite signs decides it.
    """
    re = np.real(np.asarray(eigenvalues))
    neg, pos = np.any(re < -marginal_tol), np.any(re > marginal_tol)
    if neg and pos:
        return "saddle"
    if np.all(re < -marginal_tol):
        return "stable"
    if np.all(re > marginal_tol):
        return "source"
    return "marginal"


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point or slow point of the latent dynamics.

    Attributes
    ----------
    kappa : ndarray, (R,)
        Coordinates on the columns of ``m``.
    eigenvalues : ndarray, (R,) complex
        Eigenvalues of ``DF(kappa)``, sorted by decreasing real part.
    stability : str
        ``"stable"``, ``"saddle"``, ``"source"`` or ``"marginal"`` (:func:`stability_label`).
    speed : float
        ``|F(kappa)|`` (0 up to the tolerance for a fixed point).
    kind : str
        ``"fixed"`` or ``"slow"`` (a local minimum of ``q = |F|^2 / 2`` that is not a zero).
    """

    kappa: np.ndarray
    eigenvalues: np.ndarray
    stability: str
    speed: float
    kind: str = "fixed"

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return jsonable(
            {
                "kappa": self.kappa,
                "eigenvalues_real": np.real(self.eigenvalues),
                "eigenvalues_imag": np.imag(self.eigenvalues),
                "stability": self.stability,
                "speed": self.speed,
                "kind": self.kind,
            }
        )


@dataclass(frozen=True)
class FixedPointResult:
    """Fixed and slow points of the latent dynamics under one constant input.

    Attributes
    ----------
    fixed_points : tuple of FixedPoint
        Zeros of ``F`` (de-duplicated), sorted by distance from the origin.
    slow_points : tuple of FixedPoint
        Local minima of ``q = |F|^2 / 2`` with ``|F|`` above the zero tolerance and
        below ``slow_speed`` (de-duplicated).
    input : ndarray, (C,)
        The constant input ``u``.
    n_starts : int
        Number of starting points used.
    """

    fixed_points: tuple[FixedPoint, ...]
    slow_points: tuple[FixedPoint, ...]
    input: np.ndarray
    n_starts: int

    def counts(self) -> dict[str, int]:
        """Number of fixed points per stability label."""
        out = {"stable": 0, "saddle": 0, "source": 0, "marginal": 0}
        for fp in self.fixed_points:
            out[fp.stability] += 1
        return out

    def kappas(self, stability: str | None = None) -> np.ndarray:
        """Fixed-point coordinates ``(P, R)``, optionally only those with a given label."""
        pts = [fp.kappa for fp in self.fixed_points if stability is None or fp.stability == stability]
        return np.array(pts).reshape(len(pts), -1)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary (``input``, ``counts``, ``fixed_points``, ``slow_points``)."""
        return jsonable(
            {
                "input": self.input,
                "n_starts": self.n_starts,
                "stability_counts": self.counts(),
                "fixed_points": [fp.to_json_dict() for fp in self.fixed_points],
                "slow_points": [fp.to_json_dict() for fp in self.slow_points],
            }
        )


def _default_radius(p: NetParams) -> np.ndarray:
    """Per-axis box half-width that contains every fixed point for a bounded phi.

    For ``|phi| <= 1``, Cauchy–Schwarz gives ``|kappa_k| = |n_k . phi| / N <= ||n_k|| / sqrt(N)``.
    """
    bound = np.linalg.norm(p.n, axis=0) / np.sqrt(p.n_units)
    if p.nonlinearity in ("relu", "softplus", "identity"):
        bound = 3.0 * bound
    return np.maximum(bound, 1e-3) * 1.05


def _dedupe(points: np.ndarray, tol: float) -> list[int]:
    keep: list[int] = []
    for i, pt in enumerate(points):
        if all(np.linalg.norm(pt - points[j]) > tol for j in keep):
            keep.append(i)
    return keep


def _levenberg_marquardt(p: NetParams, k: np.ndarray, drive: np.ndarray, max_iter: int, xtol: float) -> np.ndarray:
    """Batched Levenberg–Marquardt minimisation of ``q = |F|^2 / 2`` from all starts at once."""
    lam = np.full(k.shape[0], 1e-3)
    f = _flow(p, k, drive)
    q = 0.5 * (f**2).sum(1)
    eye = np.eye(p.rank)
    for _ in range(max_iter):
        jac = _jac(p, k, drive)
        jt = np.swapaxes(jac, 1, 2)
        a = jt @ jac + lam[:, None, None] * eye
        g = (jt @ f[..., None])[..., 0]
        step = -np.linalg.solve(a, g[..., None])[..., 0]
        k_new = k + step
        f_new = _flow(p, k_new, drive)
        q_new = 0.5 * (f_new**2).sum(1)
        ok = q_new < q
        k = np.where(ok[:, None], k_new, k)
        f = np.where(ok[:, None], f_new, f)
        q = np.where(ok, q_new, q)
        lam = np.clip(np.where(ok, lam * 0.3, lam * 10.0), 1e-12, 1e12)
        if np.all((np.abs(step).max(1) < xtol) | (q < 1e-28)):
            break
    return k


def find_fixed_points(
    model: Any,
    u: Any = None,
    n_starts: int = 256,
    radius: float | np.ndarray | None = None,
    seed: int = 0,
    zero_tol: float = 1e-7,
    slow_speed: float | None = None,
    dedup_tol: float | None = None,
    marginal_tol: float = 1e-6,
    max_iter: int = 200,
) -> FixedPointResult:
    """Fixed points and slow points of ``kappa_dot = -kappa + n^T phi(m kappa + W_in u) / N``.

    Multi-start minimisation of ``q(kappa) = |F(kappa)|^2 / 2`` by a batched
    Levenberg–Marquardt iteration (analytic Jacobian ``DF``), from the origin, a
    regular grid (rank <= 2) and uniform random points in the box
    ``|kappa_k| <= radius_k``.  End points with ``|F| < zero_tol * scale`` are fixed
    points; the others with ``|F| < slow_speed`` and a vanishing gradient
    ``DF^T F`` are slow points (local minima of ``q``).  Points closer than
    ``dedup_tol`` are merged.  Each point gets the eigenvalues of ``DF`` and a
    stability label (:func:`stability_label`).

    Parameters
    ----------
    model : LowRankRNN
        The network.
    u : array-like, (C,), optional
        Constant input (zeros if omitted).
    n_starts : int
        Number of starting points.
    radius : float or ndarray, optional
        Box half-width per latent axis; by default ``1.05 ||n_k|| / sqrt(N)``, which
        bounds every fixed point when ``|phi| <= 1`` (three times that otherwise).
    seed : int
        Seed of the random starts.
    zero_tol : float
        Relative tolerance on ``|F|`` (times the box scale) for a zero.
    slow_speed : float, optional
        Largest ``|F|`` of a slow point (default ``0.05 * scale``).
    dedup_tol : float, optional
        Merge distance (default ``1e-3 * scale``).
    marginal_tol : float
        Tolerance on ``|Re(lambda)|`` for the ``"marginal"`` label.
    max_iter : int
        Levenberg–Marquardt iterations.

    Returns
    -------
    FixedPointResult

    Examples
    --------
    A rank-1 network with overlap ``n.m / N`` near 2 is bistable: two stable states
    and an unstable origin between them.

    >>> import torch
    >>> from lrfit import LowRankRNN
    >>> net = LowRankRNN(200, rank=1, seed=0)
    >>> with torch.no_grad():
    ...     _ = net.n.copy_(2.0 * net.m)
    >>> find_fixed_points(net, n_starts=32).counts()
    {'stable': 2, 'saddle': 0, 'source': 1, 'marginal': 0}
    """
    p = lowrank_params(model)
    uvec = as_input_vector(u, p.n_inputs)
    drive = p.w_in @ uvec
    r = p.rank
    box = _default_radius(p) if radius is None else np.broadcast_to(np.asarray(radius, float), (r,)).copy()
    scale = float(max(np.max(box), 1e-6))
    rng = np.random.default_rng(seed)
    starts = [np.zeros((1, r))]
    if r <= 2:
        g = max(2, int(round(np.sqrt(n_starts / 2) if r == 2 else n_starts / 2)))
        axes = [np.linspace(-b, b, g) for b in box]
        starts.append(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, r))
    n_rand = max(n_starts - sum(len(s) for s in starts), 0)
    starts.append(rng.uniform(-1.0, 1.0, size=(n_rand, r)) * box)
    k0 = np.concatenate(starts)[: max(n_starts, 1)]
    k = _levenberg_marquardt(p, k0, drive, max_iter, xtol=1e-12 * scale)
    f = _flow(p, k, drive)
    speed = np.linalg.norm(f, axis=1)
    jac = _jac(p, k, drive)
    grad = np.linalg.norm((np.swapaxes(jac, 1, 2) @ f[..., None])[..., 0], axis=1)
    zero = speed < zero_tol * max(scale, 1.0)
    slow_speed = 0.05 * scale if slow_speed is None else float(slow_speed)
    dedup_tol = 1e-3 * scale if dedup_tol is None else float(dedup_tol)
    jnorm = np.linalg.norm(jac, axis=(1, 2))
    slow = (~zero) & (speed < slow_speed) & (grad < 1e-4 * speed * (1.0 + jnorm))

    def build(mask: np.ndarray, kind: str) -> tuple[FixedPoint, ...]:
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(np.linalg.norm(k[idx], axis=1), kind="stable")]
        pts = []
        for j in [idx[i] for i in _dedupe(k[idx], dedup_tol)]:
            ev = np.linalg.eigvals(jac[j])
            ev = ev[np.argsort(-ev.real, kind="stable")]
            pts.append(FixedPoint(k[j].copy(), ev, stability_label(ev, marginal_tol), float(speed[j]), kind))
        return tuple(pts)

    return FixedPointResult(build(zero, "fixed"), build(slow, "slow"), uvec, int(k0.shape[0]))


@dataclass(frozen=True)
class RadialScan:
    """Radial structure of the latent flow in a plane (rings of slow points, limit cycles).

    Attributes
    ----------
    angles : ndarray, (A,)
        Directions ``theta`` in the plane.
    radius : ndarray, (A,)
        Outermost radius ``r(theta) > 0`` where the radial velocity ``d . F(r d)``
        changes sign from positive to negative (NaN if none in ``(0, r_max]``).
    speed : ndarray, (A,)
        ``|F|`` at ``r(theta) d(theta)`` (full R-dim velocity).
    tangential : ndarray, (A,)
        Tangential velocity ``d_perp . F`` there (positive: counter-clockwise).
    plane : ndarray, (R, 2)
        Orthonormal basis of the plane in kappa space.
    """

    angles: np.ndarray
    radius: np.ndarray
    speed: np.ndarray
    tangential: np.ndarray
    plane: np.ndarray


def _plane(r: int, plane: Any) -> np.ndarray:
    if plane is None:
        if r < 2:
            raise LrfitError("A plane needs rank >= 2; for a rank-1 network use flow_field (flow along kappa).")
        return np.eye(r)[:, :2]
    plane = np.asarray(plane, float)
    if plane.shape != (r, 2):
        raise LrfitError(
            f"plane must be an (R, 2) = ({r}, 2) matrix of two directions in latent space, got {plane.shape}."
        )
    q, _ = np.linalg.qr(plane)
    return q * np.where(np.sum(q * plane, 0) < 0, -1.0, 1.0)


def radial_scan(
    model: Any, u: Any = None, plane: Any = None, n_angles: int = 72, r_max: float | None = None, n_radii: int = 200
) -> RadialScan:
    """Locate the radius where the radial flow vanishes along each direction of a plane.

    For ``d(theta) = P [cos theta, sin theta]`` solves ``d . F(r d) = 0`` (the outermost
    sign change from ``+`` to ``-`` on a grid of ``n_radii`` radii, refined by Brent's
    method), and reports the velocity ``F`` there.  A ring of slow points (e.g. a
    rank-2 network with overlaps ``sigma = s I``) shows as constant ``r(theta)`` with
    small ``speed``; a limit cycle as constant-sign, non-vanishing ``tangential``.

    Parameters
    ----------
    model : LowRankRNN
        The network (rank >= 2).
    u : array-like, optional
        Constant input.
    plane : array-like, (R, 2), optional
        Directions spanning the plane (orthonormalised); default the first two
        latent axes.
    n_angles, n_radii : int
        Resolution.
    r_max : float, optional
        Largest radius searched (default: the fixed-point box of :func:`find_fixed_points`).

    Returns
    -------
    RadialScan
    """
    p = lowrank_params(model)
    drive = p.w_in @ as_input_vector(u, p.n_inputs)
    pl = _plane(p.rank, plane)
    r_max = float(np.max(_default_radius(p)) * np.sqrt(2)) if r_max is None else float(r_max)
    angles = np.linspace(0, 2 * np.pi, n_angles, endpoint=False)
    radii = np.linspace(0, r_max, n_radii + 1)[1:]
    out_r = np.full(n_angles, np.nan)
    out_s = np.full(n_angles, np.nan)
    out_t = np.full(n_angles, np.nan)
    dirs = np.stack([np.cos(angles), np.sin(angles)], 1) @ pl.T  # (A, R)
    perp = np.stack([-np.sin(angles), np.cos(angles)], 1) @ pl.T
    pts = radii[None, :, None] * dirs[:, None, :]  # (A, n_radii, R)
    fr_all = np.einsum("arx,ax->ar", _flow(p, pts.reshape(-1, p.rank), drive).reshape(pts.shape), dirs)
    for a in range(n_angles):
        d, dp, fr = dirs[a], perp[a], fr_all[a]
        idx = np.flatnonzero((fr[:-1] > 0) & (fr[1:] <= 0))
        if idx.size == 0:
            continue
        i = idx[-1]
        def g(rr: float, d: np.ndarray = d) -> float:
            return float(_flow(p, (rr * d)[None], drive)[0] @ d)

        rr = brentq(g, radii[i], radii[i + 1], xtol=1e-12) if fr[i + 1] < 0 else radii[i + 1]
        fv = _flow(p, (rr * d)[None], drive)[0]
        out_r[a], out_s[a], out_t[a] = rr, np.linalg.norm(fv), fv @ dp
    return RadialScan(angles, out_r, out_s, out_t, pl)


@dataclass(frozen=True)
class FlowField:
    """Latent flow on a grid, for phase portraits.

    Attributes
    ----------
    axes : tuple of ndarray
        One grid (rank 1: ``kappa``) or two grids (``c1``, ``c2``: coordinates in ``plane``).
    flow : ndarray
        Rank 1: ``F(kappa)`` ``(n,)``; otherwise the flow projected on the plane,
        ``(2, n2, n1)`` (``P^T F(P c)``, exact for rank 2).
    speed : ndarray
        ``|F|`` of the full velocity on the grid (``(n,)`` or ``(n2, n1)``).
    potential : ndarray or None
        Rank 1 only: ``U(kappa) = -int_0^kappa F(s) ds`` (trapezoid rule), so that
        ``kappa_dot = -dU/dkappa``.
    plane : ndarray or None
        ``(R, 2)`` basis of the plane (rank >= 2).
    input : ndarray
        The constant input.
    """

    axes: tuple[np.ndarray, ...]
    flow: np.ndarray
    speed: np.ndarray
    potential: np.ndarray | None
    plane: np.ndarray | None
    input: np.ndarray = field(default_factory=lambda: np.zeros(0))


def flow_field(
    model: Any, u: Any = None, lims: Any = None, n_grid: int = 41, plane: Any = None
) -> FlowField:
    """Latent velocity ``F`` on a grid (rank 1: a line; rank >= 2: a plane).

    Rank 1: ``F(kappa)`` and the potential ``U(kappa) = -int_0^kappa F``.  Rank 2:
    the exact flow on ``(kappa_1, kappa_2)``.  Higher rank: ``P^T F(P c)``, the
    velocity projected on a plane ``P`` of latent space (default the first two axes,
    the top-2 singular directions of an SVD-normalised network); off-plane
    components are ignored, so nullclines there are approximate.

    Parameters
    ----------
    model : LowRankRNN
        The network.
    u : array-like, optional
        Constant input.
    lims : float or (lo, hi) or ((lo1, hi1), (lo2, hi2)), optional
        Grid extent (default: the fixed-point box of :func:`find_fixed_points`).
    n_grid : int
        Points per axis.
    plane : array-like, (R, 2), optional
        Plane for rank > 2.

    Returns
    -------
    FlowField
    """
    p = lowrank_params(model)
    uvec = as_input_vector(u, p.n_inputs)
    drive = p.w_in @ uvec
    box = _default_radius(p)

    def lim(i: int) -> tuple[float, float]:
        if lims is None:
            b = float(box[i] if p.rank <= 2 else box.max())
            return -b, b
        arr = np.asarray(lims, float)
        if arr.ndim == 0:
            return -float(arr), float(arr)
        if arr.ndim == 1:
            return float(arr[0]), float(arr[1])
        return float(arr[i, 0]), float(arr[i, 1])

    if p.rank == 1:
        kap = np.linspace(*lim(0), n_grid)
        f = _flow(p, kap[:, None], drive)[:, 0]
        zero = int(np.argmin(np.abs(kap)))
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(kap))])
        pot = -(cum - cum[zero])
        return FlowField((kap,), f, np.abs(f), pot, None, uvec)
    pl = _plane(p.rank, plane)
    c1 = np.linspace(*lim(0), n_grid)
    c2 = np.linspace(*lim(1), n_grid)
    g1, g2 = np.meshgrid(c1, c2)
    pts = np.stack([g1.ravel(), g2.ravel()], 1) @ pl.T
    f = _flow(p, pts, drive)
    proj = (f @ pl).T.reshape(2, n_grid, n_grid)
    speed = np.linalg.norm(f, axis=1).reshape(n_grid, n_grid)
    return FlowField((c1, c2), proj, speed, None, pl, uvec)
