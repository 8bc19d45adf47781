"""Class labels in the demo sections: an example of a class, and a class's printable name."""

from collections.abc import Sequence

import numpy as np


def first_of(labels: np.ndarray, label: int, k: int = 0) -> int:
    """The index of the ``k``-th example of class ``label`` (the last one if there are fewer).

    Args:
        labels: ``(n,)`` per-example classes.
        label: the class to look for (at least one example must have it).
        k: which of its examples, counting from 0.

    Returns:
        An index into ``labels``.

    Examples:
        >>> first_of(np.array([2, 0, 2, 2]), 2, k=1), first_of(np.array([2, 0]), 0, k=5)
        (2, 1)
    """
    idx = np.flatnonzero(np.asarray(labels) == label)
    return int(idx[min(k, len(idx) - 1)])


def label_name(label_names: Sequence[str] | None, label: int) -> str:
    """The name of class ``label``, or the label as text when there is no name for it.

    Args:
        label_names: the data set's class names (``run.label_names``), or None.
        label: a class.

    Returns:
        ``label_names[label]`` or ``str(label)``.

    Examples:
        >>> label_name(["shirt", "boot"], 1), label_name(["shirt"], 3), label_name(None, 0)
        ('boot', '3', '0')
    """
    label = int(label)
    names = list(label_names) if label_names is not None else []
    return str(names[label]) if 0 <= label < len(names) else str(label)


# The pair is chosen among the first test images, so every section finds the same one.
PAIR_WINDOW = 500


def class_pair(labels: np.ndarray) -> tuple[int, int, int, int]:
    """The class pair every demo section walks: the first test image's class and a middle other class.

    Chosen among the first `PAIR_WINDOW` labels, so the latent and transport sections show the same
    two classes (and the same two images).

    Args:
        labels: ``(n,)`` test labels, in the test set's order.

    Returns:
        ``(a, b, i0, i1)``: the source and target classes and the index of the first example of
        each (with one class only, ``b == a`` and ``i1`` is its second example).

    Examples:
        >>> class_pair(np.array([9, 2, 1, 1, 2, 6, 4]))
        (9, 4, 0, 6)
        >>> class_pair(np.array([3, 3, 3]))
        (3, 3, 0, 1)
    """
    labels = np.asarray(labels)[:PAIR_WINDOW]
    a = int(labels[0])
    others = [int(c) for c in np.unique(labels) if c != a]
    b = others[len(others) // 2] if others else a
    return a, b, first_of(labels, a), first_of(labels, b, 1 if a == b else 0)
