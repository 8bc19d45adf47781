"""FIt-SNE's repulsion for a 2-D embedding, on a grid: ``_fitsne`` calls ``repulsion``.

Unit charges are spread onto a grid with Lagrange interpolation, convolved with the Cauchy kernel
by FFT, and interpolated back.

References:
  Linderman, Rachh, Hoskins, Steinerberger and Kluger, "Fast interpolation-based t-SNE for improved
  visualization of single-cell RNA-seq data", Nature Methods 16 (2019), Eqs. 5-9.
"""

import jax
import jax.numpy as jnp
import numpy as np


def _lagrange_weights(t, p):
    """Weights of the ``p`` equispaced nodes ``(l + 1/2) / p`` at ``t`` in [0, 1]: (..., p)."""
    nodes = [(i + 0.5) / p for i in range(p)]  # Python floats: weakly typed, t keeps its dtype
    cols = []
    for j in range(p):
        w = jnp.ones_like(t)
        for m in range(p):
            if m != j:
                w = w * (t - nodes[m]) / (nodes[j] - nodes[m])
        cols.append(w)
    return jnp.stack(cols, axis=-1)


def _kernels(offsets_x, offsets_y):
    """``(K, G_x, G_y)`` at offsets: the Cauchy kernel and ``-grad K / 2 = d K^2``."""
    cauchy = 1.0 / (1.0 + offsets_x * offsets_x + offsets_y * offsets_y)
    c2 = cauchy * cauchy
    return jnp.stack([cauchy, offsets_x * c2, offsets_y * c2])


def _kernel_hats(width, *, num_boxes, num_nodes):
    """The spectra ``(K^, G_x^, G_y^)`` of the kernels, from one real transform.

    The grid is zero-padded to ``2g x 2g`` nodes of spacing ``width / p``; half spectra, as ``rfft2``.

    ``K`` is even in both axes, so its spectrum is real; ``G_x`` (``G_y``) is odd in x (y) and
    even in the other axis, so its spectrum is imaginary and odd in k_x (k_y). The spectrum of
    ``K + G_x + G_y`` therefore splits back into the three by real part and parity.
    """
    g = num_boxes * num_nodes
    f = 2 * g
    # Circulant order: index m is offset m (m < g) or m - 2g; |offset| <= g - 1 is all a
    # linear convolution of a g-point grid needs, so offset -g (index g) is free: zero there
    # keeps G_x, G_y exactly odd.
    index = jnp.arange(f)
    offs = jnp.where(index < g, index, index - f).astype(width.dtype) * (width / num_nodes)
    kern = _kernels(offs[:, None], offs[None, :])
    odd_x = jnp.where(index[:, None] == g, 0.0, kern[1])
    odd_y = jnp.where(index[None, :] == g, 0.0, kern[2])
    spec = _spectrum(kern[0] + odd_x + odd_y)  # (g + 1, f)
    k_hat = jnp.real(spec).astype(spec.dtype)
    odd = spec - k_hat
    gx_hat = 0.5 * (odd - jnp.roll(odd[:, ::-1], 1, axis=1))  # the part odd in k_x
    return jnp.stack([k_hat, gx_hat, odd - gx_hat])


# XLA:CPU transforms along a leading axis run ~5x slower than along the last one (measured at
# 960 x 960), so the 2-D transforms below are 1-D ones along the last axis with explicit
# transposes. Spectra are laid out (k_y in [0, f/2], k_x in [0, f)).
def _spectrum(a, *, f=None):
    """``rfft2`` of real ``a`` (x, y), zero-padded to ``f x f``, as (k_y, k_x)."""
    f = a.shape[0] if f is None else f
    return _complex_fft(jnp.fft.rfft(a, n=f, axis=-1).T, n=f)


def _inverse_corner(spec, g):
    """The ``g x g`` corner (x, y) of the inverse of spectra ``(..., f/2 + 1, f)``."""
    f = spec.shape[-1]
    a = _complex_fft(spec, inverse=True)[..., :g]  # (..., k_y, x)
    return jnp.fft.irfft(jnp.swapaxes(a, -1, -2), n=f, axis=-1)[..., :g]


_ROWS = 16  # float32 lanes of AVX-512: ducc's vector width for complex64 transforms on x86


def _complex_fft(x, *, n=None, inverse=False):
    """``jnp.fft.fft`` (``ifft``) along the last axis, over a batch of rows padded to a multiple of 16.

    Why: XLA:CPU's complex transforms (ducc) take rows 16 at a time in SIMD and the rest one at a
    time, and how rows fall to threads varies from call to call: with a batch not a multiple of 16,
    a few rows round differently run to run (2e-5 relative on 601 x 1200; measured, 2026-12-02)
    and t-SNE's chaotic descent made two runs with one key differ by 0.8 after 750 iterations.
    The real transforms (``rfft``, ``irfft``) measured deterministic. Zero rows cost at most 15
    extra transforms.
    """
    lead, width = x.shape[:-1], x.shape[-1]
    rows = int(np.prod(lead))
    flat = x.reshape(rows, width)
    pad = -rows % _ROWS
    if pad:
        flat = jnp.pad(flat, ((0, pad), (0, 0)))
    out = (jnp.fft.ifft if inverse else jnp.fft.fft)(flat, n=n, axis=-1)[:rows]
    return out.reshape(*lead, out.shape[-1])


def _repulsion_grid(y, lo, width, hats, *, num_boxes, num_nodes):
    """The repulsion on a grid of ``num_boxes`` boxes of side ``width`` from the corner ``lo`` ``(2,)``.

    ``hats`` are the kernels' spectra from ``_kernel_hats(width)``.

    Unit charges are spread onto the grid (``num_nodes`` Lagrange nodes per box and side),
    convolved by FFT, and interpolated back. The kernel ``G = d K^2`` gives the repulsion
    directly and ``Z`` is ``charges . (K * charges)`` by Parseval: one forward, two inverse
    (skipping the unused half) and one kernel transform per iteration, where FIt-SNE's charges
    ``(1, y, |y|^2)`` need 4 + 4 + 1 and cancel large terms in ``Z``.
    """
    p, nb = num_nodes, num_boxes
    g = nb * p
    f = 2 * g
    u = (y - lo[None, :]) / width
    box = jnp.clip(jnp.floor(u), 0, nb - 1)
    w = _lagrange_weights(u - box, p)  # (n, 2, p)
    w2 = w[:, 0, :, None] * w[:, 1, None, :]  # (n, p, p)
    box = box.astype(jnp.int32)
    flat_box = box[:, 0] * nb + box[:, 1]
    charges = jax.ops.segment_sum(w2, flat_box, num_segments=nb * nb)  # (nb*nb, p, p)
    charges = charges.reshape(nb, nb, p, p).transpose(0, 2, 1, 3).reshape(g, g)

    c_hat = _spectrum(charges, f=f)  # (g + 1, f)
    row_weight = jnp.full(g + 1, 2.0, y.dtype).at[0].set(1.0).at[g].set(1.0)
    grid_z = jnp.sum(jnp.real(hats[0]) * (jnp.abs(c_hat) ** 2) * row_weight[:, None]) / (f * f)
    fields = _inverse_corner(hats[1:] * c_hat[None], g)  # (2, g, g)

    fields = fields.reshape(2, nb, p, nb, p).transpose(1, 3, 0, 2, 4).reshape(nb * nb, 2, p, p)
    rep = jnp.einsum("nkab,nab->nk", fields[flat_box], w2)

    # Each point also sees its own charge through the grid (spread, convolved, interpolated
    # back): subtract that interpolated self-interaction exactly (not just K(0) = 1, G(0) = 0).
    # It involves the kernels at offsets within one box only.
    local = (np.arange(p)[:, None] - np.arange(p)[None, :]).astype(np.float32) * (width / p)
    near = _kernels(local[:, None, :, None], local[None, :, None, :])  # (3, p, p, p, p)
    self_field = jnp.einsum("nab,kabcd,ncd->nk", w2, near, w2)
    return rep - self_field[:, 1:], grid_z - jnp.sum(self_field[:, 0])


def repulsion(y: jax.Array, *, num_boxes: int, num_nodes: int = 3) -> tuple[jax.Array, jax.Array]:
    """``(sum_j (q^u_ij)^2 (y_i - y_j) (n, 2), Z = sum_{i != j} q^u_ij)`` on a grid fitted to ``y``.

    Args:
      y: ``(n, 2)`` embedding.
      num_boxes: boxes per side (static: one compilation per value).
      num_nodes: interpolation nodes per box and side.

    Returns:
      The repulsive forces ``(n, 2)`` and the normaliser ``Z`` (scalar).

    Examples:
      >>> y = jax.random.normal(jax.random.key(0), (200, 2))
      >>> rep, z = repulsion(y, num_boxes=8)
      >>> rep.shape, bool(z > 0)
      ((200, 2), True)
    """
    width = jnp.maximum((jnp.max(y) - jnp.min(y)) / num_boxes, 1e-6)
    hats = _kernel_hats(width, num_boxes=num_boxes, num_nodes=num_nodes)
    # The grid is refitted to the embedding every iteration (as FIt-SNE). Keeping a grid, and
    # its kernel spectra, for a few iterations (1 % wider) measured KL +3 % at n = 10k even with
    # sub-node shifts of its origin: a still grid's interpolation error acts as a fixed force.
    return _repulsion_grid(
        y, jnp.full((2,), jnp.min(y)), width, hats, num_boxes=num_boxes, num_nodes=num_nodes
    )
