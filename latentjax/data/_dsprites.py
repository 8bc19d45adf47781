"""dSprites-faithful sprites: 64x64 binary images on dSprites' full factor grid, drawn on demand.

The 737,280 images are never stored: each is a 33x33 binary patch (one per shape, scale and
rotation: 720 of them, rasterised once from the signed distances of ``_sprites``) pasted onto a
black 64x64 canvas at its position, so any batch of factor tuples renders with one gather.
"""

from __future__ import annotations

import functools
from typing import Protocol

import jax
import numpy as np

from latentjax.data import _sprites
from latentjax.errors import InputError

DSPRITES_SHAPES = ("square", "ellipse", "heart")
DSPRITES_FACTORS = ("shape", "scale", "rotation", "x", "y")
DSPRITES_FACTOR_SIZES = (3, 6, 40, 32, 32)

_SIZE = 64
_PATCH = 33  # the sprite's box; its centre is the centre of the box's pixel 16
_RADIUS_PX = 16.0  # at scale 1 each shape fits in a circle of this radius (the `_sprites` unit circle)
_SDFS = (_sprites._sdf_square, _sprites._sdf_ellipse, _sprites._sdf_heart)


class GroundTruthData(Protocol):
    """What the disentanglement metrics sample from (disentanglement_lib's ``GroundTruthData``).

    Any object with these members works: ``factor_sizes`` (the number of values of each
    factor), ``sample_factors(key, num_samples)`` -> integer factor indices
    ``(num_samples, num_factors)``, and ``sample_observations_from_factors(key, factors)`` ->
    ``uint8`` images ``(n, h, w, c)`` (or any array the representation function takes).
    """

    factor_sizes: tuple[int, ...]

    def sample_factors(self, key: jax.Array, num_samples: int) -> np.ndarray: ...

    def sample_observations_from_factors(self, key: jax.Array, factors: np.ndarray) -> np.ndarray: ...


class DSprites:
    """dSprites-faithful data: every combination of five factors, as 64x64 binary images.

    The factor grid is dSprites' (Matthey et al. 2017), in its order (the last factor varies
    fastest, so image ``i`` has the factors ``np.unravel_index(i, factor_sizes)``):

    ========== ===== =====================================================================
    factor     sizes values
    ========== ===== =====================================================================
    shape      3     0 square, 1 ellipse, 2 heart (dSprites stores 1, 2, 3)
    scale      6     ``linspace(0.5, 1, 6)``
    rotation   40    ``linspace(0, 2 pi, 40)`` radians, counter-clockwise on screen; as in
                     dSprites the endpoints are both included, so indices 0 and 39 draw the
                     same image (dSprites calls this factor ``orientation``)
    x          32    ``linspace(0, 1, 32)``: the centre's column (dSprites' ``posX``)
    y          32    ``linspace(0, 1, 32)``: the centre's row, 0 at the top (``posY``)
    ========== ===== =====================================================================

    Images are ``uint8`` ``(n, 64, 64, 1)`` holding 0 or 255 (binary, as dSprites; divide by 255
    for a model). How they differ from the original ``dsprites_ndarray_...npz`` files (whose
    exact pixels are not reproduced):

    - Shapes are this library's signed-distance shapes (``data.sprites``), point-sampled at
      pixel centres and thresholded at 0: a square of side 0.6 x 2 x 16 px = 19.2 px at scale 1,
      an ellipse with semi-axes 15.2 px and 8 px, and Inigo Quilez's two-lobed heart (circumradius
      14.4 px, lobes up at rotation 0), each scaled about its centre. dSprites draws its own
      outlines (its heart is a different drawing, its square and ellipse have other sizes).
    - Positions are whole pixels: index ``i`` puts the shape's centre at pixel ``16 + i`` (the
      centre of the image is between pixels 31 and 32), so the centre moves exactly 1 pixel per
      step over pixels 16..47 and every sprite, at every scale and rotation, lies whole in the
      image with a margin of at least 1 pixel. dSprites moves its centres about 1.3 px a step
      and its sprites come closer to the border.
    - Rotation turns the shape counter-clockwise as seen (rows point down); the aliasing of the
      binary edges (pixel steps, not anti-aliased) is comparable to dSprites' but not the same.
    - Symmetries as in dSprites: a square looks the same every 90 degrees and an ellipse every 180
      degrees, so their rotation index is identifiable only modulo 10 and 20.

    Nothing is stored: `images` draws any indices on demand (one gather of 33x33 patches, cached
    after first use, about 0.8 MB); the whole set as ``uint8`` would be 3 GB.

    Examples:
        >>> ds = DSprites()
        >>> len(ds), ds.factor_sizes
        (737280, (3, 6, 40, 32, 32))
        >>> x = ds.images([0, 737279])
        >>> x.shape, x.dtype, sorted(set(np.unique(x).tolist()))
        ((2, 64, 64, 1), dtype('uint8'), [0, 255])
        >>> ds.index_to_factors([737279]).tolist()
        [[2, 5, 39, 31, 31]]

    References:
        L. Matthey, I. Higgins, D. Hassabis, A. Lerchner, dSprites: disentanglement testing
        sprites dataset (2017), github.com/deepmind/dsprites-dataset; F. Locatello et al.,
        Challenging common assumptions in the unsupervised learning of disentangled
        representations, ICML 2019 (disentanglement_lib's ``GroundTruthData`` protocol).
    """

    factor_names: tuple[str, ...] = DSPRITES_FACTORS
    factor_sizes: tuple[int, ...] = DSPRITES_FACTOR_SIZES
    shape_names: tuple[str, ...] = DSPRITES_SHAPES
    image_shape: tuple[int, int, int] = (_SIZE, _SIZE, 1)

    @property
    def num_factors(self) -> int:
        """The number of factors, 5."""
        return len(self.factor_sizes)

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes))

    def __getitem__(self, index) -> np.ndarray:
        """One image ``(64, 64, 1)`` for an integer, a batch for a slice or an index array."""
        if isinstance(index, slice):
            return self.images(np.arange(len(self))[index])
        if np.ndim(index) == 0:
            return self.images(np.reshape(index, (1,)))[0]
        return self.images(index)

    def factor_values(self) -> tuple[np.ndarray, ...]:
        """The values of each factor (float64), in `DSPRITES_FACTORS` order; shape as 0, 1, 2."""
        return _VALUES

    def values(self, factors) -> dict[str, np.ndarray]:
        """Factor indices ``(n, 5)`` -> ``{name: values (n,)}`` (shape int32, the rest float32)."""
        f = self._check_factors(factors, "data.DSprites.values")
        out = {
            name: v[f[:, k]].astype(np.float32) for k, (name, v) in enumerate(zip(DSPRITES_FACTORS, _VALUES))
        }
        out["shape"] = f[:, 0].astype(np.int32)
        return out

    def index_to_factors(self, indices) -> np.ndarray:
        """Image indices ``(n,)`` -> factor indices ``(n, 5)`` int64 (row-major, as dSprites)."""
        idx = np.asarray(indices).reshape(-1)
        if idx.size and (not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= len(self)):
            raise InputError(f"data.DSprites.index_to_factors: indices must be integers in [0, {len(self)})")
        return np.stack(np.unravel_index(idx.astype(np.int64), self.factor_sizes), axis=1)

    def factors_to_index(self, factors) -> np.ndarray:
        """Factor indices ``(n, 5)`` -> image indices ``(n,)`` int64."""
        f = self._check_factors(factors, "data.DSprites.factors_to_index")
        return np.ravel_multi_index(tuple(f.T), self.factor_sizes).astype(np.int64)

    def images(self, indices) -> np.ndarray:
        """The images with these indices (0..737,279): ``uint8`` ``(n, 64, 64, 1)``, 0 or 255."""
        return self.render(self.index_to_factors(indices))

    def render(self, factors) -> np.ndarray:
        """The images of factor indices ``(n, 5)``: ``uint8`` ``(n, 64, 64, 1)``, 0 or 255.

        Deterministic: the same factors give the same pixels, on every machine.
        """
        f = self._check_factors(factors, "data.DSprites.render")
        n = len(f)
        patches = _patches()
        which = (f[:, 0] * 6 + f[:, 1]) * 40 + f[:, 2]
        out = np.zeros((n, _SIZE, _SIZE), np.uint8)
        rows = f[:, 4, None, None] + np.arange(_PATCH)[None, :, None]
        cols = f[:, 3, None, None] + np.arange(_PATCH)[None, None, :]
        out[np.arange(n)[:, None, None], rows, cols] = patches[which]
        return out[..., None]

    def sample_factors(self, key: jax.Array, num_samples: int) -> np.ndarray:
        """Factor indices drawn uniformly from the grid: int64 ``(num_samples, 5)``."""
        if int(num_samples) < 0:
            raise InputError(f"data.DSprites.sample_factors: num_samples must be >= 0, got {num_samples}")
        # Host-side draws seeded by the key's bits: no compilation per sample size.
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
        return rng.integers(0, self.factor_sizes, size=(int(num_samples), len(self.factor_sizes)))

    def sample_observations_from_factors(self, key: jax.Array, factors) -> np.ndarray:
        """The images of ``factors`` (`render`); ``key`` is unused: these images hold no noise.

        The key keeps disentanglement_lib's protocol, where a data set may draw noise.
        """
        del key
        return self.render(factors)

    def sample(self, key: jax.Array, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """``(factors (num_samples, 5), images (num_samples, 64, 64, 1))`` drawn uniformly."""
        f = self.sample_factors(key, num_samples)
        return f, self.render(f)

    def _check_factors(self, factors, where: str) -> np.ndarray:
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != len(self.factor_sizes):
            raise InputError(f"{where}: factors must be (n, {len(self.factor_sizes)}), got shape {f.shape}")
        if f.size and not np.issubdtype(f.dtype, np.integer):
            raise InputError(f"{where}: factors must be integer indices, got dtype {f.dtype}")
        f = f.astype(np.int64)
        if f.size and ((f < 0).any() or (f >= np.asarray(self.factor_sizes)[None, :]).any()):
            raise InputError(
                f"{where}: factors out of range: each column k must be in [0, {self.factor_sizes}[k])"
            )
        return f


_VALUES = (
    np.arange(3, dtype=np.float64),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * np.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)


@functools.cache
def _patches() -> np.ndarray:
    """The 720 binary patches ``(720, 33, 33)`` uint8, indexed ``(shape * 6 + scale) * 40 + rotation``."""
    offsets = np.arange(_PATCH, dtype=np.float64) - _PATCH // 2  # pixel centre minus sprite centre
    du = offsets[None, None, :]  # columns, to the right
    dv = offsets[None, :, None]  # rows, down
    scale, rotation = np.meshgrid(_VALUES[1], _VALUES[2], indexing="ij")
    radius = (_RADIUS_PX * scale).reshape(-1, 1, 1)
    c = np.cos(rotation).reshape(-1, 1, 1)
    s = np.sin(rotation).reshape(-1, 1, 1)
    # Into the shape's frame, as `_sprites._coverage` (b points up on screen, counter-clockwise turns).
    a = ((c * du - s * dv) / radius).astype(np.float32)
    b = ((-s * du - c * dv) / radius).astype(np.float32)
    # `<= 0`: the ellipse's approximate distance is 0 (not negative) at its very centre.
    inside = [sdf(a, b) <= 0 for sdf in _SDFS]
    return (np.concatenate(inside) * np.uint8(255)).astype(np.uint8)
