"""Geodesics under the decoder's pulled-back metric, and the three paths between two latents compared.

`geodesic` minimises the decoded curve energy with Adam: `geodesic_init` -> `geodesic_step` (one Adam
step) -> the entry point runs the loop in one `lax.scan` and returns the lowest-energy iterate.
With ``uncertainty=`` (`move.fit_uncertainty`) the metric is the variance-aware expected metric.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.move._datapath import data_path
from latentjax.move._paths import (
    Decode,
    Diagnostics,
    _check_endpoints,
    _diagnostics,
    _float_dtype,
    curve_energy,
    lerp,
    path,
)
from latentjax.move._uncertainty import Uncertainty, variance_aware


class Geodesic(NamedTuple):
    """A discretised shortest path through the latent space, from `geodesic`.

    Attributes:
        points: ``(num_points, d)`` latents, endpoints included.
        energies: ``(num_steps + 1,)`` curve energy of the decoded path before each optimisation
            step and after the last (``energies[0]`` is the start's: without ``init_noise``, the
            straight line's).

    Examples:
        >>> g = geodesic(jnp.tanh, jnp.zeros(2), jnp.ones(2), num_points=4, num_steps=3)
        >>> g.points.shape, g.energies.shape
        ((4, 2), (4,))
    """

    points: jax.Array
    energies: jax.Array


class GeodesicState(NamedTuple):
    """The state of the geodesic optimisation (`geodesic_init`, `geodesic_step`).

    Attributes:
        z0: ``(d,)`` first endpoint (fixed).
        z1: ``(d,)`` last endpoint (fixed).
        interior: ``(num_points - 2, d)`` current interior points.
        opt_state: Adam's state for ``interior``.
        best: ``(num_points - 2, d)`` the lowest-energy interior seen so far.
        best_energy: its curve energy.
        energy: the curve energy of the iterate the last step started from (after
            `geodesic_init`: of ``interior``).

    Examples:
        >>> s = geodesic_init(jnp.tanh, jnp.zeros(2), jnp.ones(2), num_points=5)
        >>> s.interior.shape, bool(s.energy == s.best_energy)
        ((3, 2), True)
    """

    z0: jax.Array
    z1: jax.Array
    interior: jax.Array
    opt_state: optax.OptState
    best: jax.Array
    best_energy: jax.Array
    energy: jax.Array


def _metric_decoder(decode: Decode, uncertainty: Uncertainty | None) -> Decode:
    """``decode`` itself, or with its standard deviation appended (the variance-aware metric)."""
    return decode if uncertainty is None else variance_aware(decode, uncertainty)


def _points(z0: jax.Array, interior: jax.Array, z1: jax.Array) -> jax.Array:
    return jnp.concatenate([z0[None], interior, z1[None]])


def geodesic_init(
    decode: Decode,
    z0: ArrayLike,
    z1: ArrayLike,
    *,
    num_points: int = 16,
    key: jax.Array | None = None,
    init_noise: float = 0.0,
    uncertainty: Uncertainty | None = None,
    start: str | None = None,
) -> GeodesicState:
    """The straight line (or a path through the data) between two latents as the start of `geodesic_step`.

    Args:
        decode: single-latent decoder ``(d,) -> output``; differentiable.
        z0: ``(d,)`` first endpoint.
        z1: ``(d,)`` last endpoint.
        num_points: points on the path, endpoints included (>= 3).
        key: optional ``jax.random.key``; needed only when ``init_noise > 0``.
        init_noise: standard deviation of Gaussian noise added to the interior points (to leave a
            symmetric start).
        uncertainty: optional `move.Uncertainty` of ``decode``: the energy is then that of
            `move.variance_aware` (the expected metric ``J_mu^T J_mu + J_sigma^T J_sigma``).
        start: ``"line"`` (the straight line) or ``"data"`` (`move.data_path`: the shortest chain of
            the uncertainty's centres, which needs ``uncertainty``); default ``"data"`` with an
            ``uncertainty``, else ``"line"``.

    Returns:
        `GeodesicState` with ``num_points - 2`` interior points.

    Raises:
        InputError: endpoints of different shapes, ``num_points < 3``, noise without a key, an
            unknown ``start``, or (eager calls) NaN/inf endpoints, or a ``decode`` that gives NaN/inf
            on the start path.

    Examples:
        >>> s = geodesic_init(lambda z: z, jnp.zeros(1), jnp.ones(1), num_points=3)
        >>> s.interior, float(s.energy)
        (Array([[0.5]], dtype=float32), 1.0)
    """
    where = "move.geodesic"
    _check_endpoints(z0, z1, where)
    if _checks.index(num_points, "num_points", where=where) < 3:
        raise InputError(
            f"{where}: num_points must be >= 3 (two endpoints and an interior), got {num_points}"
        )
    if init_noise > 0 and key is None:
        raise InputError(f"{where}: init_noise > 0 needs a key")
    start = start or ("line" if uncertainty is None else "data")
    if start not in ("line", "data") or (start == "data" and uncertainty is None):
        raise InputError(f"{where}: start must be 'line', or 'data' with an uncertainty, got {start!r}")
    dt = _float_dtype(z0, z1)
    z0, z1 = jnp.asarray(z0, dt), jnp.asarray(z1, dt)
    if start == "data":
        interior = data_path(uncertainty, z0, z1, num_points=num_points)[1:-1]
    else:
        ts = jnp.linspace(0.0, 1.0, num_points, dtype=dt)[1:-1]
        interior = jax.vmap(lerp, in_axes=(None, None, 0))(z0, z1, ts)
    decode = _metric_decoder(decode, uncertainty)
    if init_noise > 0:
        interior = interior + init_noise * jax.random.normal(key, interior.shape, dt)
    energy = curve_energy(decode, _points(z0, interior, z1))
    if not _checks.is_traced(energy) and not np.isfinite(float(energy)):
        raise InputError(
            f"{where}: decode returned NaN/inf on the start path from z0 to z1 (curve energy "
            f"{float(energy)}); a geodesic needs a decoder that is finite there"
        )
    # Adam's state does not depend on the learning rate, which `geodesic_step` takes.
    opt_state = optax.adam(1.0).init(interior)
    return GeodesicState(z0, z1, interior, opt_state, interior, energy, energy)


def geodesic_step(
    decode: Decode,
    state: GeodesicState,
    *,
    learning_rate: float = 1e-2,
    uncertainty: Uncertainty | None = None,
) -> GeodesicState:
    """One Adam step on the curve energy of the interior points, keeping the best iterate.

    Args:
        decode: the decoder given to `geodesic_init`.
        state: the current `GeodesicState`.
        learning_rate: Adam step size, in latent units.
        uncertainty: the ``uncertainty`` given to `geodesic_init`.

    Returns:
        The next `GeodesicState`; its ``energy`` is that of ``state.interior``.

    Examples:
        >>> s = geodesic_init(jnp.tanh, jnp.zeros(2), jnp.ones(2), num_points=4)
        >>> s = geodesic_step(jnp.tanh, s, learning_rate=0.1)
        >>> bool(s.best_energy <= s.energy)
        True
    """
    decode = _metric_decoder(decode, uncertainty)

    def energy(inner):
        return curve_energy(decode, _points(state.z0, inner, state.z1))

    e, g = jax.value_and_grad(energy)(state.interior)
    better = e < state.best_energy
    best = jnp.where(better, state.interior, state.best)
    best_energy = jnp.where(better, e, state.best_energy)
    updates, opt_state = optax.adam(learning_rate).update(g, state.opt_state, state.interior)
    interior = optax.apply_updates(state.interior, updates)
    return GeodesicState(state.z0, state.z1, interior, opt_state, best, best_energy, e)


def geodesic(
    decode: Decode,
    z0: ArrayLike,
    z1: ArrayLike,
    *,
    num_points: int = 16,
    num_steps: int = 300,
    learning_rate: float = 1e-2,
    key: jax.Array | None = None,
    init_noise: float = 0.0,
    unroll: int | bool = 1,
    uncertainty: Uncertainty | None = None,
    start: str | None = None,
) -> Geodesic:
    """A shortest path under the metric the decoder pulls back, by minimising the curve energy.

    The ``num_points - 2`` interior points start on the straight line (plus ``init_noise`` times
    Gaussian noise drawn from ``key``, to leave a symmetric start) and follow Adam on
    `curve_energy` with the endpoints fixed: `geodesic_init`, then ``num_steps`` of
    `geodesic_step` in one `lax.scan` on device. Minimising the energy (not the length) also spaces
    the points evenly in decoded space. The returned points are the lowest-energy iterate, so the
    result never has more energy than the start (an iterate whose energy is NaN is never chosen).

    Args:
        decode: single-latent decoder ``(d,) -> output``; differentiable.
        z0: ``(d,)`` first endpoint.
        z1: ``(d,)`` last endpoint.
        num_points: points on the path, endpoints included (>= 3).
        num_steps: optimisation steps.
        learning_rate: Adam step size, in latent units.
        key: optional ``jax.random.key``; needed only when ``init_noise > 0``.
        init_noise: standard deviation of the initial perturbation of interior points.
        unroll: passed to `lax.scan`; ``True`` for convolutional decoders on CPU, where
            convolutions inside a rolled scan run about 30x slower (jax-ml/jax#12868).
        uncertainty: optional `move.Uncertainty` of ``decode`` (`move.fit_uncertainty`): minimise
            the energy under the variance-aware expected metric ``J_mu^T J_mu + J_sigma^T
            J_sigma`` instead (that of `move.variance_aware`; ``energies`` are then under it too),
            whose geodesics avoid regions without training data, where the plain metric's pass
            through blurred images.
        start: the start path, ``"line"`` or ``"data"`` (see `geodesic_init`); with an
            ``uncertainty`` the default is ``"data"``: from the straight line through a hole the
            optimisation stalls in the hole, where the variance is flat at its maximum.

    Returns:
        `Geodesic` with ``points (num_points, d)`` and the energy trace ``(num_steps + 1,)``.

    Raises:
        InputError: see `geodesic_init`.

    Examples:
        >>> g = geodesic(jnp.tanh, jnp.zeros(2), jnp.ones(2), num_points=5, num_steps=10)
        >>> g.points.shape, g.energies.shape
        ((5, 2), (11,))

    References:
        Arvanitidis, Hansen & Hauberg 2018, "Latent Space Oddity: on the Curvature of Deep
        Generative Models", Sec. 4 (discrete geodesics by energy minimisation); Shao, Kumar &
        Fletcher 2018, "The Riemannian Geometry of Deep Generative Models", Alg. 1; the
        variance-aware metric: Arvanitidis et al. 2018, Sec. 3 and Eq. 8.
    """
    state = geodesic_init(
        decode,
        z0,
        z1,
        num_points=num_points,
        key=key,
        init_noise=init_noise,
        uncertainty=uncertainty,
        start=start,
    )
    decode = _metric_decoder(decode, uncertainty)

    def body(state, _):
        state = geodesic_step(decode, state, learning_rate=learning_rate)
        return state, state.energy

    state, trace = jax.lax.scan(body, state, length=num_steps, unroll=unroll)
    e_last = curve_energy(decode, _points(state.z0, state.interior, state.z1))
    best = jnp.where(e_last < state.best_energy, state.interior, state.best)
    return Geodesic(points=_points(state.z0, best, state.z1), energies=jnp.concatenate([trace, e_last[None]]))


class DecodedPath(NamedTuple):
    """One path of `compare_paths`: its latents, their decoded outputs and its `Diagnostics`.

    Attributes:
        points: ``(num_points, d)`` latents.
        decoded: ``(num_points, ...)`` the decoder's outputs (e.g. ``(num_points, h, w, c)``).
        diagnostics: `Diagnostics` of the path.

    Examples:
        >>> p = compare_paths(jnp.tanh, jnp.zeros(2), jnp.ones(2), num_points=3, num_steps=2).lerp
        >>> p.points.shape, p.decoded.shape
        ((3, 2), (3, 2))
    """

    points: jax.Array
    decoded: jax.Array
    diagnostics: Diagnostics


class PathComparison(NamedTuple):
    """The straight, spherical and geodesic paths between two latents, from `compare_paths`.

    ``comparison._asdict()`` is the ordered mapping ``{"lerp": ..., "slerp": ..., "geodesic": ...}``.

    Attributes:
        lerp: the straight line (`lerp`).
        slerp: the great-circle path (`slerp`).
        geodesic: the decoded-energy minimiser (`geodesic`).

    Examples:
        >>> c = compare_paths(jnp.tanh, jnp.zeros(2), jnp.ones(2), num_points=3, num_steps=2)
        >>> list(c._asdict())
        ['lerp', 'slerp', 'geodesic']
    """

    lerp: DecodedPath
    slerp: DecodedPath
    geodesic: DecodedPath


def compare_paths(
    decode: Decode,
    z0: ArrayLike,
    z1: ArrayLike,
    *,
    num_points: int = 16,
    num_steps: int = 300,
    learning_rate: float = 1e-2,
    unroll: int | bool = 1,
) -> PathComparison:
    """The lerp, slerp and geodesic paths between two latents, decoded, with their diagnostics.

    What a figure contrasting the three paths needs, in one call to jit (encoding the endpoints is
    the caller's: this function sees latents only).

    Args:
        decode: single-latent decoder ``(d,) -> output``; differentiable.
        z0: ``(d,)`` first endpoint.
        z1: ``(d,)`` last endpoint.
        num_points: points on each path, endpoints included (>= 3).
        num_steps: optimisation steps of the geodesic.
        learning_rate: Adam step size of the geodesic, in latent units.
        unroll: passed to the geodesic's `lax.scan` (see `geodesic`).

    Returns:
        `PathComparison` of three `DecodedPath`.

    Raises:
        InputError: see `geodesic_init`.

    Examples:
        >>> c = compare_paths(lambda z: 2.0 * z, jnp.zeros(1), jnp.ones(1), num_points=3, num_steps=5)
        >>> c.lerp.decoded[:, 0], float(c.geodesic.diagnostics.decoded_length)
        (Array([0., 1., 2.], dtype=float32), 2.0)
    """
    _check_endpoints(z0, z1, "move.compare_paths")
    dt = _float_dtype(z0, z1)
    z0, z1 = jnp.asarray(z0, dt), jnp.asarray(z1, dt)
    ends = jnp.stack([z0, z1])
    points = (
        path(ends, num_points=num_points),
        path(ends, num_points=num_points, method="slerp"),
        geodesic(
            decode,
            z0,
            z1,
            num_points=num_points,
            num_steps=num_steps,
            learning_rate=learning_rate,
            unroll=unroll,
        ).points,
    )
    decoded = [jax.vmap(decode)(zs) for zs in points]
    return PathComparison(*(DecodedPath(p, x, _diagnostics(p, x)) for p, x in zip(points, decoded)))
