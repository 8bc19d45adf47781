"""The explorer tests' fixtures: a small trained sprite VAE run, its loaded session and a live server."""

import threading

import jax
import pytest

from latentjax import data
from latentjax.app import explore
from latentjax.learn import models, train


@pytest.fixture(scope="session")
def explore_run(tmp_path_factory):
    """A run folder: an MLP VAE (4-d latents) trained for one epoch on 1,000 sprites."""
    ds = data.load("sprites", limit=1000)
    cfg = models.Config(image_shape=tuple(ds.train_images.shape[1:]), latent_dim=4, hidden=64)
    run_dir = tmp_path_factory.mktemp("explore") / "run"
    train.fit(
        jax.random.key(0), cfg, ds.train_images, epochs=1, batch_size=50, out_dir=run_dir,
        settings={"dataset": "sprites"},
    )  # fmt: skip
    return run_dir


@pytest.fixture(scope="session")
def session(explore_run):
    return explore.load(explore_run, method="pca", num_points=400)


@pytest.fixture(scope="session")
def server(session):
    """A live explorer on a free loopback port; yields its base URL."""
    srv = explore.make_server(session, host="127.0.0.1", port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
