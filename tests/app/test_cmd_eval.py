"""``latentjax eval RUN --nll``: a tiny trained run's test NLL against quadrature over its 2-d latent."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax import data
from latentjax.app import cli
from latentjax.learn import likelihood, models, runs

_TRAIN = ["train", "--dataset", "sprites", "--limit", "128", "--latent-dim", "2", "--hidden", "16"]
_TRAIN += ["--epochs", "2", "--batch-size", "32", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    assert cli.main([*_TRAIN, "--out", str(out)]) == 0
    return out


def _quadrature_log_px(model, images, half_width=6.0, num=161):
    """log p(x) = log sum_z p(x|z) N(z; 0, I) dz on a num x num grid over [-w, w]^2 (midpoint rule)."""
    g = jnp.linspace(-half_width, half_width, num)
    dz = float(g[1] - g[0])
    x = models.to_float(images)

    def row(z0):
        z = jnp.stack([jnp.full_like(g, z0), g], axis=1)  # (num, 2)
        log_prior = -0.5 * jnp.sum(z**2, axis=1) - jnp.log(2 * jnp.pi)
        ll = jax.vmap(lambda xi: jax.vmap(lambda zi: models.log_likelihood(model, xi, zi))(z))(x)
        return ll + log_prior[None, :]  # (n, num)

    terms = jax.lax.map(row, g)  # (num, n, num)
    return jax.nn.logsumexp(terms, axis=(0, 2)) + 2 * np.log(dz)


def test_eval_nll_agrees_with_quadrature(capsys, run_dir):
    assert cli.main(["eval", str(run_dir), "--nll", "--samples", "1000", "--limit", "16", "--seed", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("test NLL ")
    res = json.loads(out[-1])
    saved = json.loads((run_dir / "eval.json").read_text())
    assert saved == res and res["k"] == 1000 and res["n"] == 16 and res["binarize"] == "none"
    assert ".latentjax-manifest.json" in {p.name for p in run_dir.iterdir()}
    assert "eval.json" in json.loads((run_dir / ".latentjax-manifest.json").read_text())["entries"]
    model, _ = runs.load_model(run_dir)
    images = data.load("sprites", limit=16).test_images
    exact = -float(np.mean(_quadrature_log_px(model, images)))
    assert res["nll"] == pytest.approx(exact, abs=0.05), (res["nll"], exact)


def test_eval_reads_binarised_test_images(capsys, run_dir, tmp_path):
    """A run trained on binarised images is evaluated on the fixed binarisation of its test set."""
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["train"]["binarize"] = "dynamic"
    (run_dir / "config.json").write_text(json.dumps(cfg))
    try:
        assert cli.main(["eval", str(run_dir), "--samples", "20", "--limit", "8", "--chunk-size", "7"]) == 0
    finally:
        cfg["train"].pop("binarize")
        (run_dir / "config.json").write_text(json.dumps(cfg))
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["binarize"] == "dynamic"
    model, _ = runs.load_model(run_dir)
    images = data.binarize(
        jax.random.key(data.BINARIZED_TEST_SEED), data.load("sprites", limit=8).test_images
    )
    ref = likelihood.log_likelihood(model, jax.random.key(0), images, num_samples=20, chunk_size=7)
    assert res["nll"] == pytest.approx(-float(np.mean(ref)), abs=1e-3)


def test_eval_errors_are_one_line(capsys, tmp_path):
    assert cli.main(["eval", str(tmp_path / "nothing"), "--nll"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "latentjax eval: error:" in err[0]
    with pytest.raises(SystemExit):
        cli.main(["eval", str(tmp_path), "--samples", "0"])
    assert "argument --samples" in capsys.readouterr().err
