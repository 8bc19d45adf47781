"""The hypothesis profile of the property suite and the float64 references its files share.

Every property runs a few examples on small arrays (JAX compiles once per shape, so shapes are
fixed and values are drawn), derandomized so that CI sees the same examples on every run and the
suite stays within about a minute. A file applies the profile with
``@settings(settings.get_profile("latentjax-properties"), max_examples=n)``; a longer local hunt:
``LATENTJAX_PROPERTY_RANDOM=1`` draws fresh examples each run. Array elements exclude subnormal
floats: XLA on CPU flushes them to zero (a platform property, not latentjax's).
"""

import os
import types

import hypothesis
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase

hypothesis.settings.register_profile(
    "latentjax-properties",
    max_examples=8,
    deadline=None,
    derandomize=not os.environ.get("LATENTJAX_PROPERTY_RANDOM"),
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def _distances(x, queries=None):
    """Exact float64 Euclidean distances ``(m, n)`` between the rows of the (float32) inputs."""
    x = np.asarray(x, np.float64)
    q = x if queries is None else np.asarray(queries, np.float64)
    d = np.sqrt(np.sum((q[:, None, :] - x[None, :, :]) ** 2, axis=-1))
    if queries is None:
        np.fill_diagonal(d, np.inf)
    return d


def _knn(x, k, queries=None):
    """Brute-force float64 neighbours: ``(indices, distances)`` of the k nearest, nearest first."""
    d = _distances(x, queries)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


def _assert_exact_knn(x, indices, distances, k, queries=None, *, rtol=1e-5):
    """``indices`` are k nearest neighbours of each query, ties in any order.

    A row is right when the exact distances of the returned points, in the returned order, equal
    the k smallest exact distances (so any tie order passes, a missed or misordered neighbour
    does not), and the returned distances are those exact distances.
    """
    d = _distances(x, queries)
    indices = np.asarray(indices)
    m = d.shape[0]
    assert indices.shape == (m, k)
    assert all(len(set(row)) == k for row in indices.tolist()), "a neighbour repeated"
    if queries is None:
        assert not np.any(indices == np.arange(m)[:, None]), "a point is its own neighbour"
    got = np.take_along_axis(d, indices, axis=1)
    want = np.sort(d, axis=1)[:, :k]
    scale = np.max(want, axis=1, keepdims=True) + 1e-300
    bad = np.abs(got - want) > rtol * scale
    assert not bad.any(), (
        f"{int(bad.any(axis=1).sum())} of {m} rows have wrong neighbours; first row "
        f"{int(np.argmax(bad.any(axis=1)))}: exact distances {got[bad.any(axis=1)][0]} "
        f"vs the k smallest {want[bad.any(axis=1)][0]}"
    )
    np.testing.assert_allclose(np.asarray(distances, np.float64), got, rtol=1e-4, atol=1e-6 * scale.max())


def _relative_gap(x, ranks, queries=None):
    """The smallest relative gap between consecutive sorted distances at the given ranks (0-based).

    Properties about neighbour sets assume it is not tiny (no near-ties at the k-th neighbour),
    because the order of tied points is a convention, not a property.
    """
    d = np.sort(_distances(x, queries), axis=1)
    gaps = [(d[:, r + 1] - d[:, r]) / np.maximum(d[:, r + 1], 1e-300) for r in ranks if r + 1 < d.shape[1]]
    return float(np.min(gaps)) if gaps else np.inf


@pytest.fixture(scope="session")
def ref():
    """The float64 references: ``distances``, ``knn``, ``assert_exact_knn``, ``relative_gap``."""
    return types.SimpleNamespace(
        distances=_distances, knn=_knn, assert_exact_knn=_assert_exact_knn, relative_gap=_relative_gap
    )
