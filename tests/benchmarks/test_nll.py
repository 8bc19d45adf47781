"""The NLL benchmark runs in ``--quick`` mode and writes the documented JSON; its PyTorch peer runs
the latentjax model's weights (no timing assertions)."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
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
        # the same model and images: the two estimates differ by sampling noise only
        assert abs(by["latentjax"]["nll_same_images"] - by["pytorch_loop"]["nll"]) < 10
    assert "nll_k60" in proc.stdout


@pytest.mark.skipif(not HAS_TORCH, reason="the PyTorch peer needs pip install -e '.[bench]'")
def test_peer_holds_the_latentjax_weights():
    """The peer's encoder and decoder equal latentjax's ``encode`` and ``decode_logits``."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("nll_bench", ROOT / "benchmarks" / "nll.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from latentjax.learn import models

    model = models.create(jax.random.key(1), bench.BURDA)
    net = bench.torch_model(model, bench.BURDA)
    x = (np.random.default_rng(0).random((3, 28, 28, 1)) > 0.5).astype(np.float32)
    z = np.random.default_rng(1).normal(size=(3, 50)).astype(np.float32)
    with torch.no_grad():
        enc = net.encoder(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
        dec = net.decoder(torch.from_numpy(z)).numpy().transpose(0, 2, 3, 1)
    q = jax.vmap(models.encode, in_axes=(None, 0))(model, jnp.asarray(x))
    np.testing.assert_allclose(enc, np.concatenate([q.mean, q.log_var], axis=1), atol=1e-5)
    logits = jax.vmap(models.decode_logits, in_axes=(None, 0))(model, jnp.asarray(z))
    np.testing.assert_allclose(dec, np.asarray(logits), atol=1e-5)
