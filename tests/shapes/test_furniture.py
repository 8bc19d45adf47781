"""The procedural generator: reproducible by seed, balanced, inside the unit box, checked arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.errors import InputError
from latentjax.shapes import furniture, primitives


def test_generate_reproducible_and_balanced():
    a, la = furniture.generate(num_per_class=30, seed=3)
    b, lb = furniture.generate(num_per_class=30, seed=3)
    c, _ = furniture.generate(num_per_class=30, seed=4)
    assert a.center.shape == (90, primitives.MAX_PARTS, 3)
    assert np.array_equal(la, lb) and np.bincount(la).tolist() == [30, 30, 30]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.allclose(np.asarray(a.center), np.asarray(c.center))
    # Every shape fits the normalised frame: max |coord| = 0.9 (within the box [-1, 1]^3).
    grid = jnp.stack(jnp.meshgrid(*[jnp.linspace(-1, 1, 9)] * 3, indexing="ij"), -1).reshape(-1, 3)
    d = jax.jit(jax.vmap(jax.vmap(primitives.sdf, in_axes=(None, 0)), in_axes=(0, None)))(a, grid)
    assert np.all(np.asarray(d).min(axis=1) < 0.1)  # every shape has parts in the box
    border = np.abs(np.asarray(grid)).max(1) == 1
    assert np.all(np.asarray(d)[:, border] > 0.05)  # nothing on the faces of the box


def test_generate_same_shapes_as_before_the_seed_argument():
    # generate took jax.random.key(seed) before; its NumPy entropy was the key data (0, seed).
    shapes, labels = furniture.generate(num_per_class=1, seed=0)
    assert labels.tolist() == [0, 1, 2]
    np.testing.assert_allclose(
        shapes.center[0, :2], [[0.0, -0.12898393, 0.0], [0.0, 0.40079525, -0.36248508]], rtol=1e-6
    )


def test_generate_subset_of_classes():
    shapes, labels = furniture.generate(num_per_class=2, seed=0, classes=("sofa", "chair"))
    assert labels.tolist() == [2, 2, 0, 0] and shapes.kind.shape == (4, primitives.MAX_PARTS)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(num_per_class=1, classes=("bed",)), "furniture.generate: unknown classes"),
        (dict(num_per_class=0), "num_per_class"),
        (dict(num_per_class=1, seed=-1), "seed"),
    ],
)
def test_generate_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        furniture.generate(**kwargs)
