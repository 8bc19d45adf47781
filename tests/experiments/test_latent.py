"""Smoke tests of the latent-space experiments and demo section; the closed-loop thickness check."""

import json
import pathlib

import jax
import numpy as np
import pytest

from latentjax import data
from latentjax.app import report
from latentjax.learn import models, train


def test_mnist_thickness_quick_format(data_dir, tmp_path, load_script):
    res = load_script("mnist_thickness").main(
        ["--quick", "--data-dir", str(data_dir), "--out", str(tmp_path), "--json", str(tmp_path / "r.json")]
    )
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["strengths"] == sorted(saved["strengths"]) and min(saved["strengths"]) < 0 < max(
        saved["strengths"]
    )
    assert len(saved["thickness"]) == len(saved["class_preserved"]) == len(saved["strengths"])
    assert saved["class_preserved"][saved["strengths"].index(0.0)] == 1.0
    assert res["num_edit"] == 16
    assert (tmp_path / "thickness_sweep.png").is_file() and (tmp_path / "thickness_response.png").is_file()


def test_fashion_paths_quick_format(data_dir, tmp_path, load_script):
    res = load_script("fashion_paths").main(["--quick", "--data-dir", str(data_dir), "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "result.json").read_text())
    for row in saved["pairs"]:
        # The geodesic keeps its best iterate, so it never has more energy than the straight line.
        assert row["geodesic"]["decoded_energy"] <= row["lerp"]["decoded_energy"] * (1 + 1e-5)
    assert len(res["sandal_to_boot"]["frac_ankle_boot"]) == len(res["sandal_to_boot"]["strengths"])
    assert (tmp_path / "tour.gif").is_file() and (tmp_path / "sandal_to_boot.png").is_file()


def test_faces_smile_quick_format(data_dir, tmp_path, load_script):
    res = load_script("faces_smile").main(
        ["--quick", "--data-dir", str(data_dir), "--out", str(tmp_path), "--latent-dim", "8"]
    )
    assert res["flip_rate_add_smile"][0] == 0.0 and res["flip_rate_remove_smile"][0] == 0.0
    assert len(res["chain"]["brightness_measured_change"]) == 3
    assert (tmp_path / "smile_add.png").is_file() and (tmp_path / "smile_then_brightness.png").is_file()


def test_demo_section_on_sprites(tmp_path):
    from latentjax.app import demo
    from latentjax.app.sections import latent as latent_section

    ds = data.load("sprites", limit=256)
    cfg = models.Config(
        kind="vae", arch="mlp", image_shape=ds.train_images.shape[1:], latent_dim=6, hidden=64
    )
    model = train.fit(jax.random.key(0), cfg, ds.train_images, epochs=1, batch_size=128, progress=False).model
    figs = tmp_path / "figures"
    run = demo.DemoRun(
        model,
        cfg,
        tmp_path,
        figs,
        ds.train_images,
        ds.test_images,
        ds.train_labels,
        ds.test_labels,
        tuple(ds.label_names),
        "sprites",
        None,
        jax.random.key(1),
        ds.factors,
    )
    sec = latent_section.section(run, quick=True)
    assert isinstance(sec, report.Section)
    for f in sec.figures:
        assert pathlib.Path(f.path).is_file(), f.path
    assert any(k.startswith("factor x") for k in sec.table)
    assert sec.table["geodesic decoded energy"] <= sec.table["lerp decoded energy"] * (1 + 1e-5)


@pytest.mark.slow
def test_thickness_response_rises_with_strength_on_real_mnist(data_dir, tmp_path, load_script):
    # Closed loop: regression direction from measured thickness, edit, decode, re-measure.
    res = load_script("mnist_thickness").main(
        [
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path),
            "--train-limit",
            "6000",
            "--epochs",
            "4",
            "--num-measure",
            "1500",
            "--num-edit",
            "150",
        ]
    )
    t = np.asarray(res["thickness"])
    assert np.all(np.diff(t) > 0), t
    assert t[-1] - t[0] > 1.0  # more than a pixel between strength -2 and +2
    p = np.asarray(res["class_preserved"])
    s = np.asarray(res["strengths"])
    assert p[np.abs(s) <= 1.0].min() > 0.8
