"""A run folder written by latentjax 0.1.0 (before the package moved to subpackages) still loads and
resumes: ``tests/fixtures/run_v0_1_0`` was trained for 2 epochs (8 steps) by the 0.1.0 release, and
``run_v0_1_0_expected.npz`` holds its parameters and the 0.1.0 parameters after 4 uninterrupted epochs."""

import shutil

import jax
import numpy as np
import pytest

from latentjax.learn import models, runs, train

FIXTURES = __import__("pathlib").Path(__file__).parents[1] / "fixtures"


def _images():
    return (np.random.default_rng(0).random((64, 12, 12, 1)) * 255).astype(np.uint8)


def _flat(params):
    return np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(params)])


@pytest.fixture
def expected():
    return np.load(FIXTURES / "run_v0_1_0_expected.npz")


def test_a_0_1_0_run_loads(expected):
    model, cfg = runs.load_model(FIXTURES / "run_v0_1_0")
    assert cfg == models.Config(image_shape=(12, 12, 1), latent_dim=2, hidden=8)
    from flax import nnx

    np.testing.assert_array_equal(_flat(nnx.state(model)), expected["params_step8"])


def test_a_0_1_0_run_resumes_to_the_uninterrupted_result(tmp_path, expected):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run_v0_1_0", run)
    cfg = models.Config(image_shape=(12, 12, 1), latent_dim=2, hidden=8)
    res = train.fit(
        jax.random.key(0),
        cfg,
        _images(),
        epochs=4,
        batch_size=16,
        out_dir=run,
        checkpoint_every=8,
        keep=1,
        resume=True,
        progress=False,
    )
    assert int(res.state.step) == 16
    np.testing.assert_array_equal(_flat(res.state.params), expected["params_step16"])
    np.testing.assert_allclose([r["loss"] for r in res.history], expected["losses"][2:], rtol=0)
