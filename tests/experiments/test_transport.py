"""Smoke tests of the OT experiment, benchmark and demo section (format and basic sanity)."""

import json
import pathlib

import jax
import numpy as np
import pytest

from latentjax import data
from latentjax.app import demo, report
from latentjax.learn import models


@pytest.mark.slow
def test_ot_contrast_quick(data_dir, tmp_path, load_script):
    res = load_script("ot_contrast").main(
        ["--quick", "--datasets", "fashion_mnist", "--data-dir", str(data_dir), "--out", str(tmp_path)]
    )
    saved = json.loads((tmp_path / "result.json").read_text())
    pairs = saved["fashion_mnist"]["pairs"]
    assert len(pairs) == 2 and (tmp_path / "square_fashion_mnist.png").is_file()
    for row in pairs:
        com = row["centre_of_mass_col_t0_half_t1"]
        # OT paths start and end where the pixel path does and move the centre of mass linearly
        # (to 0.01 px when converged; --quick caps the iterations).
        for k in ("Wasserstein", "displacement"):
            np.testing.assert_allclose(com[k], com["pixel"], atol=0.3)  # --quick: 200 iterations
    lot = res["latent_ot"]
    assert 0.0 <= lot["ot_map"]["flip_rate"] <= 1.0
    assert lot["ot_map"]["sinkhorn_divergence_to_target"] < lot["unchanged"]["sinkhorn_divergence_to_target"]
    assert res["shapes"]["ot_chair_chair2"] < res["shapes"]["ot_chair_table"]


def test_barycenter_benchmark_quick(tmp_path, load_script):
    pytest.importorskip("ot")  # the benchmark's peer
    load_script("barycenter", "benchmarks").main(["--quick", "--json", str(tmp_path / "b.json")])
    out = json.loads((tmp_path / "b.json").read_text())
    assert out["benchmark"] == "barycenter" and "jax" in out["versions"]
    rows = {(r["case"], r["impl"]): r for r in out["rows"]}
    assert {"latentjax", "pot", "pot_log", "latentjax_log"} <= {i for _, i in rows}
    assert rows[("barycenter_28_path9", "latentjax")]["l1_vs_pot"] < 1e-6
    assert all(r["seconds"] > 0 for r in out["rows"])


def test_section_quick(tmp_path):
    ds = data.load("sprites", limit=64)
    cfg = models.Config(
        kind="vae", arch="mlp", image_shape=ds.test_images.shape[1:], latent_dim=4, likelihood="bernoulli"
    )
    model = models.create(jax.random.key(0), cfg)
    (tmp_path / "fig").mkdir()
    run = demo.DemoRun(
        model,
        cfg,
        tmp_path,
        tmp_path / "fig",
        ds.train_images,
        ds.test_images,
        ds.train_labels,
        ds.test_labels,
        ds.label_names,
        "sprites",
        None,
        jax.random.key(1),
    )
    from latentjax.app.sections import transport as section

    s = section.section(run, quick=True)
    assert isinstance(s, report.Section) and len(s.figures) == 2
    assert all(pathlib.Path(f.path).is_file() for f in s.figures)
    assert s.table["barycenter max marginal error"] <= 1e-3
