"""experiments/burda_nll.py end to end on 300 MNIST images (stage 0): the NLL in a sane range.

References: the trained model's mean ELBO on the same binarised test images, computed here with
``models.elbo`` (the importance-sampled NLL must lie below -ELBO); 784 log 2 (a coin per pixel).
"""

import json

import jax
import numpy as np

from latentjax import data
from latentjax.learn import models, runs


def test_burda_quick_runs_and_its_nll_is_sane(data_dir, load_script, tmp_path):
    mod = load_script("burda_nll")
    argv = ["--quick", "--data-dir", str(data_dir), "--out", str(tmp_path)]
    result = mod.main(argv)
    (row,) = result["rows"]
    assert (row["stage"], row["epochs"], row["nll_samples"]) == (0, 1, 64)
    assert result["paper_nll"] == 85.54 and row["seconds_per_epoch"] > 0
    model, cfg = runs.load_model(tmp_path / "run")
    assert (cfg.hidden, cfg.depth, cfg.latent_dim, cfg.activation) == (200, 2, 50, "tanh")
    saved = runs.read_config(tmp_path / "run").train
    assert (saved["objective"], saved["num_samples"], saved["binarize"]) == ("iwae", 5, "dynamic")
    assert saved["adam"]["eps"] == 1e-4 and saved["batch_size"] == 20
    ds = data.load("mnist", data_dir=data_dir, limit=100)
    test = data.binarize(jax.random.key(data.BINARIZED_TEST_SEED), ds.test_images) / np.float32(255)
    keys = jax.random.split(jax.random.key(9), (8, len(test)))
    elbo = jax.jit(jax.vmap(jax.vmap(models.elbo, in_axes=(None, 0, 0)), in_axes=(None, 0, None)))
    neg_elbo = -float(np.mean(elbo(model, keys, test)))
    assert 0 < row["test_nll"] <= neg_elbo + 1.0 < 784 * np.log(2)
    # a second call finds the stage measured and keeps its row
    again = mod.main(argv)
    assert again["rows"] == result["rows"]
    assert "| 0 | 1 |" in (tmp_path / "table.md").read_text()
    assert json.loads((tmp_path / "result.json").read_text())["k"] == 5
