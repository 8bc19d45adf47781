"""A pixel classifier for judging decoded images: a one-hidden-layer MLP on raw pixels, in JAX.

It is trained on real images only (the demo's test images), never on the model's output, so it
judges reconstructions and edited latents independently of the model: reconstructions that keep
the class are classified as well as the originals, and a class vector that works turns its edits
into the target class.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


class PixelClassifier(NamedTuple):
    """A fitted classifier: ``softmax(relu(x w1 + b1) w2 + b2)`` on pixels in [0, 1].

    Attributes:
        w1: ``(pixels, hidden)``.
        b1: ``(hidden,)``.
        w2: ``(hidden, classes)``.
        b2: ``(classes,)``.
    """

    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    b2: jax.Array


def _flat(images) -> jax.Array:
    x = jnp.asarray(images)
    x = x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)
    return x.reshape(x.shape[0], -1)


def _logits(params: PixelClassifier, x: jax.Array) -> jax.Array:
    return jax.nn.relu(x @ params.w1 + params.b1[None]) @ params.w2 + params.b2[None]


def fit(
    key: jax.Array,
    images,
    labels,
    *,
    hidden: int = 128,
    epochs: int = 30,
    batch_size: int = 100,
    learning_rate: float = 2e-3,
    weight_decay: float = 1e-4,
) -> PixelClassifier:
    """Fits the MLP by minibatch AdamW on softmax cross-entropy (one compiled ``lax.scan``).

    The minibatches are drawn with replacement, ``n // batch_size`` of them per epoch.

    Args:
        key: initialises the weights and draws the minibatches.
        images: ``(n, ...)`` uint8 in [0, 255] or floats in [0, 1].
        labels: ``(n,)`` integer classes ``0..c-1``.
        hidden: hidden units.
        epochs: ``n`` examples drawn per epoch.
        batch_size: examples per step (at most ``n``).
        learning_rate: AdamW's step size.
        weight_decay: AdamW's decoupled weight decay.

    Returns:
        The fitted `PixelClassifier`.

    Examples:
        >>> x = np.repeat(np.eye(2, 4, dtype=np.float32), 10, axis=0)
        >>> clf = fit(jax.random.key(0), x, np.repeat([0, 1], 10), hidden=8, epochs=50, batch_size=5)
        >>> predict(clf, np.eye(2, 4, dtype=np.float32)).tolist()
        [0, 1]
    """
    x = _flat(images)
    y = jnp.asarray(labels, jnp.int32)
    num_classes = int(np.max(np.asarray(labels))) + 1
    return _fit(
        key,
        x,
        y,
        num_classes=num_classes,
        hidden=hidden,
        epochs=epochs,
        batch_size=min(batch_size, x.shape[0]),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
    )


def fit_on_test_half(key: jax.Array, images, labels, *, max_fit: int = 2000) -> PixelClassifier:
    """`fit` on the second half of a test set (at most ``max_fit`` images); the first half stays unseen.

    The demo measures the classifier on the first half (originals and their reconstructions) and
    uses it to judge decoded latents.

    Args:
        key: as in `fit`.
        images: ``(n, ...)`` test images.
        labels: ``(n,)`` their classes.
        max_fit: the most images to fit on.

    Returns:
        The fitted `PixelClassifier`.
    """
    half = len(images) // 2
    return fit(key, images[half:][:max_fit], np.asarray(labels)[half:][:max_fit])


@functools.partial(
    jax.jit,
    static_argnames=("num_classes", "hidden", "epochs", "batch_size", "learning_rate", "weight_decay"),
)
def _fit(key, x, y, *, num_classes, hidden, epochs, batch_size, learning_rate, weight_decay):
    # One compiled call, initialisation and shuffling included: compiling each small eager op
    # separately would cost more than the training itself.
    k1, k2, k3 = jax.random.split(key, 3)
    n, d = x.shape
    params = PixelClassifier(
        jax.random.normal(k1, (d, hidden)) * jnp.sqrt(2.0 / d),
        jnp.zeros(hidden),
        jax.random.normal(k2, (hidden, num_classes)) * jnp.sqrt(1.0 / hidden),
        jnp.zeros(num_classes),
    )
    # Minibatches drawn with replacement (a permutation per epoch costs a sort to compile).
    order = jax.random.randint(k3, (epochs * (n // batch_size), batch_size), 0, n)
    tx = optax.adamw(learning_rate, weight_decay=weight_decay)

    def loss(p, idx):
        return optax.softmax_cross_entropy_with_integer_labels(_logits(p, x[idx]), y[idx]).mean()

    def step(carry, idx):
        p, s = carry
        g = jax.grad(loss)(p, idx)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    return jax.lax.scan(step, (params, tx.init(params)), order)[0][0]


def predict(params: PixelClassifier, images) -> np.ndarray:
    """The most probable class of each image.

    Args:
        params: a fitted `PixelClassifier`.
        images: ``(m, ...)`` uint8 in [0, 255] or floats in [0, 1], of the fitted image shape.

    Returns:
        ``(m,)`` int numpy array.
    """
    return np.asarray(jnp.argmax(_logits(params, _flat(images)), axis=1))
