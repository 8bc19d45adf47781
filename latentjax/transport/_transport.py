"""Optimal transport with ott-jax: image barycenters, displacement interpolation, point clouds.

The only module that imports ``ott``. A grayscale image is a probability distribution on its
pixel grid; OT moves mass across the grid instead of cross-fading pixels or walking a latent space.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from ott.geometry import grid, pointcloud
from ott.problems.linear import barycenter_problem
from ott.solvers import linear
from ott.solvers.linear import continuous_barycenter, sinkhorn
from ott.tools import sinkhorn_divergence

from latentjax.errors import LatentJaxError

# Added to every pixel of a normalised image: the log-domain grid kernel never converges on
# exact zeros (log 0 = -inf), and 1e-12 in total mass is far below any tolerance used here.
_FLOOR = 1e-12
_MODES = ("auto", "kernel", "log")
_DTYPES = ("float64", "float32")


def _ott_broadcasting():
    """Ott's Sinkhorn error checks rely on NumPy rank promotion; allow it inside ott calls only
    (tests, and careful users, set ``jax_numpy_rank_promotion="raise"`` globally).
    """
    return jax.numpy_rank_promotion("allow")


class TransportError(LatentJaxError, ValueError):
    """Bad input to an optimal-transport function (shape, mass, weights, mode)."""


class Interpolation(NamedTuple):
    """Images along an OT path (one per weight vector or time).

    Attributes:
      histogram: ``(m, h, w)`` float32 distributions, each summing to 1 (up to ``error``).
      image: ``(m, h, w)`` float32, the histograms rescaled to the interpolated total intensity of
        the inputs, so that endpoints are comparable with the input images.
      error: ``(m,)`` the final marginal violation (L1) of the transport plans.
      iterations: ``(m,)`` Sinkhorn iterations run.
    """

    histogram: jax.Array
    image: jax.Array
    error: jax.Array
    iterations: jax.Array


def default_epsilon(shape: tuple[int, ...], *, blur_px: float = 1.0) -> float:
    """The entropic regularisation whose Gibbs kernel blurs by ``blur_px`` pixels at 28x28.

    Pixels sit on ``linspace(0, 1, n)`` per axis (ott's ``Grid`` and POT's convolutional
    barycenters agree on this), and the kernel ``exp(-|x - y|^2 / eps)`` is a Gaussian of
    variance ``eps / 2``, so ``eps = 2 (blur_px / (n - 1))^2`` with ``n = min(side, 28)``. Larger
    images keep the 28x28 value (the blur scales with the image, so an upsampled image has the
    same barycenters): then ``exp(d^2 / eps)`` stays below float64's overflow for any
    displacement ``d`` up to 1.39 (the unit square's diagonal is 1.41), which keeps the fast
    kernel mode stable; one pixel at 64x64 (eps 5e-4) overflows it (NaN) on Fashion-MNIST pairs.

    Examples:
      >>> round(default_epsilon((28, 28)), 6), round(default_epsilon((128, 128)), 6)
      (0.002743, 0.002743)
    """
    n = min(max(int(s) for s in shape[:2]), 28)
    return float(2.0 * (blur_px / max(n - 1, 1)) ** 2)


def _as_images(images: ArrayLike, *, name: str = "images") -> np.ndarray:
    """``(k, h, w)`` float64 intensities in [0, 1] from uint8 or float, with or without a channel."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise TransportError(f"{name} must have shape (k, h, w) or (k, h, w, 1) (grayscale), got {x.shape}")
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise TransportError(f"{name} must be finite and non-negative (pixel intensities are masses)")
    mass = x.reshape(x.shape[0], -1).sum(axis=1)
    empty = np.flatnonzero(mass <= 0)
    if empty.size:
        raise TransportError(
            f"{name}[{int(empty[0])}] has zero mass (all pixels are 0): an empty image has no "
            "distribution to transport"
        )
    return x


def _histograms(x: np.ndarray) -> np.ndarray:
    h = x.reshape(x.shape[0], -1)
    h = h / h.sum(axis=1, keepdims=True) + _FLOOR / h.shape[1]
    return h / h.sum(axis=1, keepdims=True)


def _as_weights(weights: ArrayLike, k: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2 or w.shape[1] != k:
        raise TransportError(
            f"weights must have shape (m, {k}) (one weight per image), got {np.shape(weights)}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w.sum(axis=1) <= 0):
        raise TransportError("weights must be finite, non-negative and not all zero in a row")
    return w / w.sum(axis=1, keepdims=True)


class _KernelState(NamedTuple):
    v: jax.Array  # (k, n) right scalings, one plan per input image
    d: jax.Array  # (n,) debiasing scaling (ones when not debiased)
    b: jax.Array  # (n,) barycenter estimate
    u: jax.Array  # (k, n) left scalings
    iteration: jax.Array
    error: jax.Array


class _LogState(NamedTuple):
    g: jax.Array  # (k, n) potentials eps * log v
    d: jax.Array  # (n,) eps * log d
    b: jax.Array  # (n,) eps * log b
    f: jax.Array  # (k, n) potentials eps * log u
    iteration: jax.Array
    error: jax.Array


def _kernel_barycenter(
    a, w, *, shape, epsilon, debiased, debias_steps, threshold, max_iterations, check_every
):
    """Debiased fixed-support barycenter with scalings (Janati et al. 2020, Algorithm 1).

    Written on ``Grid.apply_kernel`` rather than calling ott's ``FixedBarycenter``: in ott-jax
    0.6.0, ``_discrete_barycenter`` with ``lse_mode=True, debiased=True`` updates the debiasing
    potential with ``update_potential(zeros, d, ..., axis=0)``; with ``axis=0`` the kernel is
    applied to the *first* argument, i.e. to zeros instead of ``d``, so the debiasing never sees
    ``d`` and the barycenters are wrong (a corner with weight 1 does not reproduce its input).
    Swapping the two arguments fixes it (to report upstream). Its kernel mode is right, but it
    offers no initialisation matching POT; the two modes here share one formulation so that both
    are checked against each other and against POT.
    """
    geom = grid.Grid(grid_size=shape, epsilon=epsilon)
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
            for _ in range(debias_steps):
                d = jnp.sqrt(d * b / geom.apply_kernel(d))
        return v, d, b, u

    def body(s):
        v, d, b, u = jax.lax.fori_loop(0, check_every, one, (s.v, s.d, s.b, s.u))
        err = jnp.sum(w * jnp.sum(jnp.abs(u * kernel(v) - a), axis=1))
        return _KernelState(v, d, b, u, s.iteration + check_every, jnp.where(jnp.isfinite(err), err, jnp.inf))

    def cond(s):
        return (s.iteration < max_iterations) & (s.error > threshold)

    n = a.shape[1]
    # Start from the uniform barycenter (v = b0 / K 1), as POT does, so both agree step by step.
    b0 = jnp.full((n,), 1.0 / n, a.dtype)
    v0 = jnp.broadcast_to(b0 / geom.apply_kernel(jnp.ones((n,), a.dtype)), a.shape)
    init = _KernelState(
        v0,
        jnp.ones((n,), a.dtype),
        b0,
        jnp.ones_like(a),
        jnp.zeros((), jnp.int32),
        jnp.array(jnp.inf, a.dtype),
    )
    s = jax.lax.while_loop(cond, body, init)
    b = s.b
    return b, s.error, s.iteration


def _log_barycenter(a, w, *, shape, epsilon, debiased, debias_steps, threshold, max_iterations, check_every):
    """The same iteration as :func:`_kernel_barycenter` with potentials and log-sum-exp kernels."""
    geom = grid.Grid(grid_size=shape, epsilon=epsilon)

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
            for _ in range(debias_steps):
                d = 0.5 * (d + log_b - lse(d))
        return g, d, log_b, f

    def body(s):
        g, d, log_b, f = jax.lax.fori_loop(0, check_every, one, (s.g, s.d, s.b, s.f))
        marg = jnp.exp((f + lse_k(g)) / epsilon)
        err = jnp.sum(w * jnp.sum(jnp.abs(marg - a), axis=1))
        return _LogState(
            g, d, log_b, f, s.iteration + check_every, jnp.where(jnp.isfinite(err), err, jnp.inf)
        )

    def cond(s):
        return (s.iteration < max_iterations) & (s.error > threshold)

    n = a.shape[1]
    log_b0 = jnp.full((n,), -epsilon * jnp.log(n), a.dtype)
    g0 = jnp.broadcast_to(log_b0 - lse(jnp.zeros((n,), a.dtype)), a.shape)
    init = _LogState(
        g0,
        jnp.zeros((n,), a.dtype),
        log_b0,
        jnp.zeros_like(a),
        jnp.zeros((), jnp.int32),
        jnp.array(jnp.inf, a.dtype),
    )
    s = jax.lax.while_loop(cond, body, init)
    log_b = s.b
    return jnp.exp(log_b / epsilon), s.error, s.iteration


@functools.partial(
    jax.jit,
    static_argnames=("mode", "shape", "epsilon", "debiased", "debias_steps", "max_iterations", "check_every"),
)
def _solve_batch(
    a, weights, threshold, *, mode, shape, epsilon, debiased, debias_steps, max_iterations, check_every
):
    solve = _kernel_barycenter if mode == "kernel" else _log_barycenter
    one = functools.partial(
        solve,
        shape=shape,
        epsilon=epsilon,
        debiased=debiased,
        debias_steps=debias_steps,
        threshold=threshold,
        max_iterations=max_iterations,
        check_every=check_every,
    )
    # The one vmap of this pipeline: every weight vector (a path, a square) in one call.
    return jax.vmap(one, in_axes=(None, 0))(a, weights)


def _run(
    a, w, *, mode, dtype, shape, epsilon, debiased, debias_steps, threshold, max_iterations, check_every
):
    with jax.enable_x64(dtype == "float64"):
        b, err, its = _solve_batch(
            jnp.asarray(a, dtype),
            jnp.asarray(w, dtype),
            jnp.asarray(threshold, dtype),
            mode=mode,
            shape=shape,
            epsilon=float(epsilon),
            debiased=debiased,
            debias_steps=debias_steps,
            max_iterations=max_iterations,
            check_every=check_every,
        )
        return np.array(b, np.float64), np.array(err, np.float64), np.array(its)


def wasserstein_interpolate(
    images: ArrayLike,
    weights: ArrayLike,
    *,
    epsilon: float | None = None,
    mode: str = "auto",
    dtype: str = "float64",
    debiased: bool = True,
    debias_steps: int = 10,
    threshold: float = 1e-6,
    max_iterations: int = 2000,
    check_every: int = 10,
) -> Interpolation:
    """Entropic Wasserstein barycenters of ``k`` images, one per row of ``weights``.

    Each image is normalised to a distribution on its pixel grid (plus a ``1e-12`` floor); the
    barycenter minimises ``sum_k w_k S_eps(b, a_k)`` with the squared Euclidean ground cost on
    ``[0, 1]^2`` and Sinkhorn convolutions on the separable grid (``ott.geometry.grid.Grid``).
    With ``debiased=True`` (the default) ``S_eps`` is the Sinkhorn divergence, which removes the
    entropic blur: the barycenter with weight 1 on one image is that image.

    ``mode``: ``"kernel"`` iterates scalings (fast; ``dtype="float64"`` keeps small epsilon
    stable, ``float32`` loses mass silently there), ``"log"`` iterates potentials with
    log-sum-exp kernels (stable at any epsilon, about 10x slower on CPU). ``"auto"`` runs the
    kernel mode and reruns a weight vector in the log domain if the kernel mode under/overflowed
    (a non-finite result, or a mass off by more than 1e-3 and more than its marginal error).

    Args:
      images: ``(k, h, w)`` or ``(k, h, w, 1)`` grayscale images, uint8 or float >= 0.
      weights: ``(m, k)`` weight vectors (or one ``(k,)``); rows are normalised to sum to 1.
      epsilon: entropic regularisation in the units of ``[0, 1]^2``; default
        :func:`default_epsilon` (one pixel at 28x28, scaled with larger images).
      mode: ``"auto"``, ``"kernel"`` or ``"log"``.
      dtype: ``"float64"`` (scoped with ``jax.enable_x64``, nothing global) or ``"float32"``.
      debiased: debiased Sinkhorn barycenter (Janati et al. 2020) rather than the plain one.
      debias_steps: fixed-point updates of the debiasing scaling per iteration.
      threshold: stop when the weighted L1 marginal violation is below this. The barycenter
        converges more slowly than the marginals: at 28x28 on Fashion-MNIST, 1e-4 leaves the
        endpoints 0.05-0.07 L1 from the inputs, 1e-6 (about 500 iterations) 0.02-0.025.
      max_iterations: at most this many iterations per weight vector.
      check_every: iterations between convergence checks.

    Returns:
      An :class:`Interpolation` with ``m`` barycenters.

    Raises:
      TransportError: on a zero-mass image, negative pixels, bad shapes, weights or mode.

    Examples:
      >>> import numpy as np
      >>> blobs = np.zeros((2, 16, 16)); blobs[0, 4, 4] = blobs[1, 4, 12] = 1.0
      >>> path = wasserstein_interpolate(blobs, [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
      >>> path.histogram.shape
      (3, 16, 16)

    References:
      Solomon et al., "Convolutional Wasserstein Distances", SIGGRAPH 2015 (Alg. 2).
      Janati, Cuturi, Gramfort, "Debiased Sinkhorn barycenters", ICML 2020 (Alg. 1).
    """
    if mode not in _MODES:
        raise TransportError(f"mode must be one of {_MODES}, got {mode!r}")
    if dtype not in _DTYPES:
        raise TransportError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    x = _as_images(images)
    k, h, wd = x.shape
    w = _as_weights(weights, k)
    eps = default_epsilon((h, wd)) if epsilon is None else float(epsilon)
    if not eps > 0:
        raise TransportError(f"epsilon must be positive, got {epsilon}")
    a = _histograms(x)
    run = functools.partial(
        _run,
        dtype=dtype,
        shape=(h, wd),
        epsilon=eps,
        debiased=debiased,
        debias_steps=int(debias_steps),
        threshold=threshold,
        max_iterations=int(max_iterations),
        check_every=int(check_every),
    )
    b, err, its = (
        np.array(v) for v in run(a, w, mode="log" if mode == "log" else "kernel")
    )  # writable copies
    if mode == "auto":
        # The plan's mass is 1 up to its marginal error; more lost mass means under/overflow.
        mass_off = np.abs(b.sum(axis=1) - 1.0)
        bad = ~np.all(np.isfinite(b), axis=1) | ((mass_off > 1e-3) & (mass_off > 2.0 * err))
        if bad.any():
            b[bad], err[bad], its[bad] = run(a, w[bad], mode="log")
    masses = x.reshape(k, -1).sum(axis=1)
    hist = b.reshape(-1, h, wd)
    return Interpolation(
        histogram=jnp.asarray(hist, jnp.float32),
        image=jnp.asarray(hist * (w @ masses)[:, None, None], jnp.float32),
        error=jnp.asarray(err, jnp.float32),
        iterations=jnp.asarray(its),
    )


def path_weights(num_points: int) -> np.ndarray:
    """``(num_points, 2)`` weights ``(1 - t, t)`` for ``t`` evenly spaced in ``[0, 1]``."""
    t = np.linspace(0.0, 1.0, num_points)
    return np.stack([1.0 - t, t], axis=1)


def square_weights(size: int) -> np.ndarray:
    """``(size * size, 4)`` bilinear weights of the 4 corners (top-left, top-right, bottom-left,
    bottom-right) on a ``size x size`` grid, row-major: the classic barycenter square.
    """
    s = np.linspace(0.0, 1.0, size)
    r, c = np.meshgrid(s, s, indexing="ij")
    r, c = r.ravel(), c.ravel()
    return np.stack([(1 - r) * (1 - c), (1 - r) * c, r * (1 - c), r * c], axis=1)


def _plan(x, y, a, b, *, epsilon, threshold, max_iterations):
    geom = pointcloud.PointCloud(x, y, epsilon=epsilon)
    with _ott_broadcasting():
        out = linear.solve(geom, a, b, threshold=threshold, max_iterations=max_iterations)
    p = out.matrix
    err = jnp.sum(jnp.abs(jnp.sum(p, axis=1) - a)) + jnp.sum(jnp.abs(jnp.sum(p, axis=0) - b))
    return p, err, out.n_iters


_plan_jit = jax.jit(_plan, static_argnames=("epsilon", "max_iterations"))


def _splat(pos, mass, shape):
    """Bilinear splat of point masses at fractional pixel positions ``pos`` ``(p, 2)``."""
    h, w = shape
    lo = jnp.floor(pos)
    frac = pos - lo
    lo = lo.astype(jnp.int32)
    out = jnp.zeros(shape, mass.dtype)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        wr = frac[:, 0] if dr else 1.0 - frac[:, 0]
        wc = frac[:, 1] if dc else 1.0 - frac[:, 1]
        r = jnp.clip(lo[:, 0] + dr, 0, h - 1)
        c = jnp.clip(lo[:, 1] + dc, 0, w - 1)
        out = out.at[r, c].add(mass * wr * wc)
    return out


@functools.partial(jax.jit, static_argnames=("shape",))
def _displace(t, plan, x_px, y_px, *, shape):
    pos = (1.0 - t) * x_px[:, None, :] + t * y_px[None, :, :]
    return _splat(pos.reshape(-1, 2), plan.ravel(), shape)


def _support(hist: np.ndarray, bucket: int = 128):
    """Pixel coordinates and masses of the non-zero pixels, padded to a multiple of ``bucket``
    with zero-mass points so that images of similar support share one compiled plan.
    """
    rows, cols = np.nonzero(hist)
    n = rows.size
    size = -(-n // bucket) * bucket
    px = np.zeros((size, 2), np.float32)
    px[:n, 0], px[:n, 1] = rows, cols
    mass = np.zeros(size, np.float32)
    mass[:n] = hist[rows, cols]
    return px, mass


def displacement_interpolate(
    image0: ArrayLike,
    image1: ArrayLike,
    t: ArrayLike,
    *,
    epsilon: float | None = None,
    threshold: float = 1e-6,
    max_iterations: int = 5000,
) -> Interpolation:
    """McCann's displacement interpolation between two images, from an entropic transport plan.

    The non-zero pixels of each image are weighted points in ``[0, 1]^2``; Sinkhorn
    (``ott.solvers.linear.solve`` on a ``PointCloud``) gives the plan ``P``, and the image at time
    ``t`` puts mass ``P_ij`` at ``(1 - t) x_i + t y_j``, splatted bilinearly onto the grid. The
    endpoints are the inputs exactly (up to the plan's marginal error): unlike a barycenter, no
    blur is added at ``t = 0, 1``.

    Args:
      image0: ``(h, w)`` or ``(h, w, 1)`` grayscale image (uint8 or float >= 0).
      image1: another image of the same shape.
      t: ``(m,)`` times in ``[0, 1]``.
      epsilon: entropic regularisation of the plan (units of ``[0, 1]^2``); default
        ``default_epsilon(shape, blur_px=0.5)``, so the plan is close to a map.
      threshold: Sinkhorn marginal tolerance.
      max_iterations: Sinkhorn iteration cap.

    Returns:
      An :class:`Interpolation` with ``m`` images.

    Examples:
      >>> import numpy as np
      >>> a = np.zeros((8, 8)); b = np.zeros((8, 8)); a[2, 1] = b[2, 5] = 1.0
      >>> mid = displacement_interpolate(a, b, [0.5]).histogram[0]
      >>> float(mid[2, 3])
      1.0

    References:
      McCann, "A convexity principle for interacting gases", Adv. Math. 1997.
      Peyre & Cuturi, "Computational Optimal Transport", 2019, Sec. 7.1 (eq. 7.6).
    """
    x = _as_images(np.stack([np.asarray(image0), np.asarray(image1)]), name="image0/image1")
    _, h, w = x.shape
    tt = np.atleast_1d(np.asarray(t, np.float32))
    if tt.ndim != 1 or np.any(tt < 0) or np.any(tt > 1):
        raise TransportError(f"t must be a 1-d array of times in [0, 1], got {np.asarray(t)}")
    hist = x / x.sum(axis=(1, 2), keepdims=True)
    eps = default_epsilon((h, w), blur_px=0.5) if epsilon is None else float(epsilon)
    scale = np.float32(max(h, w) - 1)
    (px0, m0), (px1, m1) = _support(hist[0]), _support(hist[1])
    plan, err, its = _plan_jit(
        jnp.asarray(px0 / scale),
        jnp.asarray(px1 / scale),
        jnp.asarray(m0),
        jnp.asarray(m1),
        epsilon=eps,
        threshold=threshold,
        max_iterations=int(max_iterations),
    )
    # Zero-mass padding points carry no plan mass, so their positions never matter.
    frames = jax.vmap(lambda s: _displace(s, plan, jnp.asarray(px0), jnp.asarray(px1), shape=(h, w)))(
        jnp.asarray(tt)
    )
    masses = x.sum(axis=(1, 2))
    scale_t = (1.0 - tt) * masses[0] + tt * masses[1]
    m = tt.shape[0]
    return Interpolation(
        histogram=frames.astype(jnp.float32),
        image=(frames * jnp.asarray(scale_t, jnp.float32)[:, None, None]).astype(jnp.float32),
        error=jnp.full((m,), err, jnp.float32),
        iterations=jnp.full((m,), its),
    )


def _as_cloud(x: ArrayLike, name: str) -> jax.Array:
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2 or x.shape[0] < 1:
        raise TransportError(f"{name} must be a (n, d) point cloud, got shape {x.shape}")
    if not bool(jnp.all(jnp.isfinite(x))):
        raise TransportError(f"{name} has non-finite coordinates")
    return x


def _as_cloud_pair(x: ArrayLike, y: ArrayLike, names: tuple[str, str]) -> tuple[jax.Array, jax.Array]:
    x, y = _as_cloud(x, names[0]), _as_cloud(y, names[1])
    if x.shape[1] != y.shape[1]:
        raise TransportError(f"point clouds have different dimensions: {x.shape[1]} and {y.shape[1]}")
    return x, y


def ot_distance(x: ArrayLike, y: ArrayLike, *, epsilon: float = 1e-2) -> jax.Array:
    """The Sinkhorn divergence between two uniform point clouds (squared Euclidean cost).

    ``S_eps(x, y) = OT_eps(x, y) - (OT_eps(x, x) + OT_eps(y, y)) / 2``: zero for identical
    clouds, positive otherwise, and ``W_2^2`` as ``epsilon -> 0``.

    Args:
      x: ``(n, d)`` points.
      y: ``(m, d)`` points, same ``d``.
      epsilon: entropic regularisation (absolute, in squared coordinate units).

    Returns:
      A scalar.

    Examples:
      >>> import numpy as np
      >>> x = np.random.default_rng(0).normal(size=(64, 2))
      >>> round(float(ot_distance(x, x + [3.0, 0.0], epsilon=1e-2)), 1)
      9.0

    References:
      Feydy et al., "Interpolating between Optimal Transport and MMD using Sinkhorn
      Divergences", AISTATS 2019.
    """
    x, y = _as_cloud_pair(x, y, ("x", "y"))
    return _divergence(x, y, epsilon=float(epsilon))


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _divergence(x, y, *, epsilon):
    with _ott_broadcasting():
        out = sinkhorn_divergence.sinkhorn_divergence(pointcloud.PointCloud, x, y, epsilon=epsilon)
    div = out[0] if isinstance(out, tuple) else out.divergence
    return div


def transport_points(x_source: ArrayLike, x_target: ArrayLike, *, epsilon: float = 1e-2) -> jax.Array:
    """Move each source point along the OT plan onto the target cloud (barycentric projection).

    ``T(x_i) = sum_j P_ij y_j / sum_j P_ij`` for the entropic plan ``P`` between the uniform
    clouds: the OT counterpart of adding a mean-difference vector, but it matches the whole
    target distribution (spread and shape), not only its mean.

    Args:
      x_source: ``(n, d)`` source points (e.g. latent codes of one class).
      x_target: ``(m, d)`` target points (e.g. latent codes of another class).
      epsilon: entropic regularisation relative to the mean squared distance between the clouds
        (ott's ``relative_epsilon="mean"``), so it is scale free.

    Returns:
      ``(n, d)`` transported points.

    Examples:
      >>> import numpy as np
      >>> x = np.random.default_rng(0).normal(size=(32, 2))
      >>> bool(np.allclose(transport_points(x, x + 5.0, epsilon=1e-3), x + 5.0, atol=0.1))
      True

    References:
      Peyre & Cuturi, "Computational Optimal Transport", 2019, Remark 4.11 (barycentric map).
    """
    x, y = _as_cloud_pair(x_source, x_target, ("x_source", "x_target"))
    return _barycentric_map(x, y, epsilon=float(epsilon))


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _barycentric_map(x, y, *, epsilon):
    geom = pointcloud.PointCloud(x, y, epsilon=epsilon, relative_epsilon="mean")
    with _ott_broadcasting():
        out = linear.solve(geom, threshold=1e-4, max_iterations=5000)
    p = out.matrix
    return (p @ y) / jnp.sum(p, axis=1, keepdims=True)


def point_cloud_barycenter(
    key: jax.Array,
    clouds: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    num_points: int = 512,
    epsilon: float = 1e-2,
    max_iterations: int = 20,
) -> jax.Array:
    """Free-support Wasserstein barycenter of ``k`` point clouds (ott's FreeWassersteinBarycenter).

    Args:
      key: initialises the barycenter's points by sampling the inputs.
      clouds: ``(k, n, d)`` point clouds with uniform weights (subsample to a common ``n``).
      weights: ``(k,)`` barycentric weights; default uniform.
      num_points: support size of the barycenter.
      epsilon: entropic regularisation of the inner Sinkhorn solves (absolute).
      max_iterations: outer (point update) iterations.

    Returns:
      ``(num_points, d)`` barycenter points (uniform weights).

    Examples:
      >>> import jax, numpy as np
      >>> c = np.random.default_rng(0).normal(size=(2, 128, 3))
      >>> c[1] += 4.0
      >>> z = point_cloud_barycenter(jax.random.key(0), c, num_points=64)
      >>> bool(abs(float(z.mean()) - 2.0) < 0.3)
      True

    References:
      Cuturi & Doucet, "Fast Computation of Wasserstein Barycenters", ICML 2014.
    """
    y = jnp.asarray(clouds, jnp.float32)
    if y.ndim != 3:
        raise TransportError(f"clouds must have shape (k, n, d), got {y.shape}")
    k, n, _ = y.shape
    w = jnp.full((k,), 1.0 / k) if weights is None else jnp.asarray(_as_weights(weights, k)[0], jnp.float32)
    if num_points > k * n:
        raise TransportError(f"num_points={num_points} exceeds the {k * n} input points")
    return _free_barycenter(
        key, y, w, epsilon=float(epsilon), num_points=int(num_points), max_iterations=int(max_iterations)
    )


@functools.partial(jax.jit, static_argnames=("epsilon", "num_points", "max_iterations"))
def _free_barycenter(key, y, w, *, epsilon, num_points, max_iterations):
    k, n, _ = y.shape
    b = jnp.full((k, n), 1.0 / n, y.dtype)
    problem = barycenter_problem.FreeBarycenterProblem(y, b, weights=w, epsilon=epsilon)
    solver = continuous_barycenter.FreeWassersteinBarycenter(
        linear_solver=sinkhorn.Sinkhorn(threshold=1e-3, max_iterations=2000), max_iterations=max_iterations
    )
    with _ott_broadcasting():
        return solver(problem, bar_size=num_points, rng=key).x
