"""The neighbour search t-SNE's and UMAP's graphs ask for: ``"exact"``, ``"approximate"`` or ``"auto"``.

``"auto"`` is exact up to a size and approximate beyond it; each caller passes its own crossover
(measured on 2 CPU cores, Fashion-MNIST PCA-50 and jittered copies, with the exact search's C++
candidate kernel): about 180,000 points for UMAP's 14 neighbours, 400,000 for t-SNE's 90. The
exact search grows as ``n^2``, the approximate one about as ``n log n``.
"""

import jax

from latentjax.errors import InputError
from latentjax.look import neighbors

METHODS = ("exact", "approximate", "auto")


def search(
    x,
    k: int,
    *,
    method: str,
    key: jax.Array | None,
    approximate_above: int,
    where: str,
    block_size: int = 1024,
    **approximate,
):
    """``neighbors.Neighbors`` of ``x`` ``(n, d)``: its ``k`` nearest, found as ``method`` says.

    Args:
      x: the points (already checked by the caller).
      k: neighbours per point.
      method: one of ``METHODS``; ``"auto"`` is approximate when ``n > approximate_above``.
      key: the approximate search's key (required when it runs).
      approximate_above: ``"auto"``'s crossover.
      where: the public function, for error messages.
      block_size: the exact search's query block.
      **approximate: the approximate search's settings (``neighbors.approximate_knn``'s).

    Returns:
      The neighbours, nearest first.

    Raises:
      InputError: an unknown ``method``; an approximate search without a key.
    """
    if method not in METHODS:
        raise InputError(f"{where}: knn_method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        method = "approximate" if x.shape[0] > approximate_above else "exact"
    if method == "exact":
        return neighbors.knn(x, k=k, block_size=block_size)
    if key is None:
        raise InputError(f"{where}: the approximate neighbour search needs a key (key=jax.random.key(...))")
    return neighbors.approximate_knn(key, x, k=k, **approximate)
