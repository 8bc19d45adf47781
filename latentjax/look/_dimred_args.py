"""Argument helpers shared by ``tsne`` and ``umap``: the float dtype to compute in, positive numbers."""

import math

import jax
import numpy as np

from latentjax import _checks
from latentjax.errors import InputError


def float_dtype(*dtypes) -> np.dtype:
    """The float dtype to compute in: the inputs' promoted float dtype, at least float32.

    float64 stays float64 when JAX's x64 is enabled, as do integers (the default float); bools and
    float16 give float32.

    Examples:
      >>> float_dtype(np.int32), float_dtype(np.float16, np.float32)
      (dtype('float32'), dtype('float32'))
    """
    # numpy's promotion (JAX's would warn about float64 without x64), then JAX's canonical dtype.
    return jax.dtypes.canonicalize_dtype(np.result_type(*dtypes, np.float32))


def positive(v, name: str, *, where: str, minimum: float = 0.0, inclusive: bool = False) -> float:
    """A finite Python float above ``minimum`` (or at least it, ``inclusive``) from ``v``.

    Examples:
      >>> positive(np.float32(2.5), "perplexity", where="look.tsne.affinities")
      2.5
      >>> positive(float("nan"), "perplexity", where="look.tsne.affinities")
      Traceback (most recent call last):
      ...
      latentjax.errors.InputError: look.tsne.affinities: perplexity must be a finite number > 0, got nan
    """
    if _checks.is_traced(v):
        raise InputError(f"{where}: {name} must be a concrete number, got a traced value")
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
    if isinstance(v, (bool, np.bool_)) or np.ndim(v) != 0:
        raise InputError(f"{where}: {name} must be a finite number {bound}, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {name} must be a finite number {bound}, got {v!r}") from None
    if not math.isfinite(f) or f < minimum or (f == minimum and not inclusive):
        raise InputError(f"{where}: {name} must be a finite number {bound}, got {f:g}")
    return f
