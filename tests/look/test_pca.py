"""PCA against scikit-learn (up to sign) and its own round trip."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from latentjax.errors import InputError
from latentjax.look import pca


def _data(n=300, d=20, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.linspace(5.0, 0.1, d)
    return (rng.normal(size=(n, d)) * scales @ np.linalg.qr(rng.normal(size=(d, d)))[0] + 3.0).astype(
        np.float32
    )


def _match_signs(a, b):
    return a * np.sign(np.sum(a * b, axis=1, keepdims=True))


@pytest.mark.parametrize("method", ["svd", "randomized"])
def test_pca_equals_sklearn_up_to_sign(method, key):
    x = _data()
    ours = pca.fit(x, num_components=5, method=method, key=key)
    ref = SkPCA(n_components=5, svd_solver="full").fit(x.astype(np.float64))
    np.testing.assert_allclose(np.asarray(ours.mean), ref.mean_, rtol=1e-5, atol=1e-5)
    comps = np.asarray(ours.components)
    np.testing.assert_allclose(_match_signs(comps, ref.components_), ref.components_, atol=2e-4)
    np.testing.assert_allclose(np.asarray(ours.explained_variance), ref.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(
        np.asarray(ours.explained_variance_ratio), ref.explained_variance_ratio_, rtol=1e-4
    )
    np.testing.assert_allclose(np.asarray(ours.singular_values), ref.singular_values_, rtol=1e-4)
    z = np.asarray(pca.transform(ours, x))
    z_ref = ref.transform(x.astype(np.float64))
    np.testing.assert_allclose(_match_signs(z.T, z_ref.T).T, z_ref, atol=2e-3)


def test_pca_components_orthonormal_and_signs_fixed():
    p = pca.fit(_data(), num_components=6)
    c = np.asarray(p.components)
    np.testing.assert_allclose(c @ c.T, np.eye(6), atol=1e-5)
    big = c[np.arange(6), np.argmax(np.abs(c), axis=1)]
    assert np.all(big > 0)


def test_inverse_transform_round_trip_full_rank():
    x = _data(n=100, d=8)
    p = pca.fit(x, num_components=8)
    np.testing.assert_allclose(np.asarray(pca.inverse_transform(p, pca.transform(p, x))), x, atol=1e-4)


def test_transform_single_example_equals_batch():
    x = _data(n=50, d=10)
    p = pca.fit(x, num_components=3)
    batch = np.asarray(pca.transform(p, x))
    loop = np.stack([np.asarray(pca.transform(p, row)) for row in x[:5]])
    vmapped = np.asarray(jax.vmap(pca.transform, in_axes=(None, 0))(p, x))
    np.testing.assert_allclose(loop, batch[:5], atol=1e-5)
    np.testing.assert_allclose(vmapped, batch, atol=1e-5)


def test_doctest_examples():
    p = pca.fit(jnp.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]), num_components=1)
    assert p.components.round(4).tolist() == [[1.0, 0.0]]
    assert p.explained_variance.round(4).tolist() == [4.0]
    assert pca.transform(p, jnp.array([4.0, 1.0])).round(4).tolist() == [2.0]
    assert pca.inverse_transform(p, jnp.array([2.0])).round(4).tolist() == [4.0, 1.0]


def test_pca_at_a_large_offset_equals_sklearn():
    x = _data(n=400, d=10) + np.float32(1e4)
    ours = pca.fit(x, num_components=3)
    ref = SkPCA(n_components=3, svd_solver="full").fit(x.astype(np.float64))
    np.testing.assert_allclose(np.asarray(ours.explained_variance), ref.explained_variance_, rtol=1e-4)
    comps = np.asarray(ours.components)
    np.testing.assert_allclose(_match_signs(comps, ref.components_), ref.components_, atol=2e-4)


def test_float64_stays_float64_under_x64():
    x = _data(n=200, d=12).astype(np.float64)
    ref = SkPCA(n_components=4, svd_solver="full").fit(x)
    with jax.enable_x64(True):
        p = pca.fit(x, num_components=4)
        assert all(a.dtype == jnp.float64 for a in p)
        z = pca.transform(p, x)
        back = pca.inverse_transform(p, z)
        assert z.dtype == back.dtype == jnp.float64
        comps = np.asarray(p.components)
        np.testing.assert_allclose(_match_signs(comps, ref.components_), ref.components_, atol=1e-10)
        np.testing.assert_allclose(np.asarray(p.explained_variance), ref.explained_variance_, rtol=1e-10)
        np.testing.assert_allclose(
            _match_signs(np.asarray(z).T, ref.transform(x).T).T, ref.transform(x), atol=1e-9
        )
        assert pca.fit(x.astype(np.float32), num_components=4).components.dtype == jnp.float32


def test_integer_data_is_promoted_to_float():
    x = np.random.default_rng(2).integers(0, 255, size=(50, 6)).astype(np.uint8)
    p = pca.fit(x, num_components=2)
    ref = SkPCA(n_components=2, svd_solver="full").fit(x.astype(np.float64))
    assert p.components.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(p.explained_variance), ref.explained_variance_, rtol=1e-5)
    assert pca.transform(p, x).dtype == jnp.float32


def _with(value, shape=(10, 3), at=(2, 1)):
    a = np.random.default_rng(0).normal(size=shape)
    a[at] = value
    return a


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(x=np.zeros((10, 3)), num_components=4), "num_components"),
        (dict(x=np.zeros((10, 3)), num_components=2.0), "num_components"),
        (dict(x=np.zeros((10, 3)), num_components=0), "num_components"),
        (dict(x=np.zeros(10), num_components=1), "x"),
        (dict(x=np.zeros((1, 3)), num_components=1), "x"),
        (dict(x=_with(np.nan), num_components=2), "x"),
        (dict(x=_with(-np.inf), num_components=2), "x"),
        (dict(x=np.zeros((10, 3)), num_components=2, method="qr"), "method"),
        (dict(x=np.zeros((10, 3)), num_components=2, method="randomized"), "key"),
    ],
)
def test_bad_input(kwargs, name):
    with pytest.raises(InputError, match=rf"look\.pca\.fit: {name} "):
        pca.fit(**kwargs)


def test_bad_input_to_transform_and_inverse():
    p = pca.fit(_data(n=30, d=4), num_components=2)
    with pytest.raises(InputError, match=r"look\.pca\.transform: x "):
        pca.transform(p, _with(np.nan, shape=(5, 4)))
    with pytest.raises(InputError, match=r"look\.pca\.transform: x "):
        pca.transform(p, np.zeros((5, 3)))
    with pytest.raises(InputError, match=r"look\.pca\.inverse_transform: z "):
        pca.inverse_transform(p, _with(np.inf, shape=(5, 2)))
    with pytest.raises(InputError, match=r"look\.pca\.inverse_transform: z "):
        pca.inverse_transform(p, np.zeros(3))


def test_numpy_integer_num_components_is_accepted():
    x = _data(n=40, d=5)
    a, b = pca.fit(x, num_components=np.int64(2)), pca.fit(x, num_components=2)
    np.testing.assert_array_equal(np.asarray(a.components), np.asarray(b.components))
