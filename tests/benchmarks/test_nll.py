"""The NLL benchmark runs in ``--quick`` mode and writes the documented JSON; its PyTorch peer runs
the latentjax model (equal encoder and decoder outputs); no timing assertions."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_quick_run_writes_benchmark_json(tmp_path):
    out = tmp_path / "nll.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "nll.py"), "--quick", "--json", str(out)]
        + ([] if HAS_TORCH else ["--no-torch"]),
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["benchmark"] == "nll" and res["device"].startswith("cpu:") and "jax" in res["versions"]
    by = {r["impl"]: r for r in res["rows"]}
    assert set(by) == ({"latentjax", "pytorch_loop"} if HAS_TORCH else {"latentjax"})
    for r in res["rows"]:
        assert r["case"] == "nll_k60" and r["k"] == 60
        assert r["images_per_s"] == pytest.approx(r["n"] / r["seconds"], rel=1e-9)
        assert np.isfinite(r["nll"]) and r["nll"] > 0
    if HAS_TORCH:
        ratio = res["ratios"]["nll_k60"]["latentjax/pytorch_loop"]
        assert ratio == pytest.approx(by["latentjax"]["images_per_s"] / by["pytorch_loop"]["images_per_s"])
        # the same model (its encoder and decoder outputs equal latentjax's) and images: the two
        # estimates differ by sampling noise only
        assert by["pytorch_loop"]["outputs_max_abs_diff"] < 1e-4
        assert abs(by["latentjax"]["nll_same_images"] - by["pytorch_loop"]["nll"]) < 10
    assert "nll_k60" in proc.stdout
