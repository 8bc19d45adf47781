"""Argument helpers shared by ``tsne`` and ``umap``: the float dtype to compute in, positive numbers."""

import math

import numpy as np

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _distances

float_dtype = _distances.compute_dtype  # one dtype rule for every look module


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
