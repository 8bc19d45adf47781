"""Does a path stay on the data? Each frame's distance to its nearest training image, and its sharpness."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax import data
from latentjax.errors import InputError
from latentjax.look import neighbors


class OnData(NamedTuple):
    """Per-frame on-data measures of a decoded path and their summaries, from `on_data_diagnostics`.

    Attributes:
        distance: ``(n,)`` root-mean-square pixel distance of each frame to its nearest training
            image (images in [0, 1]).
        nearest: ``(n,)`` int32 index of that training image.
        sharpness: ``(n,)`` mean absolute 5-point Laplacian of each frame (blur lowers it).
        saturation: ``(n,)`` fraction of each frame's pixels within ``margin`` of 0 or 1 (blur
            turns black-and-white into grey).
        mean_distance: mean of ``distance`` over the frames.
        excess: ``max(distance) - max(distance[0], distance[-1])``: how much farther from the data
            the farthest frame is than the farther endpoint (0 when no frame is).
        sharpness_ratio: mean ``sharpness`` of the interior frames over that of the two endpoints
            (1: as sharp as the endpoints; below: blurred on the way).
        mean_saturation: mean of ``saturation`` over the frames.

    Examples:
        >>> frames = np.zeros((3, 4, 4, 1), np.float32)
        >>> d = on_data_diagnostics(frames, np.zeros((2, 4, 4, 1), np.uint8))
        >>> float(d.excess), float(d.mean_saturation)
        (0.0, 1.0)
    """

    distance: jax.Array
    nearest: jax.Array
    sharpness: jax.Array
    saturation: jax.Array
    mean_distance: jax.Array
    excess: jax.Array
    sharpness_ratio: jax.Array
    mean_saturation: jax.Array


def _as_unit(images: np.ndarray) -> jax.Array:
    x = jnp.asarray(images)
    return x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x


def _laplacian_magnitude(x: jax.Array) -> jax.Array:
    """Mean ``|4 x_ij - x_(i+-1)j - x_i(j+-1)|`` over interior pixels and channels, per image ``(n,)``."""
    lap = 4.0 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return jnp.mean(jnp.abs(lap), axis=(1, 2, 3))


def on_data_diagnostics(
    frames: ArrayLike, train_images: ArrayLike, *, margin: float = 0.1, block_size: int = 256
) -> OnData:
    """How close a decoded path stays to the training data, and how sharp its frames are.

    A path between two images that stays on the data shows frames like the training images: each
    is near one of them (`look.neighbors.knn`, exact) and as sharp as the endpoints. A path through a
    region the decoder never saw (e.g. a decoder-metric geodesic through a blur, whose images change
    little and so cost little energy) shows grey, smooth frames far from every training image.

    Args:
        frames: ``(n, h, w, c)`` decoded frames along one path, endpoints first and last (``n >= 2``);
            floats in [0, 1] or uint8.
        train_images: ``(m, h, w, c)`` the data (e.g. up to 10,000 training images); uint8 or floats.
        margin: a pixel within ``margin`` of 0 or 1 counts as saturated; in ``(0, 0.5]``.
        block_size: queries per block of the neighbour search.

    Returns:
        `OnData`.

    Raises:
        InputError: ``margin`` out of range, fewer than two frames or frames under 3x3 pixels.
        DataError: images that `data.validate_images` rejects, or of different shapes.

    Examples:
        >>> train = np.stack([np.zeros((4, 4, 1)), np.ones((4, 4, 1))]).astype(np.float32)
        >>> frames = np.stack([np.zeros((4, 4, 1)), np.full((4, 4, 1), 0.5), np.ones((4, 4, 1))])
        >>> d = on_data_diagnostics(frames.astype(np.float32), train)
        >>> d.distance.tolist(), float(d.excess), d.saturation.tolist()
        ([0.0, 0.5, 0.0], 0.5, [1.0, 0.0, 1.0])
    """
    where = "move.on_data_diagnostics"
    if not 0 < margin <= 0.5:
        raise InputError(f"{where}: margin must be in (0, 0.5], got {margin}")
    frames = data.validate_images(frames, what="frames")
    train_images = data.validate_images(train_images, what="train_images", image_shape=frames.shape[1:])
    if frames.shape[0] < 2:
        raise InputError(f"{where}: frames must hold a path of at least 2 frames, got {frames.shape[0]}")
    if min(frames.shape[1:3]) < 3:
        raise InputError(f"{where}: frames must be at least 3x3 pixels, got {tuple(frames.shape[1:3])}")
    x, ref = _as_unit(frames), _as_unit(train_images)
    n, p = x.shape[0], int(np.prod(x.shape[1:]))
    nb = neighbors.knn(ref.reshape(ref.shape[0], p), k=1, queries=x.reshape(n, p), block_size=block_size)
    distance = nb.distances[:, 0] / np.sqrt(p)
    sharp = _laplacian_magnitude(x)
    sat = jnp.mean((x <= margin) | (x >= 1.0 - margin), axis=(1, 2, 3))
    ends_sharp = 0.5 * (sharp[0] + sharp[-1])
    inner = jnp.mean(sharp[1:-1]) if n > 2 else ends_sharp
    return OnData(
        distance=distance,
        nearest=nb.indices[:, 0],
        sharpness=sharp,
        saturation=sat.astype(distance.dtype),
        mean_distance=jnp.mean(distance),
        excess=jnp.max(distance) - jnp.maximum(distance[0], distance[-1]),
        sharpness_ratio=jnp.where(ends_sharp > 0, inner / jnp.where(ends_sharp > 0, ends_sharp, 1.0), 1.0),
        mean_saturation=jnp.mean(sat),
    )
