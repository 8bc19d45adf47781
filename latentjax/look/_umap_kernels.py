"""UMAP's device kernels (``umap`` holds the API and calls them), as umap-learn's ``layouts.py``.

The per-point membership calibration (umap-learn's ``smooth_knn_dist``); the layout's sampling
``Schedule``; one step of the negative-sampling layout on positions stored ``(num_components, n)``,
and its device loop.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.look import _umap_native, neighbors

# umap-learn's constants (umap/umap_.py): calibration tolerance and the sigma floor.
_SMOOTH_K_TOLERANCE = 1e-5
_MIN_K_DIST_SCALE = 1e-3
# umap-learn clips every gradient coordinate to [-4, 4] (umap/layouts.py `clip`).
_CLIP = 4.0
# Vertex steps per trip of ``layout_step``'s loop (its trip count is data-dependent, so XLA cannot
# unroll it): fewer trips, the same result. Set from the module (a new trace) to compare.
UNROLL = 8


def smooth_knn_dist(distances, mean_all, *, target, n_neighbors, num_steps=64, local_connectivity=1):
    """``(sigma, rho)`` for one point from its ``(k,)`` sorted neighbour distances (self excluded)."""
    dt = distances.dtype
    big = jnp.asarray(jnp.finfo(dt).max, dt)
    positive = distances > 0
    # local_connectivity = 1: rho is the first non-zero distance (0 if all neighbours coincide);
    # 0 (umap-learn's transform, local_connectivity - 1): rho = 0.
    rho = jnp.where(jnp.any(positive) & (local_connectivity >= 1), distances[jnp.argmax(positive)], 0.0)

    def psum(mid):
        d = distances - rho
        return jnp.sum(jnp.where(d > 0, jnp.exp(-d / mid), 1.0))

    def body(_, state):
        lo, hi, mid, done = state
        s = psum(mid)
        done = done | (jnp.abs(s - target) < _SMOOTH_K_TOLERANCE)
        too_big = s > target
        new_hi = jnp.where(too_big, mid, hi)
        new_lo = jnp.where(too_big, lo, mid)
        new_mid = jnp.where(too_big | (hi < big), (new_lo + new_hi) / 2.0, mid * 2.0)
        return tuple(
            jnp.where(done, old, new) for old, new in zip((lo, hi, mid), (new_lo, new_hi, new_mid))
        ) + (done,)

    init = (jnp.zeros((), dt), big, jnp.ones((), dt), jnp.bool_(False))
    _, _, sigma, _ = jax.lax.fori_loop(0, num_steps, body, init)
    # umap-learn's means include the point itself (distance 0) among the n_neighbors.
    mean_own = jnp.sum(distances) / n_neighbors
    floor = jnp.where(rho > 0, _MIN_K_DIST_SCALE * mean_own, _MIN_K_DIST_SCALE * mean_all)
    return jnp.maximum(sigma, floor), rho


@functools.partial(jax.jit, static_argnames=("n_neighbors", "local_connectivity"))
def memberships(distances, *, n_neighbors, local_connectivity=1):
    mean_all = jnp.sum(distances) / (distances.shape[0] * n_neighbors)
    target = jnp.log2(jnp.asarray(n_neighbors, distances.dtype))
    sigma, rho = jax.vmap(
        functools.partial(
            smooth_knn_dist, target=target, n_neighbors=n_neighbors, local_connectivity=local_connectivity
        ),
        in_axes=(0, None),
    )(distances, mean_all)
    d = distances - rho[:, None]
    vals = jnp.where((d <= 0) | (sigma[:, None] == 0), 1.0, jnp.exp(-d / sigma[:, None]))
    return vals, sigma, rho


class Schedule(NamedTuple):
    """Static sampling data for the layout (built on the host once by ``schedule``).

    Attributes:
      head: ``(E,)`` int32 source of each edge kept (weight >= max weight / num_steps, like
        umap-learn), sorted.
      tail: ``(E,)`` int32 target of each edge kept.
      rate: ``(E,)`` float32 weight / max weight: how often the edge fires per step (umap-learn's
        ``1 / epochs_per_sample``).
      negative_weight: ``(n, m)`` float32 weight of each of a vertex's ``m`` negative samples
        per step, so that vertex ``j`` is pushed on average as hard as by umap-learn's
        ``negative_sample_rate`` samples per firing of one of its edges.
    """

    head: jax.Array
    tail: jax.Array
    rate: jax.Array
    negative_weight: jax.Array


def schedule(graph: neighbors.Graph, *, num_steps: int, negative_sample_rate: int = 5) -> Schedule:
    """The edges kept for the layout, their firing rates and the negative-sample weights.

    Args:
      graph: the fuzzy graph.
      num_steps: steps of the layout (umap-learn's ``n_epochs``).
      negative_sample_rate: negative samples per firing edge.

    Returns:
      The ``Schedule``.

    Examples:
      >>> g = neighbors.Graph(np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1]), np.array([1, 1, 0.5, 0.5]))
      >>> s = schedule(g, num_steps=100)
      >>> s.rate.tolist(), s.negative_weight.shape
      ([1.0, 1.0, 0.5, 0.5], (3, 5))
    """
    n = graph.num_points
    w = np.asarray(graph.weights, np.float64)
    keep = w >= w.max() / float(num_steps)
    head = np.asarray(graph.rows)[keep]
    rate = (w[keep] / w.max()).astype(np.float32)
    # Expected negatives per step for each vertex: rate times the edges it heads. Every vertex
    # gets the same number of samples (a dense (n, m) block: no scatter), weighted to match.
    expected = negative_sample_rate * np.bincount(head, weights=rate, minlength=n)
    m = max(1, int(np.ceil(np.sum(expected) / n)))
    return Schedule(
        jnp.asarray(head, jnp.int32),
        jnp.asarray(np.asarray(graph.cols)[keep], jnp.int32),
        jnp.asarray(rate),
        jnp.asarray(np.repeat((expected / m)[:, None], m, axis=1), jnp.float32),
    )


def _fires(rate, epoch):
    # Edge e fires at step n when its count floor(n * rate) of samples due so far grows
    # (umap-learn: epoch_of_next_sample += epochs_per_sample, fire when <= n; none at n = 0).
    nf = epoch.astype(jnp.float32)
    return (jnp.floor(nf * rate) > jnp.floor((nf - 1.0) * rate)) & (epoch >= 1)


def _uniform_ints(seed, size, n):
    """``size`` cheap pseudo-random ints in ``[0, n)``: a murmur3 finaliser of (seed, slot).

    Threefry costs about 15x more per number on CPU and dominated the step; negative samples
    need no cryptographic quality.
    """
    x = jnp.arange(size, dtype=jnp.uint32) * jnp.uint32(0x9E3779B1) + seed
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    x = x ^ (x >> 16)
    return (x % jnp.uint32(n)).astype(jnp.int32)


def _d2_pow_b(d2, b):
    # d2^b through one log/exp (jnp.power is 7x slower on XLA:CPU).
    return jnp.exp(b * jnp.log(jnp.maximum(d2, 1e-30)))


def _coefficient(d2, pull, a, b, gamma):
    """umap-learn's gradient coefficient at squared distance ``d2``: 0 where ``d2 = 0``.

    Attraction ``-2ab d2^b / (d2 (1 + a d2^b))`` where ``pull``, else repulsion
    ``2 gamma b / ((1e-3 + d2)(1 + a d2^b))`` (umap-learn's ``optimize_layout_euclidean``).
    """
    safe = jnp.where(d2 > 0, d2, 1.0)
    d2b = _d2_pow_b(safe, b)
    num = jnp.where(pull, -2.0 * a * b * d2b, 2.0 * gamma * b)
    den = jnp.where(pull, safe, 1e-3 + safe)
    return jnp.where(d2 > 0, num / (den * (1.0 + a * d2b)), 0.0)


def layout_step(yt, epoch, key, sched, a, b, gamma, learning_rate, num_steps):
    """One epoch on positions stored ``(num_components, n)``: each coordinate one contiguous vector.

    Each vertex runs umap-learn's SGD through the epoch, every step from where the last one left
    it, against the positions the others had at the epoch's start (so vertices are independent:
    parallel, deterministic). Its steps, in umap-learn's order: each of its edges that fires this
    epoch (in edge order) pulls it towards the edge's tail, followed by its share of the ``m``
    uniform draws that push it away (after edge ``f`` of ``F``, draws up to ``floor((f + 1) m /
    F)``; all ``m`` if none fires). The graph is symmetric and ``(j, i)`` fires with ``(i, j)``,
    so a pull of twice the learning rate stands for umap-learn's ``move_other`` update of ``j``;
    ``sched.negative_weight`` weights the draws so that on average the vertex is pushed as by
    umap-learn's ``negative_sample_rate`` samples per firing edge. Every gradient coordinate is
    clipped to 4; the learning rate decays linearly to 0.

    Why: summing an epoch's clipped steps from its start (this function's first form) overshoots
    while the learning rate is near 1; at all 70,000 Fashion-MNIST points it needed 300 epochs
    for a trustworthiness still under umap-learn's 200 (``benchmarks/README.md``).
    """
    dim, n = yt.shape
    num_edges = sched.head.shape[0]
    alpha = learning_rate * (1.0 - epoch.astype(jnp.float32) / num_steps)
    fired = _fires(sched.rate, epoch).astype(jnp.int32)
    # The fired edges' tails, compacted per head (edge order kept): vertex i's f-th at first[i] + f.
    degree = jnp.bincount(sched.head, length=n)
    first = jnp.cumsum(degree) - degree
    before = jnp.cumsum(fired) - fired
    rank = before - before[first[sched.head]]
    slot = jnp.where(fired > 0, first[sched.head] + rank, num_edges)
    tails = jnp.zeros(num_edges, jnp.int32).at[slot].set(sched.tail, mode="drop")
    count = jax.ops.segment_sum(fired, sched.head, num_segments=n, indices_are_sorted=True)

    seed = jax.random.bits(jax.random.fold_in(key, epoch), (), jnp.uint32)
    m = sched.negative_weight.shape[1]
    other = _uniform_ints(seed, n * m, n).reshape(n, m)
    rep_weight = jnp.where(epoch >= 1, alpha, 0.0) * sched.negative_weight[:, 0]
    self_ = jnp.arange(n)

    def body(_, carry):
        z, done_f, done_s = carry
        edge = (done_f < count) & ((done_s + 1) * count > done_f * m)
        draw = ~edge & (done_s < m)
        j = jnp.where(
            edge,
            tails[jnp.minimum(first + done_f, num_edges - 1)],
            jnp.where(draw, other[self_, jnp.minimum(done_s, m - 1)], self_),
        )
        diff = [z[c] - yt[c][j] for c in range(dim)]
        g = _coefficient(sum(dc * dc for dc in diff), edge, a, b, gamma)
        w = jnp.where(edge, 2.0 * alpha, jnp.where(draw, rep_weight, 0.0))
        z = jnp.stack([z[c] + w * jnp.clip(g * dc, -_CLIP, _CLIP) for c, dc in enumerate(diff)])
        return z, done_f + edge, done_s + draw

    def steps(i, carry):  # UNROLL steps a trip: a vertex past its last step moves by 0 (w = 0)
        for _ in range(UNROLL):
            carry = body(i, carry)
        return carry

    zero = jnp.zeros(n, jnp.int32)
    trips = (jnp.max(count) + m + UNROLL - 1) // UNROLL
    z, _, _ = jax.lax.fori_loop(0, trips, steps, (yt, zero, zero))
    return z, epoch + 1


step = jax.jit(layout_step, static_argnames=("num_steps",))


@functools.partial(jax.jit, static_argnames=("num_steps",))
def run(yt, epoch, key, sched, a, b, gamma, learning_rate, *, num_steps):
    """``num_steps`` of ``layout_step`` in one ``fori_loop``: ``(yt, epoch)`` at the end.

    On CPU in float32 the epochs run in a C++ kernel instead (``native_epochs``).
    """
    if native(yt, sched):
        return native_epochs(
            yt, epoch, key, sched, a, b, gamma, learning_rate, count=num_steps, num_steps=num_steps
        )

    def body(_, carry):
        return layout_step(*carry, key, sched, a, b, gamma, learning_rate, num_steps)

    return jax.lax.fori_loop(0, num_steps, body, (yt, epoch))


def native(yt, sched) -> bool:
    """Whether the epochs run in ``_umap_native``'s C++ kernel: on CPU, in float32."""
    return (
        yt.dtype == jnp.float32
        and sched.rate.dtype == jnp.float32
        and yt.shape[0] <= _umap_native.MAX_COMPONENTS
        and _umap_native.available()
    )


@functools.partial(jax.jit, static_argnames=("count", "num_steps"))
def native_epochs(yt, epoch, key, sched, a, b, gamma, learning_rate, *, count, num_steps):
    """``count`` epochs of ``layout_step`` from ``epoch`` in the C++ kernel: ``(yt, epoch)`` after them.

    The same epochs and negative samples (each epoch's seed as ``layout_step`` draws it); only
    float rounding differs from the XLA loop.
    """
    epochs = epoch + jnp.arange(count, dtype=jnp.int32)
    seeds = jax.vmap(lambda e: jax.random.bits(jax.random.fold_in(key, e), (), jnp.uint32))(epochs)
    hyper = jnp.stack([jnp.asarray(v, jnp.float32) for v in (a, b, gamma, learning_rate)])
    return _umap_native.run(yt, epoch, seeds, sched, hyper, decay_steps=num_steps), epoch + count
