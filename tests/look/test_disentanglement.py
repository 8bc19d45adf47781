"""Disentanglement metrics: known answers on constructed codes, and disentanglement_lib's definitions.

The references below are written here from disentanglement_lib's code (numpy loops and
scikit-learn's models, as it calls them), run on the same codes and batches as the JAX versions.
"""

import jax
import numpy as np
import pytest
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC

from latentjax import data
from latentjax.errors import InputError
from latentjax.look import disentanglement as dis

SIZES = (3, 6, 10, 8, 8)  # a dSprites-like grid, coarser so that tests stay small


def _grid_factors(rng, n, sizes=SIZES):
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def _standardised(f, sizes=SIZES):
    return (f - (np.asarray(sizes) - 1) / 2) / np.asarray(sizes)


@pytest.fixture(scope="module")
def sets():
    """Training and test factors with three codings: the factors, a rotation of them, noise."""
    rng = np.random.default_rng(0)
    f, f_test = _grid_factors(rng, 1500), _grid_factors(rng, 600)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    noise = rng.normal(size=(2100, 5))
    return {
        "factors": (f, f_test),
        "identity": (_standardised(f), _standardised(f_test)),
        "rotated": (_standardised(f) @ q, _standardised(f_test) @ q),
        "noise": (noise[:1500], noise[1500:]),
    }


# References, as disentanglement_lib computes them (codes here are (n, d), its are (d, n)).


def _ref_discretize(codes, num_bins=20):
    return np.stack([np.digitize(c, np.histogram(c, num_bins)[1][:-1]) for c in codes.T], axis=1)


def _ref_mutual_info(codes, factors):
    binned = _ref_discretize(codes)
    return np.array([[mutual_info_score(y, c) for y in factors.T] for c in binned.T])


def _ref_mig(codes, factors):
    m = _ref_mutual_info(codes, factors)
    h = np.array([mutual_info_score(y, y) for y in factors.T])
    top = np.sort(m, axis=0)[::-1]
    return np.mean((top[0] - top[1]) / h)


def _ref_modularity(m):
    sq = m**2
    mx = sq.max(axis=1)
    out = 1.0 - (sq.sum(axis=1) - mx) / (mx * (sq.shape[1] - 1.0))
    out[mx == 0] = 0
    return out.mean()


def _ref_explicitness(codes, factors, codes_test, factors_test):
    mean, sd = codes.mean(axis=0), codes.std(axis=0)
    x, x_test = (codes - mean) / sd, (codes_test - mean) / sd
    train, test = [], []
    for y, y_test in zip(factors.T, factors_test.T):
        clf = LogisticRegression(max_iter=5000).fit(x, y)
        mlb = MultiLabelBinarizer()
        train.append(roc_auc_score(mlb.fit_transform(y[:, None]), clf.predict_proba(x)))
        test.append(roc_auc_score(mlb.fit_transform(y_test[:, None]), clf.predict_proba(x_test)))
    return np.mean(train), np.mean(test)


def _ref_sap_matrix(codes, factors, codes_test, factors_test):
    m = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            clf = LinearSVC(C=0.01, class_weight="balanced").fit(codes[:, i : i + 1], factors[:, j])
            m[i, j] = np.mean(clf.predict(codes_test[:, i : i + 1]) == factors_test[:, j])
    return m


def _ref_dci(codes, factors, codes_test, factors_test):
    r = np.zeros((codes.shape[1], factors.shape[1]))
    acc = []
    for j in range(factors.shape[1]):
        model = GradientBoostingClassifier(random_state=0).fit(codes, factors[:, j])
        r[:, j] = np.abs(model.feature_importances_)
        acc.append(np.mean(model.predict(codes_test) == factors_test[:, j]))

    def score(m):
        per = 1.0 - scipy.stats.entropy(m.T + 1e-11, base=m.shape[1])
        return np.sum(per * m.sum(axis=1) / m.sum())

    return score(r), score(r.T), np.mean(acc), r


# Known answers.


def test_mig_ranks_the_codings_and_matches_the_reference(sets):
    f, f_test = sets["factors"]
    scores = {}
    for name in ("identity", "rotated", "noise"):
        c, c_test = sets[name]
        res = dis.mig(c, f)
        np.testing.assert_allclose(res.mutual_info, _ref_mutual_info(c, f), rtol=1e-4, atol=1e-6)
        assert res.score == pytest.approx(_ref_mig(c, f), abs=1e-5)
        scores[name] = res.score
    # Identity: each factor in one code; MIG < 1 only where 20 bins merge a factor's 10 values...
    assert scores["identity"] > 0.95
    assert scores["rotated"] < 0.5 * scores["identity"]
    assert scores["noise"] < 0.02


def test_discretize_is_numpys_histogram_digitize():
    from latentjax.look import _disentangle_info

    rng = np.random.default_rng(1)
    codes = np.concatenate(
        [rng.normal(size=(500, 2)), rng.integers(0, 6, (500, 1)), np.ones((500, 1))], axis=1
    )
    got = np.asarray(_disentangle_info.discretize(codes.astype(np.float32)))
    np.testing.assert_array_equal(got + 1, _ref_discretize(codes.astype(np.float32)))


def test_modularity_and_explicitness_match_the_reference(sets):
    f, f_test = sets["factors"]
    for name in ("identity", "rotated"):
        c, c_test = sets[name]
        res = dis.modularity_explicitness(c, f, c_test, f_test)
        assert res.modularity == pytest.approx(_ref_modularity(_ref_mutual_info(c, f)), abs=1e-5)
        ref_train, ref_test = _ref_explicitness(c, f, c_test, f_test)
        assert res.explicitness_train == pytest.approx(ref_train, abs=2e-3)
        assert res.explicitness_test == pytest.approx(ref_test, abs=2e-3)


def test_sap_matches_sklearn_linear_svc(sets):
    f, f_test = sets["factors"]
    c, c_test = sets["rotated"]
    res = dis.sap(c, f, c_test, f_test)
    ref = _ref_sap_matrix(c, f, c_test, f_test)
    np.testing.assert_allclose(res.score_matrix, ref, atol=0.02)
    top = np.sort(ref, axis=0)
    assert res.score == pytest.approx(np.mean(top[-1] - top[-2]), abs=0.02)
    ident = dis.sap(*sets["identity"][:1], f, sets["identity"][1], f_test).score
    assert ident > res.score and dis.sap(*sets["noise"][:1], f, sets["noise"][1], f_test).score < 0.05
    cont = dis.sap(c, f, c_test, f_test, continuous_factors=True).score_matrix
    np.testing.assert_allclose(cont, np.corrcoef(c.T, f.T)[:5, 5:] ** 2, atol=1e-9)


def test_dci_near_sklearn_gradient_boosting():
    rng = np.random.default_rng(2)
    sizes = (3, 4, 5)
    f, f_test = _grid_factors(rng, 500, sizes), _grid_factors(rng, 300, sizes)
    mix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.3], [0.0, 0.4, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    c = _standardised(f, sizes) @ mix.T + 0.05 * rng.normal(size=(500, 5))
    c_test = _standardised(f_test, sizes) @ mix.T + 0.05 * rng.normal(size=(300, 5))
    res = dis.dci(c, f, c_test, f_test)
    d, comp, info, r = _ref_dci(c, f, c_test, f_test)
    # The same boosting; splits on quantile bins instead of every midpoint: close, not equal.
    np.testing.assert_allclose(res.importance, r, atol=0.02)
    assert res.disentanglement == pytest.approx(d, abs=0.02)
    assert res.completeness == pytest.approx(comp, abs=0.02)
    assert res.informativeness_test == pytest.approx(info, abs=0.03)


def test_dci_ranks_the_codings(sets):
    f, f_test = sets["factors"]
    got = {
        name: dis.dci(*sets[name][:1], f, sets[name][1], f_test, num_stages=30)
        for name in sets
        if name != "factors"
    }
    assert got["identity"].disentanglement > 0.9 and got["identity"].completeness > 0.9
    assert got["identity"].informativeness_test > 0.95
    assert got["rotated"].disentanglement < got["identity"].disentanglement - 0.3
    assert got["noise"].disentanglement < 0.2 and got["noise"].informativeness_test < 0.4


def _pairs(rng, f_sizes, num_points, batch):
    fa = np.stack([_grid_factors(rng, batch, f_sizes) for _ in range(num_points)])
    fb = np.stack([_grid_factors(rng, batch, f_sizes) for _ in range(num_points)])
    k = rng.integers(0, len(f_sizes), num_points)
    fb[np.arange(num_points), :, k] = fa[np.arange(num_points), :, k]
    return fa, fb, k


def test_beta_vae_matches_sklearn_logistic_regression():
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    fa, fb, k = _pairs(rng, SIZES, 600, 16)
    ta, tb, kt = _pairs(rng, SIZES, 300, 16)
    for mix in (np.eye(5), q):
        codes = [_standardised(x) @ mix for x in (fa, fb, ta, tb)]
        res = dis.beta_vae(codes[0], codes[1], k, codes[2], codes[3], kt)
        feats = [np.abs(codes[0] - codes[1]).mean(axis=1), np.abs(codes[2] - codes[3]).mean(axis=1)]
        clf = LogisticRegression(max_iter=5000).fit(feats[0], k)
        assert res.train_accuracy == pytest.approx(clf.score(feats[0], k), abs=0.01)
        assert res.eval_accuracy == pytest.approx(clf.score(feats[1], kt), abs=0.01)
    assert (
        dis.beta_vae(
            *(_standardised(x) for x in (fa, fb)), k, *(_standardised(x) for x in (ta, tb)), kt
        ).eval_accuracy
        == 1.0
    )


def _ref_factor_vae_votes(codes, fixed, global_variances, num_factors, threshold=0.05):
    active = np.sqrt(global_variances) >= threshold
    votes = np.zeros((num_factors, codes.shape[2]), np.int64)
    for batch, k in zip(codes, fixed):
        local = np.var(batch, axis=0, ddof=1)
        argmin = np.argmin(local[active] / global_variances[active])
        votes[k, argmin] += 1  # an index among the active codes, as disentanglement_lib
    return votes


def test_factor_vae_matches_the_reference_votes():
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    num_points, batch = 400, 24
    f = np.stack([_grid_factors(rng, batch) for _ in range(num_points)])
    k = rng.integers(0, 5, num_points)
    f[np.arange(num_points), :, k] = f[np.arange(num_points), :1, k]
    scores = {}
    for name, mix in (("identity", np.eye(5, 6)), ("rotated", np.eye(5, 6) @ q)):
        codes = _standardised(f) @ mix  # 6 codes; with the identity one of them is dead (pruned)
        gv = _standardised(_grid_factors(rng, 5000)) @ mix
        gv = gv.var(axis=0, ddof=1)
        res = dis.factor_vae(codes[:300], k[:300], codes[300:], k[300:], global_variances=gv, num_factors=5)
        votes = _ref_factor_vae_votes(codes[:300], k[:300], gv, 5)
        classifier = np.argmax(votes, axis=0)
        ref_train = votes[classifier, np.arange(votes.shape[1])].sum() / votes.sum()
        eval_votes = _ref_factor_vae_votes(codes[300:], k[300:], gv, 5)
        ref_eval = eval_votes[classifier, np.arange(votes.shape[1])].sum() / eval_votes.sum()
        assert (res.train_accuracy, res.eval_accuracy) == pytest.approx((ref_train, ref_eval), abs=1e-12)
        scores[name] = res
    assert scores["identity"].eval_accuracy == 1.0 and scores["identity"].num_active_dims == 5
    assert scores["rotated"].eval_accuracy < 0.9


# The samplers, on the dSprites-faithful set with a hand-made representation.


def _image_features(images):
    """Centroid column and row, area, a second moment, a constant: codes read off the pixels."""
    x = images[..., 0].astype(np.float32) / 255
    cols, rows = x.sum(axis=1), x.sum(axis=2)  # (n, 64) column and row profiles
    area = cols.sum(axis=1)
    grid = np.arange(64, dtype=np.float32)
    cx, cy = cols @ grid / area, rows @ grid / area
    spread = (cols @ grid**2 - rows @ grid**2) / area - cx**2 + cy**2
    return np.stack([cx, cy, area, spread, 0 * area], axis=1)


def test_samplers_on_dsprites_find_the_position_codes():
    ds = data.DSprites()
    key = jax.random.key(0)
    # Sizes as in the tests above, so that the compiled classifiers are reused.
    res = dis.mig_score(key, ds, _image_features, num_train=1500)
    assert np.argmax(res.mutual_info[:, 3]) == 0 and np.argmax(res.mutual_info[:, 4]) == 1
    assert np.argmax(res.mutual_info[:, 1]) == 2  # scale: the area
    again = dis.mig_score(key, ds, _image_features, num_train=1500, chunk_size=700)
    assert again.score == res.score
    fv = dis.factor_vae_score(
        key, ds, _image_features, batch_size=8, num_train=300, num_eval=100, num_variance_estimate=500
    )
    assert fv.num_active_dims == 4 and fv.eval_accuracy > 0.5
    bv = dis.beta_vae_score(key, ds, _image_features, batch_size=4, num_train=600, num_eval=300)
    assert bv.eval_accuracy > 0.5
    sap = dis.sap_score(key, ds, _image_features, num_train=1500, num_test=600)
    # One-vs-rest linear SVMs on one code predict only a factor's extreme classes: with 32
    # positions accuracy stays near 2/32 for every code, while the area tells the 6 scales apart.
    assert sap.score_matrix.shape == (5, 5) and np.argmax(sap.score_matrix[:, 1]) == 2


class _FactorsAsImages:
    """A ground-truth set whose "images" are the factor indices themselves (GroundTruthData protocol)."""

    factor_sizes = (3, 4, 5, 6, 7)  # classes padded to 8 as in the DCI test above: compiled once

    def sample_factors(self, key, num_samples):
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
        return _grid_factors(rng, num_samples, self.factor_sizes)

    def sample_observations_from_factors(self, key, factors):
        return factors


def test_all_scores_of_a_perfect_representation():
    sizes = _FactorsAsImages.factor_sizes
    got = dis.scores(
        jax.random.key(1),
        _FactorsAsImages(),
        lambda f: _standardised(f, sizes),
        num_train=500,
        num_test=300,
        batch_size=4,
    )
    assert set(got) == {
        "beta_vae",
        "factor_vae",
        "mig",
        "sap",
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness",
        "modularity",
        "explicitness",
    }
    # Batches of 4 can hold a second factor constant by chance (a 3-valued one: 1 in 27), which
    # costs the beta-VAE and FactorVAE scores of even a perfect code a few points.
    assert got["beta_vae"] > 0.97 and got["factor_vae"] > 0.9 and got["modularity"] > 0.99
    assert got["mig"] > 0.95 and got["dci_disentanglement"] > 0.95 and got["dci_informativeness"] > 0.95
    assert got["explicitness"] > 0.9 and got["sap"] > 0.1


def test_bad_inputs_raise():
    f = np.zeros((10, 2), int)
    with pytest.raises(InputError, match="rows"):
        dis.mig(np.zeros((9, 2)), f)
    with pytest.raises(InputError, match="integer"):
        dis.mig(np.zeros((10, 2)), f + 0.5)
    with pytest.raises(InputError, match="at least 2"):
        dis.mig(np.zeros((10, 1)), f)
    with pytest.raises(InputError, match="NaN"):
        dis.mig(np.full((10, 2), np.nan), f)
    with pytest.raises(InputError, match="represent"):
        dis.mig_score(jax.random.key(0), data.DSprites(), lambda x: np.zeros((3, 2)), num_train=10)
