"""One epoch order for everything.

``permutation`` -> ``epoch_order`` (what trainers gather) -> ``batches`` (the same batches, on the host).
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import numpy as np

from latentjax.errors import InputError


def permutation(key: jax.Array, num_examples: int) -> np.ndarray:
    """The order in which ``batches`` visits ``num_examples`` examples.

    Args:
        key: a ``jax.random.key``.
        num_examples: how many examples.

    Returns:
        int ``(num_examples,)`` numpy array, ``jax.random.permutation(key, num_examples)``.

    Examples:
        >>> sorted(permutation(jax.random.key(0), 5).tolist())
        [0, 1, 2, 3, 4]
    """
    return np.asarray(jax.random.permutation(key, int(num_examples)))


def epoch_order(key: jax.Array, epoch: int, num_examples: int, *, batch_size: int) -> np.ndarray:
    """The batches of epoch ``epoch`` as rows of indices ``(num_examples // batch_size, batch_size)``.

    Row ``i`` is the ``i``-th batch ``batches(jax.random.fold_in(key, epoch), ...)`` yields: every
    trainer gathers its batches in this order (from ``split(run_key)[1]``, see
    ``latentjax.learn.state.order_key``), so a host loop over ``batches`` sees the same data. The
    last incomplete batch is dropped, so every step sees a full batch.

    Args:
        key: the order key.
        epoch: the epoch number (folded into ``key``).
        num_examples: size of the data set.
        batch_size: examples per batch.

    Returns:
        int32 ``(num_examples // batch_size, batch_size)``.

    Examples:
        >>> epoch_order(jax.random.key(0), 0, 10, batch_size=4).shape
        (2, 4)
    """
    perm = permutation(jax.random.fold_in(key, int(epoch)), num_examples)
    steps = int(num_examples) // int(batch_size)
    return perm[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def batches(
    key: jax.Array,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    batch_size: int,
    drop_last: bool = True,
) -> Iterator:
    """Iterates over one epoch of shuffled minibatches, on the host.

    Args:
        key: shuffles the examples with ``permutation``; pass ``jax.random.fold_in(key, epoch)``
            for a new order each epoch (then the batches are the rows of ``epoch_order``).
        images: ``(n, ...)`` array (uint8 images stay uint8).
        labels: optional ``(n, ...)`` array shuffled the same way.
        batch_size: examples per batch.
        drop_last: skip the final partial batch (so every batch has the same shape and a
            jitted step compiles once).

    Yields:
        ``images[idx]``, or ``(images[idx], labels[idx])`` when labels are given.

    Raises:
        InputError: a non-positive batch size, mismatched lengths, or (with ``drop_last``)
            fewer examples than one batch.

    Examples:
        >>> x = np.arange(10, dtype=np.uint8)[:, None]
        >>> [b.shape for b in batches(jax.random.key(0), x, batch_size=4)]
        [(4, 1), (4, 1)]
    """
    n = len(images)
    if batch_size < 1:
        raise InputError(f"data.batches: batch_size must be positive, got {batch_size}")
    if labels is not None and len(labels) != n:
        raise InputError(f"data.batches: {n} images but {len(labels)} labels")
    if drop_last and n < batch_size:
        raise InputError(
            f"data.batches: batch_size {batch_size} is larger than the {n} examples "
            "(drop_last would yield no batch)"
        )
    order = permutation(key, n)
    stop = n - n % batch_size if drop_last else n
    # A generator expression, so that the checks above run at the call, not at the first batch.
    return (
        images[idx] if labels is None else (images[idx], labels[idx])
        for idx in (order[i : i + batch_size] for i in range(0, stop, batch_size))
    )
