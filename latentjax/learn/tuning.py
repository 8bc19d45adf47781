"""What runs fastest here: the trainers' measured defaults by backend and model.

``choose_mode`` (how a segment of steps runs), ``default_microbatches`` and
``default_conv_kernels`` (how ``train.make_step`` computes a step). Each takes the backend it
decides for (default: JAX's default backend); the CPU-only choices are off on every other one
(``tests/learn/test_platform_choices.py`` asks each with "cpu", "gpu" and "tpu"). Each changes speed only: the
trajectory is the same (bit for bit across modes; to float rounding for the other two). The
numbers are from the 2-core dev VM (``benchmarks/train_throughput.py``).
"""

from __future__ import annotations

import jax

from latentjax.errors import InputError
from latentjax.learn import _onednn as onednn
from latentjax.learn import models

MODES = ("auto", "scan", "loop", "host")


def choose_mode(
    mode: str,
    config: models.Config,
    *,
    nbytes: int = 0,
    device_bytes_limit: int | None = None,
    backend: str | None = None,
) -> str:
    """How segments of steps run: ``mode`` itself, or the rule behind ``"auto"``.

    ``"scan"``: a segment as one ``lax.scan`` with the data set on the device (dense models; the
    fast path). ``"loop"``: a Python loop over the jitted step gathering batches on the device (conv
    models on CPU, where convolutions inside a rolled scan run about 30x slower: 1150 vs 36 ms per
    step). ``"host"``: host-fed batches, for a data set above ``device_bytes_limit``. ``"auto"`` picks
    host, loop or scan by those rules.

    Args:
      mode: ``"auto"``, ``"scan"``, ``"loop"`` or ``"host"``.
      config: the model.
      nbytes: the data set's size in bytes.
      device_bytes_limit: the most bytes to put on the device (None: no ``"host"`` mode, as for
        the multi-device trainers).
      backend: the backend the steps run on (default: JAX's default backend); ``"loop"`` is
        chosen on CPU only.

    Returns:
      ``"scan"``, ``"loop"`` or ``"host"``.

    Raises:
      InputError: an unknown ``mode`` (or ``"host"`` where there is no host mode).

    Examples:
      >>> choose_mode("auto", models.Config(arch="mlp"))
      'scan'
      >>> choose_mode("auto", models.Config(), nbytes=2**32, device_bytes_limit=2**31)
      'host'
      >>> choose_mode("auto", models.Config(arch="conv"), backend="cpu"), choose_mode(
      ...     "auto", models.Config(arch="conv"), backend="gpu")
      ('loop', 'scan')
    """
    modes = MODES if device_bytes_limit is not None else MODES[:3]
    if mode not in modes:
        raise InputError(f"tuning.choose_mode: mode must be one of {modes}, got {mode!r}")
    if mode != "auto":
        return mode
    if device_bytes_limit is not None and nbytes > device_bytes_limit:
        return "host"
    return "loop" if config.arch == "conv" and (backend or jax.default_backend()) == "cpu" else "scan"


def default_microbatches(config: models.Config, batch_size: int, backend: str | None = None) -> int:
    """2 for conv models on CPU at batch >= 256 (even), else 1: what ``train.fit`` uses by default.

    Conv VAE at batch 256: 1,471 -> 1,563 images/s with 2 slices, 1,567 with 4; the MLP VAE gains
    nothing (b1024) or loses (b128: 48.7k -> 39.3k with 2), and small conv batches have too little
    work to split.

    Args:
      config: the model.
      batch_size: images per step.
      backend: the backend (default: JAX's default backend).

    Returns:
      1 or 2.

    Examples:
      >>> default_microbatches(models.Config(arch="conv"), 256, "cpu")
      2
    """
    backend = backend or jax.default_backend()
    if config.arch == "conv" and backend == "cpu" and batch_size >= 256 and batch_size % 2 == 0:
        return 2
    return 1


def default_conv_kernels(config: models.Config, backend: str | None = None) -> str:
    """``"onednn"`` for float32 conv models on CPU when the kernels are available, else ``"xla"``.

    What ``train.fit`` uses by default. Conv VAE, batch 256, 2 microbatches: 152 -> 122 ms per
    step (``benchmarks/README.md``). The first use in a process builds the kernels (a few
    seconds, then cached on disk).

    Args:
      config: the model.
      backend: the backend (default: JAX's default backend).

    Returns:
      ``"onednn"`` or ``"xla"``.

    Examples:
      >>> default_conv_kernels(models.Config(arch="mlp"))
      'xla'
    """
    backend = backend or jax.default_backend()
    if config.arch == "conv" and config.compute_dtype == "float32" and onednn.available(backend):
        return "onednn"
    return "xla"
