"""The XLA compiler options latentjax compiles its own programs with, and ``jit`` with them.

Kept apart from ``train`` so that ``models`` can use them too (``train`` imports ``models``).
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
# Since ``train.make_run`` unrolls its scan by 2, the MLP VAE step is as fast with XLA's default dots
# (benchmarks/README.md, the ``latentjax_xla_default`` rows); the option stays for the conv models.
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def compiler_options(backend: str | None = None) -> dict | None:
    """The XLA compiler options latentjax compiles its training steps and batched inference with
    (``jax.jit(..., compiler_options=...)``): YNNPACK dots on CPU, nothing elsewhere.

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
    """``jax.jit`` with ``compiler_options()``: how latentjax compiles every training step."""
    # (``train.jit`` is this function.)
    return jax.jit(fun, compiler_options=compiler_options(), **kwargs)


def lazy_jit(fun: Callable | None = None, **kwargs) -> Callable:
    """``jit(fun, **kwargs)``, built at the first call: usable as a module-level decorator
    without initialising JAX's backend at import (which would fix the device count before
    ``jax.distributed.initialize`` or ``XLA_FLAGS`` could act).

    Used for latentjax's batched inference (``models.encode_images``, ``train.evaluate``): with
    the CPU options a conv VAE encodes 10k images in 0.39 s instead of 0.56 s, and evaluates 5k in
    2.0 s instead of 3.1 s (dev VM); the convolutions otherwise go to YNNPACK (see ``_CPU_OPTIONS``).
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
