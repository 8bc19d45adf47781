"""Smoke tests: the DeepSDF furniture experiment (two training steps) and the shapes demo section."""

import json
import pathlib

import jax
from PIL import Image

from latentjax.app import report


def test_deepsdf_furniture_quick_format(tmp_path, load_script):
    res = load_script("deepsdf_furniture").main(
        ["--quick", "--out", str(tmp_path), "--json", str(tmp_path / "r.json")]
    )
    saved = json.loads((tmp_path / "r.json").read_text())
    for k in (
        "chamfer_reconstruction",
        "chamfer_nearest_training",
        "chamfer_mean_shape",
        "train_samples_per_s",
    ):
        assert isinstance(saved[k], float) and saved[k] >= 0, k
    assert saved["num_test_shapes"] == res["num_test_shapes"] == 3
    assert res["config"]["num_steps"] == 2
    gif = Image.open(tmp_path / "path_slerp.gif")
    assert gif.n_frames == res["config"]["path_frames"]
    assert (tmp_path / "code_map.png").is_file() and (tmp_path / "reconstructions.png").is_file()


def test_shapes_section_quick(tmp_path):
    from types import SimpleNamespace

    from latentjax.app.sections import shapes

    run = SimpleNamespace(figures=tmp_path, key=jax.random.key(0))
    sec = shapes.section(run, quick=True)
    assert isinstance(sec, report.Section) and sec.table["shapes"] == 12
    assert all(pathlib.Path(f.path).is_file() for f in sec.figures)
    assert Image.open(sec.figures[0].path).n_frames == 7
