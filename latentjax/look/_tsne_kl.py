"""t-SNE's objective: the exact ``kl_divergence`` (``tsne`` re-exports it) and the progress report.

``reporter`` builds what ``tsne.optimize`` calls between its device-loop chunks (every 50 steps by
default): the KL divergence of the current map, with ``Z`` from the same repulsion the optimiser
uses (FIt-SNE's grid, or the exact sum), as openTSNE reports it. Without progress nothing here runs.
"""

import functools
import sys
import time

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _fitsne, _fitsne_grid, neighbors
from latentjax.look._dimred_args import float_dtype


def kl_divergence(affinities: neighbors.Graph, y: ArrayLike) -> jax.Array:
    """``KL(P || Q)``, exact ``Z``: t-SNE's objective; one ``P`` compares maps of any implementation.

    Args:
      affinities: ``P`` from ``affinities``.
      y: ``(n, e)`` embedding, finite.

    Returns:
      Scalar (nats), in ``y``'s float dtype.

    Raises:
      InputError: ``y`` not 2-D or with NaN/inf; ``affinities`` not a ``neighbors.Graph`` or (when
        concrete) with indices out of ``[0, n)``.

    Examples:
      >>> from latentjax.look import tsne
      >>> x = jax.random.normal(jax.random.key(0), (40, 3))
      >>> float(tsne.kl_divergence(tsne.affinities(x, perplexity=5.0), x[:, :2])) > 0
      True

    References:
      van der Maaten and Hinton, JMLR 9 (2008), Eq. 2.
    """
    where = "look.tsne.kl_divergence"
    y = _checks.array(y, "y", where=where, ndim=2)
    y = jnp.asarray(y, float_dtype(y.dtype))
    p = _fitsne.check_graph(affinities, y.shape[0], where=where)
    return _fitsne.kl(y, p.rows, p.cols, jnp.asarray(p.weights).astype(y.dtype))


@functools.partial(jax.jit, static_argnames=("method", "num_boxes"))
def kl_estimate(y, graph: _fitsne.Pieces, *, method: str, num_boxes: int):
    """``KL(P || Q)`` under ``P`` as ``Pieces``, ``Z`` from the grid (or exact): one gradient's cost."""
    if method == "fft":
        _, z = _fitsne_grid.repulsion(y, num_boxes=num_boxes)
    else:
        _, z = _fitsne.repulsion_exact(y)
    d2 = sum((y[:, c][graph.owner][:, None] - y[:, c][graph.cols]) ** 2 for c in range(y.shape[1]))
    w = graph.weights
    safe = jnp.where(w > 0, w, 1.0)
    return jnp.sum(jnp.where(w > 0, w * (jnp.log(safe) + jnp.log1p(d2) + jnp.log(z)), 0.0))


def _print(step, info):
    print(
        f"look.tsne: step {step}/{info['num_steps']}, KL {info['kl']:.4f} ({info['seconds']:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


def reporter(progress, graph: _fitsne.Pieces, *, num_steps: int, method: str, where: str):
    """The chunk callback for ``progress``: None when off, else ``f(moving)`` calling ``progress``.

    ``progress``: False/None (off), True (a line on stderr per report) or a callable
    ``progress(step, info)`` with ``info = {"kl", "num_steps", "seconds", "embedding"}``.
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        progress = _print
    if not callable(progress):
        raise InputError(f"{where}: progress must be a bool or a callable(step, info), got {type(progress)}")
    start = time.perf_counter()

    def report(moving):
        y, count = moving[0], int(moving[3])
        boxes = 0
        if method == "fft":
            lo, hi = (float(v) for v in jnp.stack([jnp.min(y), jnp.max(y)]))
            # Few compiled grids: the first of 50, 100, 200, ... boxes no wider than 1.
            boxes = next((b for b in _fitsne.GRADIENT_BOXES if b >= hi - lo), _fitsne.GRADIENT_BOXES[-1])
        kl = float(kl_estimate(y, graph, method=method, num_boxes=boxes))
        info = {"kl": kl, "num_steps": num_steps, "seconds": time.perf_counter() - start, "embedding": y}
        progress(count, info)

    return report
