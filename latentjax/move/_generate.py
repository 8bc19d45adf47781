"""Latents to generate from: draws from the prior and regular 2-D grids to decode into one figure."""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax.errors import InputError


def sample_prior(key: jax.Array, *, latent_dim: int, temperature: float = 1.0) -> jax.Array:
    """Draw one latent from the standard normal prior, scaled by ``temperature``.

    Temperatures below 1 trade diversity for typical-looking samples (Kingma & Dhariwal 2018).

    Args:
        key: a ``jax.random.key``.
        latent_dim: size of the latent.
        temperature: standard deviation of the draw.

    Returns:
        ``(latent_dim,)`` latent; decode it with ``models.decode(model, z)``.

    Examples:
        >>> z = sample_prior(jax.random.key(0), latent_dim=4, temperature=0.7)
        >>> z.shape
        (4,)

    References:
        Kingma & Welling 2014, "Auto-Encoding Variational Bayes"; Kingma & Dhariwal 2018,
        "Glow" (Sec. 5, reduced-temperature sampling).
    """
    return temperature * jax.random.normal(key, (latent_dim,))


def grid_2d(
    *,
    size: int = 8,
    span: float = 2.0,
    latents: ArrayLike | None = None,
    latent_dim: int | None = None,
) -> jax.Array:
    """A ``size x size`` grid of latents to decode into one figure.

    With ``latent_dim=2`` (and no ``latents``) the grid covers ``[-span, span]^2`` of the prior
    (in prior standard deviations). With ``latents`` of shape ``(n, d)`` it is centred on their
    mean and spans ``+-span`` standard deviations along their two principal directions, so it also
    works for a higher-dimensional latent space.

    Args:
        size: points per side.
        span: half-width of the grid, in standard deviations.
        latents: optional ``(n, d)`` encoded latents defining the principal plane.
        latent_dim: 2 when no ``latents`` are given.

    Returns:
        ``(size, size, d)`` latents; row ``i`` moves along the second direction (top = positive),
        column ``j`` along the first.

    Raises:
        InputError: no ``latents`` and ``latent_dim != 2``, or ``latents`` not ``(n >= 3, d >= 2)``.

    Examples:
        >>> grid_2d(size=3, latent_dim=2)[0, 0]
        Array([-2.,  2.], dtype=float32)

    References:
        Kingma & Welling 2014, Fig. 4 (learned 2-D manifolds); Pearson 1901 (principal axes).
    """
    steps = jnp.linspace(-span, span, size)
    if latents is None:
        if latent_dim != 2:
            raise InputError(
                f"move.grid_2d: without latents the latent space must be 2-D, got latent_dim={latent_dim}"
            )
        center = jnp.zeros(2)
        axes = jnp.eye(2)
    else:
        latents = jnp.asarray(latents, dtype=jnp.float32)
        if latents.ndim != 2 or latents.shape[0] < 3 or latents.shape[1] < 2:
            raise InputError(f"move.grid_2d: latents must be (n>=3, d>=2), got shape {latents.shape}")
        center = latents.mean(axis=0)
        _, s, vt = jnp.linalg.svd(latents - center[None, :], full_matrices=False)
        std = s[:2] / jnp.sqrt(latents.shape[0] - 1.0)
        axes = vt[:2] * std[:, None]
    xs = steps[None, :, None] * axes[0][None, None, :]
    ys = steps[::-1][:, None, None] * axes[1][None, None, :]
    return center[None, None, :] + xs + ys
