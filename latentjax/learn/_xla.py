"""The XLA compiler options latentjax compiles its own programs with, and ``jit`` with them.

Training steps (``train``, ``parallel``, ``population``) and batched inference
(``models.encode_images``, ``train.evaluate``) compile through ``jit``/``lazy_jit`` here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp

# XLA:CPU runs dot products through YNNPACK when asked, one dot per library call; measured on the
# 2-core dev VM (jax 0.10.2, benchmarks/README.md): the MLP VAE step at batch 128 3.1 -> 2.4 ms,
# the conv VAE at batch 256 342 -> 221 ms, with float32 results equal to the default path to
# rounding. (The option replaces XLA's default YNNPACK fusion list, in which convolutions go to
# YNNPACK; they then go to Eigen, 2-3x faster for the conv VAE's layers, e.g. 14x14x32->128 at
# batch 256: forward 26 -> 11 ms, kernel gradient 64 -> 20 ms.) The option is experimental in XLA,
# so it is scoped to latentjax's own programs (training steps, batched encoding and evaluation; not
# set globally), and ``LATENTJAX_XLA_YNN=0`` turns it off. t-SNE and UMAP were measured with it and
# gain nothing (10k Fashion-MNIST: 8.0 vs 8.1 s, 1.74 vs 1.71 s), so they keep XLA's defaults.
# Since ``train.make_scan`` unrolls its scan by 2, the MLP VAE step is as fast with XLA's default dots
# (benchmarks/README.md, the ``latentjax_xla_default`` rows); the option stays for the conv models.
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def compiler_options(backend: str | None = None) -> dict | None:
    """The XLA options of latentjax's training steps and batched inference: YNNPACK dots on CPU.

    Passed as ``jax.jit(..., compiler_options=...)``; nothing on other backends, and nothing when
    ``LATENTJAX_XLA_YNN=0`` or this jaxlib does not know the option.

    Args:
      backend: the backend to compile for (default: JAX's default backend).

    Returns:
      A dict of options, or None.

    Examples:
      >>> compiler_options("gpu") is None
      True
      >>> sorted(compiler_options("cpu"))  # doctest: +SKIP
      ['xla_cpu_experimental_ynn_fusion_type']
    """
    backend = backend or jax.default_backend()
    if backend != "cpu" or os.environ.get("LATENTJAX_XLA_YNN", "1").strip().lower() in (
        "0",
        "false",
        "no",
        "off",
    ):
        return None
    return dict(_CPU_OPTIONS) if _cpu_options_accepted() else None


@functools.cache
def _cpu_options_accepted() -> bool:
    """Whether this jaxlib's XLA knows the option (it is experimental: a later one may rename it)."""
    try:
        jax.jit(lambda x: x @ x, compiler_options=_CPU_OPTIONS).lower(jnp.ones((2, 2))).compile()
    except Exception:  # noqa: BLE001  (XLA reports an unknown option or enum value as a runtime error)
        return False
    return True


def jit(fun: Callable, **kwargs) -> Callable:
    """``jax.jit`` with ``compiler_options()``: how latentjax compiles every training step.

    Args:
      fun: the function.
      **kwargs: more ``jax.jit`` arguments (``donate_argnums``, shardings, ...).

    Returns:
      The jitted function.

    Examples:
      >>> jit(lambda x: 2 * x)(1.0).item()
      2.0
    """
    return jax.jit(fun, compiler_options=compiler_options(), **kwargs)


def lazy_jit(fun: Callable | None = None, **kwargs) -> Callable:
    """``jit(fun, **kwargs)``, built at the first call: a module-level decorator that starts no JAX.

    Initialising JAX's backend at import would fix the device count before
    ``jax.distributed.initialize`` or ``XLA_FLAGS`` could act. Used for latentjax's batched
    inference (``models.encode_images``, ``train.evaluate``): with the CPU options a conv VAE
    encodes 10k images in 0.39 s instead of 0.56 s, and evaluates 5k in 2.0 s instead of 3.1 s (dev
    VM); the convolutions otherwise go to YNNPACK (see ``_CPU_OPTIONS``).

    Args:
      fun: the function (None: returns a decorator taking it).
      **kwargs: more ``jax.jit`` arguments.

    Returns:
      A function that compiles ``fun`` on its first call.

    Examples:
      >>> @lazy_jit
      ... def double(x):
      ...     return 2 * x
      >>> double(1.0).item()
      2.0
    """
    if fun is None:
        return functools.partial(lazy_jit, **kwargs)
    compiled = None

    @functools.wraps(fun)
    def call(*args, **kw):
        nonlocal compiled
        if compiled is None:
            compiled = jit(fun, **kwargs)
        return compiled(*args, **kw)

    return call
