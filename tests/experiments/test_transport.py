"""The OT experiment, benchmark and demo section: quick runs checked against references (POT, the
inputs' centres of mass, mass conservation)."""

import json
import pathlib

import jax
import numpy as np
import pytest

from latentjax import data
from latentjax.app import demo, report
from latentjax.app.sections._labels import class_pair
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
    # the float64 and log-domain paths equal POT's entry by entry, so their smallest barycenter mass
    # is POT's too (measured: 0.9808 for each, after the capped --quick iterations)
    pot = rows[("barycenter_28_path9", "pot")]
    for impl in ("latentjax", "latentjax_log", "latentjax_log32", "latentjax_kernel"):
        r = rows[("barycenter_28_path9", impl)]
        assert r["l1_vs_pot"] < 1e-4 and r["mass"] == pytest.approx(pot["mass"], abs=1e-5), r


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
    # The barycenter path moves the column centre of mass linearly between the two inputs' (the
    # latent section's pair), computed here in numpy.
    _, _, i0, i1 = class_pair(np.asarray(ds.test_labels))
    gray = ds.test_images[[i0, i1]].astype(np.float64).mean(axis=-1)
    com = (gray * np.arange(gray.shape[2])).sum(axis=(1, 2)) / gray.sum(axis=(1, 2))
    got = [float(v) for v in s.table["barycenter column centre of mass, t=0 / 0.5 / 1"].split(" / ")]
    np.testing.assert_allclose(got, [com[0], com.mean(), com[1]], atol=0.3)
