"""Debiased Sinkhorn barycenters on a pixel grid: scalings (kernel mode) or potentials (log mode).

Written on ``ott.geometry.grid.Grid``'s separable kernels rather than calling ott's
``FixedBarycenter``: in ott-jax 0.6.0, ``_discrete_barycenter`` with ``lse_mode=True, debiased=True``
updates the debiasing potential with ``update_potential(zeros, d, ..., axis=0)``; with ``axis=0`` the
kernel is applied to the *first* argument, i.e. to zeros instead of ``d``, so the debiasing never sees
``d`` and the barycenters are wrong (a corner with weight 1 does not reproduce its input). Swapping
the two arguments fixes it (to report upstream). Its kernel mode is right, but it offers no
initialisation matching POT; the two modes here share one formulation and one loop, so that both
are checked against each other and against POT.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from ott.geometry import grid


def _pixel_grid(shape: tuple[int, int], epsilon: float, dtype) -> grid.Grid:
    """An ott ``Grid`` with pixel-proportional coordinates: axis ``i`` at ``arange(n_i) / (max(h, w) - 1)``.

    A pixel step then costs the same along rows and columns (ott's default, ``linspace(0, 1, n)`` per
    axis, makes a 20x60 image's row step about 3x longer than its column step); the longer side spans
    ``[0, 1]``, so square images keep ott's and POT's convention.
    """
    scale = max(max(shape) - 1, 1)
    return grid.Grid(x=[jnp.arange(n, dtype=dtype) / scale for n in shape], epsilon=epsilon)


class _State(NamedTuple):
    """One barycenter iteration's variables; the log mode stores ``epsilon * log`` of each."""

    v: jax.Array  # (k, n) right scalings, one plan per input image
    d: jax.Array  # (n,) debiasing scaling (ones when not debiased)
    b: jax.Array  # (n,) barycenter estimate
    u: jax.Array  # (k, n) left scalings
    iteration: jax.Array
    error: jax.Array


def _iterate(
    one: Callable,
    marginals: Callable[[jax.Array, jax.Array], jax.Array],
    init: tuple,
    a: jax.Array,
    w: jax.Array,
    *,
    threshold: jax.Array,
    max_steps: int,
    check_every: int,
) -> _State:
    """Runs ``one(i, (v, d, b, u))`` in blocks of ``check_every`` until converged or ``max_steps``.

    Converged: the weighted L1 violation of the input marginals ``marginals(v, u)`` ``(k, n)`` is
    below ``threshold``.
    """

    def body(s):
        v, d, b, u = jax.lax.fori_loop(0, check_every, one, (s.v, s.d, s.b, s.u))
        err = jnp.sum(w * jnp.sum(jnp.abs(marginals(v, u) - a), axis=1))
        return _State(v, d, b, u, s.iteration + check_every, jnp.where(jnp.isfinite(err), err, jnp.inf))

    def cond(s):
        return (s.iteration < max_steps) & (s.error > threshold)

    start = _State(*init, jnp.zeros((), jnp.int32), jnp.array(jnp.inf, a.dtype))
    return jax.lax.while_loop(cond, body, start)


def _kernel_barycenter(
    a, w, *, shape, epsilon, debiased, num_debias_steps, threshold, max_steps, check_every
):
    """Debiased fixed-support barycenter with scalings (Janati et al. 2020, Algorithm 1)."""
    geom = _pixel_grid(shape, epsilon, a.dtype)
    kernel = jax.vmap(geom.apply_kernel)

    def one(_, state):
        v, d, _, _ = state
        u = a / kernel(v)
        ku = kernel(u)
        # Weighted geometric mean of the K^T u_k; weight 0 gives a factor 1.
        b = d * jnp.exp(jnp.sum(w[:, None] * jnp.log(ku), axis=0))
        v = b[None] / ku
        if debiased:
            # d solves d = b / K d (the autocorrelation scaling of b): a few fixed-point steps
            # per outer iteration, as POT's convolutional_barycenter2d_debiased does.
            for _ in range(num_debias_steps):
                d = jnp.sqrt(d * b / geom.apply_kernel(d))
        return v, d, b, u

    def marginals(v, u):
        return u * kernel(v)

    n = a.shape[1]
    # Start from the uniform barycenter (v = b0 / K 1), as POT does, so both agree step by step.
    b0 = jnp.full((n,), 1.0 / n, a.dtype)
    v0 = jnp.broadcast_to(b0 / geom.apply_kernel(jnp.ones((n,), a.dtype)), a.shape)
    init = (v0, jnp.ones((n,), a.dtype), b0, jnp.ones_like(a))
    s = _iterate(
        one, marginals, init, a, w, threshold=threshold, max_steps=max_steps, check_every=check_every
    )
    return s.b, s.error, s.iteration


def _log_barycenter(a, w, *, shape, epsilon, debiased, num_debias_steps, threshold, max_steps, check_every):
    """The same iteration as `_kernel_barycenter` with potentials and log-sum-exp kernels."""
    geom = _pixel_grid(shape, epsilon, a.dtype)

    def lse(g):  # eps * log(K exp(g / eps)), stable for any g
        return geom.apply_lse_kernel(jnp.zeros_like(g), g, epsilon, axis=1)[0]

    lse_k = jax.vmap(lse)
    log_a = epsilon * jnp.log(a)

    def one(_, state):
        g, d, _, _ = state
        f = log_a - lse_k(g)
        kf = lse_k(f)
        log_b = jnp.sum(w[:, None] * kf, axis=0) + d
        g = log_b[None] - kf
        if debiased:
            for _ in range(num_debias_steps):
                d = 0.5 * (d + log_b - lse(d))
        return g, d, log_b, f

    def marginals(g, f):
        return jnp.exp((f + lse_k(g)) / epsilon)

    n = a.shape[1]
    log_b0 = jnp.full((n,), -epsilon * jnp.log(n), a.dtype)
    g0 = jnp.broadcast_to(log_b0 - lse(jnp.zeros((n,), a.dtype)), a.shape)
    init = (g0, jnp.zeros((n,), a.dtype), log_b0, jnp.zeros_like(a))
    s = _iterate(
        one, marginals, init, a, w, threshold=threshold, max_steps=max_steps, check_every=check_every
    )
    return jnp.exp(s.b / epsilon), s.error, s.iteration


@functools.partial(
    jax.jit,
    static_argnames=("mode", "shape", "epsilon", "debiased", "num_debias_steps", "max_steps", "check_every"),
)
def _solve_batch(
    a, weights, threshold, *, mode, shape, epsilon, debiased, num_debias_steps, max_steps, check_every
):
    solve = _kernel_barycenter if mode == "kernel" else _log_barycenter
    one = functools.partial(
        solve,
        shape=shape,
        epsilon=epsilon,
        debiased=debiased,
        num_debias_steps=num_debias_steps,
        threshold=threshold,
        max_steps=max_steps,
        check_every=check_every,
    )
    # The one vmap of this pipeline: every weight vector (a path, a square) in one call.
    return jax.vmap(one, in_axes=(None, 0))(a, weights)


def _barycenters(
    a: np.ndarray,
    w: np.ndarray,
    *,
    mode: str,
    dtype: str,
    shape: tuple[int, int],
    epsilon: float,
    debiased: bool,
    num_debias_steps: int,
    threshold: float,
    max_steps: int,
    check_every: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Barycenters ``(m, n)``, marginal errors ``(m,)`` and iterations ``(m,)``.

    Of histograms ``a`` ``(k, n)`` for weight vectors ``w`` ``(m, k)``, in ``dtype`` (float64 scoped
    to the call).
    """
    with jax.enable_x64(dtype == "float64"):
        b, err, its = _solve_batch(
            jnp.asarray(a, dtype),
            jnp.asarray(w, dtype),
            jnp.asarray(threshold, dtype),
            mode=mode,
            shape=shape,
            epsilon=float(epsilon),
            debiased=debiased,
            num_debias_steps=num_debias_steps,
            max_steps=max_steps,
            check_every=check_every,
        )
        return np.array(b, np.float64), np.array(err, np.float64), np.array(its)
