"""The demo: the quick CLI run writes every file; PCA's baseline equals an SVD by hand; sections are
functions, and a failing one costs only its own part of the report."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from latentjax import data
from latentjax.app import demo, report
from latentjax.app.sections import disentangle, embedding, latent, shapes, transport

DEMO_FILES = [
    "metrics.json",
    "report.html",
    "checkpoint",
    "config.json",
    "metrics.jsonl",
    "figures/reconstructions.png",
    "figures/samples.png",
    "figures/latent_scatter.png",
    "figures/decoded_grid.png",
]
# What the report's sections write besides the model's figures (embedding, latent, transport); the
# shapes section is left out of --quick (its figures are checked to be absent).
SECTION_FILES = [
    "embedding_viewer.html",
    "projector/projector_config.pbtxt",
    "figures/embedding_panels.png",
    "figures/latent_paths.png",
    "figures/latent_class_vector.png",
    "figures/latent_traversals.png",
    "figures/latent_factor_sensitivity.png",
    "figures/latent_tour.gif",
    "figures/transport_contrast.png",
    "figures/transport_square.png",
    "figures/disentangle_demo_vae.png",  # --quick scores the demo's VAE only
]
SHAPES_FILES = ["figures/shapes_path.gif", "figures/shapes_path.png"]
DEMO_KEYS = [
    "dataset",
    "model",
    "latent_dim",
    "epochs",
    "test_elbo",
    "test_recon_mse",
    "pca_recon_mse",
    "classifier_accuracy",
    "classifier_accuracy_reconstructions",
    "seed_ideas",
    "train_images_per_s",
    "jax_version",
    "device",
]


@pytest.mark.slow
def test_demo_quick_writes_everything(quick_demo, tmp_path):
    m, _, html, _, out = quick_demo  # the session's one quick demo (tests/app/conftest.py)
    for f in DEMO_FILES + SECTION_FILES:
        assert (out / f).exists(), f
    for f in SHAPES_FILES:
        assert not (out / f).exists(), f
    for gif in ("latent_tour.gif",):  # animations: the path moves
        im = Image.open(out / "figures" / gif)
        first = np.asarray(im.convert("L"))
        im.seek(im.n_frames - 1)
        assert im.n_frames >= 7 and np.abs(np.asarray(im.convert("L")) - first.astype(int)).max() > 0, gif
    for k in DEMO_KEYS:
        assert k in m, k
    assert m["section_errors"] == {}
    assert m["test_recon_mse"] < m["pca_recon_mse"]
    for f in DEMO_FILES + SECTION_FILES:
        if f.startswith("figures/"):
            assert f in html, f
    assert "missing figure" not in html
    # A second demo into a folder that is not empty (the default one, or the first demo's) is refused
    # and leaves what is there intact.
    env = dict(os.environ)
    env.pop("LATENTJAX_DATA_DIR", None)  # the default demo needs no files
    (tmp_path / "latentjax-demo").mkdir()
    (tmp_path / "latentjax-demo" / "keep.txt").write_text("mine")
    before = (out / "metrics.json").read_text()
    for extra in ([], ["--out", str(out)]):
        r = subprocess.run(
            [sys.executable, "-m", "latentjax.app.cli", "demo", "--quick", "--quiet", *extra],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 2 and "not empty" in r.stderr, r.stderr[-2000:]
    assert (out / "metrics.json").read_text() == before
    assert (tmp_path / "latentjax-demo" / "keep.txt").read_text() == "mine"


def test_pca_recon_mse_equals_an_svd_by_hand():
    x, _ = data.sprites(num_images=600, size=16, seed=1)
    train, test = x[:500], x[500:]
    a = train.reshape(500, -1).astype(np.float64) / 255.0
    mean = a.mean(0)
    v = np.linalg.svd(a - mean, full_matrices=False)[2][:8]
    t = test.reshape(100, -1).astype(np.float64) / 255.0
    ref = np.mean((np.clip((t - mean) @ v.T @ v + mean, 0.0, 1.0) - t) ** 2)
    got = demo.pca_recon_mse(train, test, num_components=8)
    assert got == pytest.approx(ref, rel=1e-4)
    assert demo.pca_recon_mse(train, test, num_components=8, max_fit=100) != got
    assert demo.pca_recon_mse(train, test, num_components=32) < got


def test_sections_are_the_topic_functions_and_the_device_is_described():
    assert demo.SECTIONS == (
        embedding.section,
        latent.section,
        transport.section,
        shapes.section,
        disentangle.section,
    )
    assert demo.device_description().startswith("cpu: ")  # the tests run on CPU devices


def test_run_writes_the_report_and_survives_a_failing_section(tmp_path, capsys):
    def good(run, *, quick):
        assert quick and run.figures == tmp_path / "d" / "figures" and run.label_names[0] == "square"
        return report.Section("good", "a section that works")

    def broken(run, *, quick):
        raise RuntimeError("boom")

    m = demo.run(out=tmp_path / "d", quick=True, epochs=1, sections=(good, broken), progress=False)
    assert m["section_errors"] == {"broken": "RuntimeError: boom"}
    # The checks whose sections did not run have no value and do not pass.
    ideas = m["seed_ideas"]
    assert ideas["reconstructions_keep_the_class"]["value"] == m["reconstruction_class_ratio"]
    for k in ("tsne_separates_classes", "class_vector_flips", "interpolation_stays_near_data"):
        assert ideas[k] == {"value": None, "threshold": ideas[k]["threshold"], "ok": False}, k
    assert set(m["section_seconds"]) == {"good", "broken"}
    assert "boom" in capsys.readouterr().err
    html = (tmp_path / "d" / "report.html").read_text()
    assert "a section that works" in html and "This section failed: RuntimeError: boom" in html
    for f in DEMO_FILES[5:] + ["figures/latent_scatter_x.png"]:
        assert (tmp_path / "d" / f).is_file(), f
    assert json.loads((tmp_path / "d" / "metrics.json").read_text())["epochs"] == 1
    with pytest.raises(ValueError, match="not empty"):
        demo.run(out=tmp_path / "d", quick=True, sections=())
