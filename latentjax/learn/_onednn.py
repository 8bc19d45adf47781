"""3x3 convolutions through oneDNN for the conv models' training step on CPU.

Why: XLA:CPU 0.10.2 runs convolutions with Eigen (or YNNPACK), whose backward passes are 1.5-2x
slower than oneDNN's for the conv VAE's layers (measured per layer at batch 256 on 2 cores: the
14x14 32->128 conv takes 12 + 15 + 21 ms forward / input-gradient / weight-gradient in XLA and
11 + 9 + 10 ms in oneDNN). XLA's own oneDNN convolution path is not compiled into the jaxlib
wheels, and no formulation in plain JAX (patches + dot, space-to-depth, shifted slices) was faster
(``benchmarks/README.md``). So the three kernels are called through XLA's FFI.

How: ``_onednn_conv.cc`` (next to this file) is compiled with the system C++ compiler against
jaxlib's FFI headers and the oneDNN wheels (``pip install 'latentjax[onednn]'``) on first use,
cached under ``$LATENTJAX_CACHE_DIR`` (default ``~/.cache/latentjax``) by a hash of the source,
and registered as XLA FFI targets. Nothing here is needed: without a compiler or the wheels,
:func:`available` is False (:func:`unavailable_reason` says why) and the models use XLA's
convolutions, as on GPU.

Scope: :func:`conv` is one example's ``(h, w, c)`` convolution like ``lax.conv_general_dilated``
with SAME padding, with a custom VJP and a custom vmap rule that turns the vmapped batch into
oneDNN's batch. It is used only inside :func:`enabled` (``train.make_step`` enters it while
tracing a single-device step), because a custom VJP has no forward-mode derivative (``jacfwd``
through a decoder, as the geodesics use, needs the plain path), and an opaque call cannot be
partitioned across devices. Weights that are themselves vmapped (population training) take the
plain path.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from latentjax import _native
from latentjax.errors import InputError

_SRC = Path(__file__).with_name("_onednn_conv.cc")
_TARGETS = ("LatentjaxConvFwd", "LatentjaxConvBwdData", "LatentjaxConvBwdWeights")
# the layouts of every 3x3 convolution here: one-image NHWC maps, HWIO kernels
DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
_state = threading.local()


def _roots() -> list[Path]:
    """Prefixes that may hold oneDNN's ``include/`` and ``lib/`` (where pip puts the wheels' data)."""
    env = os.environ.get("LATENTJAX_ONEDNN_ROOT")
    roots = [Path(env)] if env else []
    roots += [Path(sys.prefix), Path(sys.base_prefix), Path("/usr/local"), Path("/usr")]
    return list(dict.fromkeys(roots))


def _find_onednn() -> tuple[Path, Path] | str:
    for root in _roots():
        inc, lib = root / "include", root / "lib"
        if (inc / "oneapi" / "dnnl" / "dnnl.hpp").is_file() and any(lib.glob("libdnnl.so*")):
            return inc, lib
    return (
        "oneDNN headers and library not found under "
        + ", ".join(map(str, _roots()))
        + " (pip install 'latentjax[onednn]')"
    )


def _build() -> Path | str:
    """The compiled library's path, building it if needed; or why it cannot be built."""
    found = _find_onednn()
    if isinstance(found, str):
        return found
    inc, lib = found
    return _native.build(
        _SRC, "onednn_conv", [f"-I{inc}", "-fopenmp"], [f"-L{lib}", "-ldnnl", "-fopenmp", f"-Wl,-rpath,{lib}"]
    )


@functools.cache
def _load() -> str | None:
    """Build, load and register the kernels once per process; ``None``, or why not."""
    if os.environ.get("LATENTJAX_ONEDNN", "1") == "0":
        return "disabled by LATENTJAX_ONEDNN=0"
    built = _build()
    if isinstance(built, str):
        return built
    return _native.register(built, _TARGETS)


def unavailable_reason(backend: str | None = None) -> str | None:
    """Why the oneDNN kernels cannot be used here, or ``None`` when they can.

    The first call on CPU builds and loads the kernels (a few seconds; then cached on disk); on
    another backend nothing is built: they are CPU kernels.

    Args:
      backend: the backend the kernels would run on (default: JAX's default backend).

    Returns:
      A one-line reason (not CPU, no compiler, no oneDNN wheels, disabled by
      ``LATENTJAX_ONEDNN=0``, ...), or None.

    Examples:
      >>> unavailable_reason("gpu")
      'the oneDNN kernels are CPU kernels; the backend is gpu'
    """
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return f"the oneDNN kernels are CPU kernels; the backend is {backend}"
    return _load()


def available(backend: str | None = None) -> bool:
    """Whether the oneDNN kernels can be used on ``backend`` (see :func:`unavailable_reason`).

    Args:
      backend: the backend (default: JAX's default backend); only ``"cpu"`` can be True.

    Returns:
      True when the backend is CPU and the kernels are built and registered.

    Examples:
      >>> available() == (unavailable_reason() is None), available("tpu")
      (True, False)
    """
    return unavailable_reason(backend) is None


@contextlib.contextmanager
def enabled(on: bool = True):
    """A context: the conv layers (``learn/_conv.py``) traced inside it call :func:`conv`.

    Args:
      on: False leaves the plain XLA convolutions on (for a caller that decides at run time).

    Returns:
      A context manager.

    Raises:
      InputError: ``on`` but the kernels are unavailable (the message says why).

    Examples:
      >>> with enabled(False):
      ...     active()
      False
    """
    if on and not available():
        raise InputError(f"_onednn.enabled: the oneDNN kernels are unavailable: {unavailable_reason()}")
    before = getattr(_state, "on", False)
    _state.on = on
    try:
        yield
    finally:
        _state.on = before


def active() -> bool:
    """Whether this thread is inside ``enabled(True)`` (read while a conv layer is traced).

    Returns:
      The flag.

    Examples:
      >>> active()
      False
    """
    return getattr(_state, "on", False)


def _out_shape(x_shape, co: int, stride: int) -> tuple[int, ...]:
    *lead, h, w, _ = x_shape
    return (*lead, -(-h // stride), -(-w // stride), co)


def _fwd_call(x, w, stride):
    spec = jax.ShapeDtypeStruct(_out_shape(x.shape, w.shape[-1], stride), x.dtype)
    return jax.ffi.ffi_call(_TARGETS[0], spec, vmap_method="expand_dims")(x, w, stride=np.int64(stride))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_batch(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    """SAME 3x3 convolution of a float32 ``(n, h, w, ci)`` batch with ``(3, 3, ci, co)`` weights.

    Args:
      x: float32 images ``(n, h, w, ci)``.
      w: float32 weights ``(3, 3, ci, co)``.
      stride: 1 or 2.

    Returns:
      ``(n, ceil(h / stride), ceil(w / stride), co)``; differentiable (reverse mode).

    Examples:
      >>> conv_batch(jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 3, 4)), 2).shape  # doctest: +SKIP
      (2, 4, 4, 4)
    """
    return _fwd_call(x, w, stride)


def _conv_batch_fwd(x, w, stride):
    return _fwd_call(x, w, stride), (x, w)


def _conv_batch_bwd(stride, res, g):
    x, w = res
    dx = jax.ffi.ffi_call(_TARGETS[1], jax.ShapeDtypeStruct(x.shape, x.dtype))(g, w, stride=np.int64(stride))
    dw = jax.ffi.ffi_call(_TARGETS[2], jax.ShapeDtypeStruct(w.shape, w.dtype))(x, g, stride=np.int64(stride))
    return dx, dw


conv_batch.defvjp(_conv_batch_fwd, _conv_batch_bwd)


def _lax_conv(x, w, stride):
    return jax.lax.conv_general_dilated(
        x[None], w, (stride, stride), "SAME", dimension_numbers=DIMENSION_NUMBERS
    )[0]


@functools.cache
def _per_example(stride: int):
    @custom_vmap
    def conv1(x, w):
        return conv_batch(x[None], w, stride)[0]

    @conv1.def_vmap
    def _rule(axis_size, in_batched, x, w):
        x_batched, w_batched = in_batched
        if w_batched or not x_batched:  # per-example weights (a population): the plain conv
            x = x if x_batched else jnp.broadcast_to(x, (axis_size, *x.shape))
            w = w if w_batched else jnp.broadcast_to(w, (axis_size, *w.shape))
            return jax.vmap(lambda a, b: _lax_conv(a, b, stride))(x, w), True
        return conv_batch(x, w, stride), True

    return conv1


def conv(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """One image's SAME 3x3 convolution through oneDNN; vmapped, one oneDNN call for the batch.

    Args:
      x: one float32 image ``(h, w, ci)``.
      w: float32 weights ``(3, 3, ci, co)`` (vmapped weights take XLA's convolution).
      stride: 1 or 2.

    Returns:
      ``(ceil(h / stride), ceil(w / stride), co)``.

    Raises:
      InputError: ``x`` is not one image or ``w`` not a 3x3 kernel over its channels.

    Examples:
      >>> conv(jnp.ones((8, 8, 3)), jnp.ones((3, 3, 3, 4))).shape  # doctest: +SKIP
      (8, 8, 4)
    """
    if x.ndim != 3 or w.shape[:2] != (3, 3) or w.shape[2] != x.shape[-1]:
        raise InputError(
            f"_onednn.conv: expected (h, w, c) images and (3, 3, c, co) weights, got {x.shape} and {w.shape}"
        )
    return _per_example(int(stride))(x, w)
