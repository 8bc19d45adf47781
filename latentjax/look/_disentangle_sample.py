"""Sampling for the disentanglement metrics: factors from a ground-truth set, codes from a representation.

disentanglement_lib draws one mini-batch at a time with a numpy ``RandomState``; here every
factor of a metric is drawn at once from a JAX key, and images are drawn and represented in
chunks (``chunk_size`` images per call of ``represent``), so the numbers of points are its own
but the draws are not its stream.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from latentjax import _checks
from latentjax.errors import InputError


def represent_factors(
    key: jax.Array, data, represent: Callable, factors: np.ndarray, *, chunk_size: int, where: str
) -> np.ndarray:
    """Codes ``(n, d)`` float64 of the images of ``factors`` ``(n, num_factors)``, drawn in chunks."""
    out = []
    for i, start in enumerate(range(0, len(factors), chunk_size)):
        obs = data.sample_observations_from_factors(
            jax.random.fold_in(key, i), factors[start : start + chunk_size]
        )
        codes = np.asarray(represent(obs))
        if codes.ndim != 2 or codes.shape[0] != len(obs):
            raise InputError(
                f"{where}: represent must map {len(obs)} images to ({len(obs)}, d) codes, got {codes.shape}"
            )
        out.append(_checks.array(codes, "represent(images)", where=where, ndim=2))
    return np.concatenate(out).astype(np.float64)


def factors_and_codes(
    key: jax.Array, data, represent: Callable, num_points: int, *, chunk_size: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(codes (n, d), factors (n, num_factors))`` for ``num_points`` uniformly drawn factors."""
    k_factors, k_obs = jax.random.split(key)
    factors = np.asarray(data.sample_factors(k_factors, num_points))
    return represent_factors(k_obs, data, represent, factors, chunk_size=chunk_size, where=where), factors


def fixed_factor_batches(
    key: jax.Array, data, num_points: int, batch_size: int, *, pairs: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Factors that share one randomly chosen factor: ``(fixed (num_points,), factors)``.

    ``pairs=False`` (FactorVAE score): ``factors`` ``(num_points, batch_size, k)``, every row of a
    batch holding its first row's value of factor ``fixed``. ``pairs=True`` (beta-VAE score):
    ``(num_points, 2, batch_size, k)``, the second batch taking the first's value of ``fixed``
    row by row.
    """
    k = len(data.factor_sizes)
    k_fixed, k_factors = jax.random.split(key)
    fixed = np.random.default_rng(np.asarray(jax.random.key_data(k_fixed)).ravel().tolist()).integers(
        0, k, num_points
    )
    shape = (num_points, 2 if pairs else 1, batch_size, k)
    f = np.asarray(data.sample_factors(k_factors, int(np.prod(shape[:3])))).reshape(shape)
    rows = np.arange(num_points)
    if pairs:
        f[rows, 1, :, fixed] = f[rows, 0, :, fixed]
        return fixed, f
    f = f[:, 0]
    f[rows, :, fixed] = f[rows, 0, fixed][:, None]
    return fixed, f


def check_counts(where: str, **counts: int) -> None:
    """Each count must be a Python integer >= 1."""
    for name, v in counts.items():
        _checks.index(v, name, where=where, minimum=1)
