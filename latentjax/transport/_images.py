"""Optimal transport between images: Wasserstein barycenters and displacement interpolation.

A grayscale image is a probability distribution on its pixel grid; OT moves mass across the grid
instead of cross-fading pixels or walking a latent space.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax.data import validate_images
from latentjax.errors import InputError
from latentjax.transport._clouds import _barycentric_weights, _plan_jit
from latentjax.transport._grid_sinkhorn import _barycenters

# Added to every pixel of a normalised image: the log-domain grid kernel never converges on
# exact zeros (log 0 = -inf), and 1e-12 in total mass is far below any tolerance used here.
_FLOOR = 1e-12
_MODES = ("auto", "kernel", "log")
_DTYPES = ("float64", "float32")


class Interpolation(NamedTuple):
    """Images along an OT path (one per weight vector or time).

    Attributes:
        histogram: ``(m, h, w)`` float32 distributions, each summing to 1 (up to ``error``).
        image: ``(m, h, w)`` float32, the histograms rescaled to the interpolated total intensity
            of the inputs, so that endpoints are comparable with the input images.
        error: ``(m,)`` the final marginal violation (L1) of the transport plans.
        num_steps: ``(m,)`` Sinkhorn iterations run.

    Examples:
        >>> a = np.zeros((4, 4)); b = np.zeros((4, 4)); a[1, 0] = b[1, 2] = 1.0
        >>> out = displacement_interpolate(a, b, [0.0, 1.0])
        >>> out.histogram.shape, out.error.shape
        ((2, 4, 4), (2,))
    """

    histogram: jax.Array
    image: jax.Array
    error: jax.Array
    num_steps: jax.Array


def default_epsilon(shape: tuple[int, ...], *, blur_px: float = 1.0) -> float:
    """The entropic regularisation whose Gibbs kernel blurs by ``blur_px`` pixels at 28x28.

    Pixel ``(r, c)`` sits at ``(r, c) / (max(h, w) - 1)``: the longer side spans ``[0, 1]`` and a
    pixel step costs the same along rows and columns (for square images this is ott's ``Grid``
    and POT's convolutional barycenters). The kernel ``exp(-|x - y|^2 / eps)`` is a Gaussian of
    variance ``eps / 2`` in both directions, so ``eps = 2 (blur_px / (n - 1))^2`` with
    ``n = min(max(h, w), 28)``. Larger
    images keep the 28x28 value (the blur scales with the image, so an upsampled image has the
    same barycenters): then ``exp(d^2 / eps)`` stays below float64's overflow for any
    displacement ``d`` up to 1.39 (the unit square's diagonal is 1.41), which keeps the fast
    kernel mode stable; one pixel at 64x64 (eps 5e-4) overflows it (NaN) on Fashion-MNIST pairs.

    Args:
        shape: the image shape ``(h, w)`` (further entries are ignored).
        blur_px: the kernel's standard deviation, in pixels at 28x28.

    Returns:
        ``epsilon`` in squared units of the longer side (which spans ``[0, 1]``).

    Examples:
        >>> round(default_epsilon((28, 28)), 6), round(default_epsilon((128, 128)), 6)
        (0.002743, 0.002743)
    """
    n = min(max(int(s) for s in shape[:2]), 28)
    return float(2.0 * (blur_px / max(n - 1, 1)) ** 2)


def _as_images(images: ArrayLike, where: str, what: str = "images") -> np.ndarray:
    """``(k, h, w)`` float64 intensities in [0, 1] from grayscale uint8 or float images."""
    if isinstance(images, (list, tuple)):
        shapes = [np.shape(im) for im in images]
        odd = next((i for i, sh in enumerate(shapes) if sh != shapes[0]), None)
        if odd is not None:
            raise InputError(
                f"{where}: {what}[{odd}] has shape {shapes[odd]} but {what}[0] has {shapes[0]}; "
                "all images must have one size (resize or pad them first)"
            )
    x = np.asarray(images)
    if x.ndim not in (3, 4):
        raise InputError(f"{where}: {what} must have shape (k, h, w) or (k, h, w, 1), got {x.shape}")
    x = validate_images(x[..., None] if x.ndim == 3 else x, what=f"{where}: {what}")
    if x.shape[-1] != 1:
        raise InputError(f"{where}: {what} must be grayscale, (k, h, w) or (k, h, w, 1), got {x.shape}")
    x = x[..., 0]
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    empty = np.flatnonzero(x.reshape(x.shape[0], -1).sum(axis=1) <= 0)
    if empty.size:
        raise InputError(
            f"{where}: {what}[{int(empty[0])}] has zero mass (all pixels are 0): an empty image has no "
            "distribution to transport"
        )
    return x


def _histograms(x: np.ndarray) -> np.ndarray:
    """``(k, h * w)`` distributions from ``(k, h, w)`` intensities, with the ``_FLOOR``."""
    h = x.reshape(x.shape[0], -1)
    h = h / h.sum(axis=1, keepdims=True) + _FLOOR / h.shape[1]
    return h / h.sum(axis=1, keepdims=True)


def wasserstein_interpolate(
    images: ArrayLike,
    weights: ArrayLike,
    *,
    epsilon: float | None = None,
    mode: str = "auto",
    dtype: str = "float64",
    debiased: bool = True,
    num_debias_steps: int = 10,
    threshold: float = 1e-6,
    max_steps: int = 2000,
    check_every: int = 10,
) -> Interpolation:
    """Entropic Wasserstein barycenters of ``k`` images, one per row of ``weights``.

    Each image is normalised to a distribution on its pixel grid (plus a ``1e-12`` floor); the
    barycenter minimises ``sum_k w_k S_eps(b, a_k)`` with the squared Euclidean ground cost
    between pixel positions scaled by ``1 / (max(h, w) - 1)`` (isotropic: the same cost per pixel
    along rows and columns, also for non-square images) and Sinkhorn convolutions on the
    separable grid (``ott.geometry.grid.Grid``).
    With ``debiased=True`` (the default) ``S_eps`` is the Sinkhorn divergence, which removes the
    entropic blur: the barycenter with weight 1 on one image is that image.

    ``mode``: ``"kernel"`` iterates scalings (fast; ``dtype="float64"`` keeps small epsilon
    stable, ``float32`` loses mass silently there), ``"log"`` iterates potentials with
    log-sum-exp kernels (stable at any epsilon, about 10x slower on CPU). ``"auto"`` runs the
    kernel mode and reruns a weight vector in the log domain if the kernel mode under/overflowed
    (a non-finite result, or a mass off by more than 1e-3 and more than its marginal error).

    Args:
        images: ``(k, h, w)`` or ``(k, h, w, 1)`` grayscale images, uint8 or float in [0, 1].
        weights: ``(m, k)`` weight vectors (or one ``(k,)``); rows are normalised to sum to 1.
        epsilon: entropic regularisation in squared units of the longer side; default
            `default_epsilon` (one pixel at 28x28, scaled with larger images).
        mode: ``"auto"``, ``"kernel"`` or ``"log"``.
        dtype: ``"float64"`` (scoped with ``jax.enable_x64``, nothing global) or ``"float32"``.
        debiased: debiased Sinkhorn barycenter (Janati et al. 2020) rather than the plain one.
        num_debias_steps: fixed-point updates of the debiasing scaling per iteration.
        threshold: stop when the weighted L1 marginal violation is below this. The barycenter
            converges more slowly than the marginals: at 28x28 on Fashion-MNIST, 1e-4 leaves the
            endpoints 0.05-0.07 L1 from the inputs, 1e-6 (about 500 iterations) 0.02-0.025.
        max_steps: at most this many iterations per weight vector.
        check_every: iterations between convergence checks.

    Returns:
        An `Interpolation` with ``m`` barycenters.

    Raises:
        InputError: bad shapes (images of different sizes), weights, mode, dtype or epsilon, or a
            zero-mass image.
        DataError: images that `data.validate_images` rejects (e.g. values outside [0, 1]).

    Examples:
        >>> blobs = np.zeros((2, 16, 16)); blobs[0, 4, 4] = blobs[1, 4, 12] = 1.0
        >>> path = wasserstein_interpolate(blobs, [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
        >>> path.histogram.shape
        (3, 16, 16)

    References:
        Solomon et al., "Convolutional Wasserstein Distances", SIGGRAPH 2015 (Alg. 2).
        Janati, Cuturi, Gramfort, "Debiased Sinkhorn barycenters", ICML 2020 (Alg. 1).
    """
    where = "transport.wasserstein_interpolate"
    if mode not in _MODES:
        raise InputError(f"{where}: mode must be one of {_MODES}, got {mode!r}")
    if dtype not in _DTYPES:
        raise InputError(f"{where}: dtype must be one of {_DTYPES}, got {dtype!r}")
    x = _as_images(images, where)
    k, h, wd = x.shape
    w = _barycentric_weights(weights, k, where)
    eps = default_epsilon((h, wd)) if epsilon is None else float(epsilon)
    if not eps > 0:
        raise InputError(f"{where}: epsilon must be positive, got {epsilon}")
    a = _histograms(x)
    run = functools.partial(
        _barycenters,
        dtype=dtype,
        shape=(h, wd),
        epsilon=eps,
        debiased=debiased,
        num_debias_steps=int(num_debias_steps),
        threshold=threshold,
        max_steps=int(max_steps),
        check_every=int(check_every),
    )
    b, err, its = (np.array(v) for v in run(a, w, mode="log" if mode == "log" else "kernel"))  # writable
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
        num_steps=jnp.asarray(its),
    )


def path_weights(num_points: int) -> np.ndarray:
    """Barycentric weights of a path between two images: ``(1 - t, t)``, ``t`` evenly in ``[0, 1]``.

    Args:
        num_points: points on the path, endpoints included.

    Returns:
        ``(num_points, 2)`` weights.

    Examples:
        >>> path_weights(3)
        array([[1. , 0. ],
               [0.5, 0.5],
               [0. , 1. ]])
    """
    t = np.linspace(0.0, 1.0, num_points)
    return np.stack([1.0 - t, t], axis=1)


def square_weights(size: int) -> np.ndarray:
    """Bilinear weights of 4 corner images on a ``size x size`` grid: the classic barycenter square.

    Args:
        size: points per side (corners included).

    Returns:
        ``(size * size, 4)`` weights of the corners (top-left, top-right, bottom-left,
        bottom-right), row-major over the grid.

    Examples:
        >>> square_weights(2)
        array([[1., 0., 0., 0.],
               [0., 1., 0., 0.],
               [0., 0., 1., 0.],
               [0., 0., 0., 1.]])
    """
    s = np.linspace(0.0, 1.0, size)
    r, c = np.meshgrid(s, s, indexing="ij")
    r, c = r.ravel(), c.ravel()
    return np.stack([(1 - r) * (1 - c), (1 - r) * c, r * (1 - c), r * c], axis=1)


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
    """Pixel coordinates and masses of the non-zero pixels, padded to a multiple of ``bucket``.

    The padding points have zero mass; images of similar support share one compiled plan.
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
    max_steps: int = 5000,
) -> Interpolation:
    """McCann's displacement interpolation between two images, from an entropic transport plan.

    The non-zero pixels of each image are weighted points at ``(r, c) / (max(h, w) - 1)`` (the
    isotropic pixel scale of `wasserstein_interpolate`); Sinkhorn
    (``ott.solvers.linear.solve`` on a ``PointCloud``) gives the plan ``P``, and the image at time
    ``t`` puts mass ``P_ij`` at ``(1 - t) x_i + t y_j``, splatted bilinearly onto the grid. The
    endpoints are the inputs exactly (up to the plan's marginal error): unlike a barycenter, no
    blur is added at ``t = 0, 1``.

    Args:
        image0: ``(h, w)`` or ``(h, w, 1)`` grayscale image (uint8 or float in [0, 1]).
        image1: another image of the same shape.
        t: ``(m,)`` times in ``[0, 1]``.
        epsilon: entropic regularisation of the plan (squared units of the longer side); default
            ``default_epsilon(shape, blur_px=0.5)``, so the plan is close to a map.
        threshold: Sinkhorn marginal tolerance.
        max_steps: Sinkhorn iteration cap.

    Returns:
        An `Interpolation` with ``m`` images.

    Raises:
        InputError: images of different or non-grayscale shapes, a zero-mass image, bad ``t``.
        DataError: images that `data.validate_images` rejects (e.g. values outside [0, 1]).

    Examples:
        >>> a = np.zeros((8, 8)); b = np.zeros((8, 8)); a[2, 1] = b[2, 5] = 1.0
        >>> mid = displacement_interpolate(a, b, [0.5]).histogram[0]
        >>> float(mid[2, 3])
        1.0

    References:
        McCann, "A convexity principle for interacting gases", Adv. Math. 1997.
        Peyre & Cuturi, "Computational Optimal Transport", 2019, Sec. 7.1 (eq. 7.6).
    """
    where = "transport.displacement_interpolate"
    image0, image1 = np.asarray(image0), np.asarray(image1)
    if image0.shape != image1.shape:
        raise InputError(f"{where}: image0 and image1 differ in shape: {image0.shape} and {image1.shape}")
    x = _as_images(np.stack([image0, image1]), where, "image0/image1")
    _, h, w = x.shape
    tt = np.atleast_1d(np.asarray(t, np.float32))
    if tt.ndim != 1 or np.any(tt < 0) or np.any(tt > 1):
        raise InputError(f"{where}: t must be a 1-d array of times in [0, 1], got {np.asarray(t)}")
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
        max_steps=int(max_steps),
    )

    # Zero-mass padding points carry no plan mass, so their positions never matter.
    def frame(s):
        return _displace(s, plan, jnp.asarray(px0), jnp.asarray(px1), shape=(h, w))

    frames = jax.vmap(frame)(jnp.asarray(tt))
    masses = x.sum(axis=(1, 2))
    scale_t = (1.0 - tt) * masses[0] + tt * masses[1]
    m = tt.shape[0]
    return Interpolation(
        histogram=frames.astype(jnp.float32),
        image=(frames * jnp.asarray(scale_t, jnp.float32)[:, None, None]).astype(jnp.float32),
        error=jnp.full((m,), err, jnp.float32),
        num_steps=jnp.full((m,), its),
    )
