"""t-SNE's attractive force as a C++ kernel on XLA:CPU (``_tsne_attraction.cc``).

Why: the attraction over ``P``'s edges is a gather of the neighbours' coordinates, a few flops per
edge and a row sum. XLA:CPU fuses the gather into a row reduction it does not vectorise: at 70,000
points (6.3 million edges, Fashion-MNIST, perplexity 30) it took 34 ms of a 42 ms step, seven
times the repulsion on a 90-box grid. Laying the gathers out first, with optimisation barriers,
scalar or packed gathers, or a transposed layout, measured no faster (71-127 ms for the attraction
alone). The kernel walks ``P``'s pieces row by row on XLA's own thread pool.

Where: :func:`available` is the chooser (CPU only; the kernel is built on first use and cached,
see ``latentjax/_native.py``); ``_fitsne._attraction`` calls :func:`attraction` where it is
available and the embedding is float32, and computes the same sum in XLA elsewhere (GPU, TPU,
float64, no compiler, or ``LATENTJAX_TSNE_KERNEL=0``).
"""

from __future__ import annotations

from pathlib import Path

import jax

from latentjax import _native

# The kernel's per-row accumulator (``_tsne_attraction.cc``).
MAX_COMPONENTS = 16


_KERNELS = _native.Kernels(
    Path(__file__).with_name("_tsne_attraction.cc"),
    "tsne_attraction",
    ["LatentjaxTsneAttraction"],
    what="t-SNE's attraction kernel",
    env="LATENTJAX_TSNE_KERNEL",
)


# The chooser (``test_platform_choices``): why not / whether on a backend (default: JAX's).
unavailable_reason = _KERNELS.unavailable_reason
available = _KERNELS.available


def attraction(y: jax.Array, owner: jax.Array, cols: jax.Array, weights: jax.Array) -> jax.Array:
    """``sum_j p_ij (y_i - y_j) / (1 + |y_i - y_j|^2)`` ``(n, e)`` from ``P``'s pieces (float32).

    Args:
      y: float32 ``(n, e)`` embedding, ``e <= MAX_COMPONENTS``.
      owner: ``_fitsne.Pieces.owner``, int32 ``(v,)``, sorted.
      cols: ``_fitsne.Pieces.cols``, int32 ``(v, width)``.
      weights: ``_fitsne.Pieces.weights``, float32 ``(v, width)``.

    Returns:
      The attraction, float32 ``(n, e)``.
    """
    spec = jax.ShapeDtypeStruct(y.shape, y.dtype)
    return jax.ffi.ffi_call("LatentjaxTsneAttraction", spec, vmap_method="sequential")(
        y, owner, cols, weights
    )
