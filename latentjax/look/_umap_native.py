"""UMAP's layout epochs as a C++ kernel on XLA:CPU (``_umap_layout.cc``).

Why: an epoch of ``_umap_kernels.layout_step`` steps every vertex through its own SGD walk (its
fired edges, each followed by its share of negative draws), one step of all vertices at a time;
on XLA:CPU each of those ``max(fired) + m`` steps is a loop iteration of gathers and masked
kernel evaluations over all ``n`` vertices. The kernel runs the same epochs (each vertex against
the positions at the epoch's start, the same negative samples from the same seeds), walks each
vertex only through its own steps, 64 vertices to a SIMD lane group sorted by their number of
fired edges, and spreads the vertices over XLA's thread pool: the result does not depend on the
threads. It differs from the XLA path only by float rounding (``exp``/``log`` from the C
library's vector functions instead of XLA's approximations).

Where: :func:`available` is the chooser (CPU only, float32, built on first use and cached, see
``latentjax/_native.py``; ``LATENTJAX_UMAP_KERNEL=0`` turns it off); ``_umap_kernels.run`` calls
:func:`run` where it is available and computes the epochs in XLA elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from latentjax import _native

MAX_COMPONENTS = 16  # the kernel's per-vertex accumulators (``_umap_layout.cc``)

_KERNELS = _native.Kernels(
    Path(__file__).with_name("_umap_layout.cc"),
    "umap_layout",
    ["LatentjaxUmapLayout", "LatentjaxUmapTransform"],
    what="UMAP's layout kernel",
    env="LATENTJAX_UMAP_KERNEL",
    flags=_native.vector_flags(avx512=True),
    link_flags=["-lmvec"],
)


# The chooser (``test_platform_choices``): why not / whether on a backend (default: JAX's).
unavailable_reason = _KERNELS.unavailable_reason
available = _KERNELS.available


def run(yt, epoch, seeds, sched, hyper, *, decay_steps: int) -> jax.Array:
    """``len(seeds)`` layout epochs from ``yt`` ``(dim, n)`` float32 at ``epoch``; the new ``yt``.

    Args:
      yt: float32 positions ``(dim, n)``, ``dim <= MAX_COMPONENTS``.
      epoch: int32 scalar, the first epoch's number.
      seeds: uint32 ``(steps,)``, each epoch's negative-sampling seed.
      sched: the ``_umap_kernels.Schedule``.
      hyper: float32 ``(4,)``: ``a``, ``b``, ``gamma``, learning rate.
      decay_steps: the learning rate's decay length.

    Returns:
      The positions after the epochs, float32 ``(dim, n)``.
    """
    m = sched.negative_weight.shape[1]
    call = jax.ffi.ffi_call(
        "LatentjaxUmapLayout", jax.ShapeDtypeStruct(yt.shape, yt.dtype), vmap_method="sequential"
    )
    return call(
        yt,
        jnp.asarray(epoch, jnp.int32),
        seeds,
        sched.head,
        sched.tail,
        sched.rate,
        sched.negative_weight[:, 0],
        hyper,
        m=np.int64(m),
        decay_steps=np.int64(decay_steps),
    )


def transform(y0, reference, graph, seeds, hyper, *, negative_sample_rate: int) -> jax.Array:
    """``len(seeds)`` epochs of ``_umap_transform``'s layout: the new points' final positions.

    Args:
      y0: float32 ``(m, dim)`` starting positions of the new points, ``dim <= MAX_COMPONENTS``.
      reference: float32 ``(n, dim)`` the fitted map, held fixed.
      graph: ``_umap_transform.Edges`` (``cols``, ``weights``, ``rate``, each ``(m, k)``).
      seeds: uint32 ``(steps,)``, each epoch's negative-sampling seed; ``steps`` is also the
        learning rate's decay length.
      hyper: float32 ``(4,)``: ``a``, ``b``, ``gamma``, learning rate.
      negative_sample_rate: reference points drawn per firing edge.

    Returns:
      float32 ``(m, dim)``.
    """
    call = jax.ffi.ffi_call(
        "LatentjaxUmapTransform", jax.ShapeDtypeStruct(y0.shape, jnp.float32), vmap_method="sequential"
    )
    return call(
        y0,
        reference,
        graph.cols.astype(jnp.int32),
        graph.weights.astype(jnp.float32),
        graph.rate.astype(jnp.float32),
        seeds,
        hyper,
        nsr=np.int64(negative_sample_rate),
        num_steps=np.int64(seeds.shape[0]),
    )
