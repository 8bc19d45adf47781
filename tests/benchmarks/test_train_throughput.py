"""The throughput benchmark runs end to end in ``--quick`` mode and writes the documented JSON
(``../shared/BENCHMARKS.md``), its derived numbers consistent with its measurements; no timing
assertions."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _check_consistent(res):
    """Every derived number equals its definition: images/s = batch x models / step time, the same
    FLOPs per image for every implementation of a case, ratios = ours / peer's."""
    for r in res["rows"]:
        pop = r.get("population", 1)
        assert r["images_per_s"] == pytest.approx(r["batch"] * pop / (r["step_ms"] / 1e3), rel=1e-9), r
        assert np.isfinite(r["images_per_s"]) and r["images_per_s"] > 0, r
        if pop > 1:
            assert r["models_images_per_s"] == r["images_per_s"]
        if r["impl"].startswith("latentjax"):
            assert r["compile_s"] is not None and np.isfinite(r["compile_s"]), r
    for case in {r["case"] for r in res["rows"]}:
        by = {r["impl"]: r for r in res["rows"] if r["case"] == case}
        flops_per_image = {k: 1e9 * r["gflops_per_s"] / r["images_per_s"] for k, r in by.items()}
        np.testing.assert_allclose(list(flops_per_image.values()), flops_per_image["latentjax"], rtol=1e-9)
        ratios = res["ratios"][case]
        for k, r in by.items():
            if k != "latentjax":
                assert ratios[f"latentjax/{k}"] == pytest.approx(
                    by["latentjax"]["images_per_s"] / r["images_per_s"], rel=1e-9
                )
    single = {r["case"]: r["images_per_s"] for r in res["rows"] if r["impl"] == "latentjax"}
    assert res["ratios"]["mlp_vae_b128_pop8"]["population/single"] == pytest.approx(
        single["mlp_vae_b128_pop8"] / single["mlp_vae_b128"], rel=1e-9
    )


def test_quick_run_writes_benchmark_json(tmp_path):
    # The PyTorch peer is a bench extra; without it the latentjax rows still run and are checked.
    has_torch = importlib.util.find_spec("torch") is not None
    out = tmp_path / "throughput.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--quick", "--json", str(out)]
        + ([] if has_torch else ["--no-torch"]),
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["benchmark"] == "train_throughput"
    assert res["device"].startswith("cpu:") and "jax" in res["versions"]
    from latentjax.learn import _onednn as onednn

    # conv rows: the oneDNN kernels where available, beside a row with XLA's convolutions
    conv_impls = {r["impl"]: r["conv_kernels"] for r in res["rows"] if r["case"] == "conv_vae_b256"}
    assert conv_impls["latentjax"] == ("onednn" if onednn.available() else "xla")
    assert conv_impls["latentjax_xla_default"] == "xla"
    assert conv_impls.get("latentjax_xla_convs", "xla") == "xla"
    assert ("latentjax_xla_convs" in conv_impls) == onednn.available()
    assert all(r["conv_kernels"] in ("xla", None) for r in res["rows"] if r["case"] != "conv_vae_b256")
    if not has_torch:
        assert {r["impl"] for r in res["rows"]} <= {
            "latentjax",
            "latentjax_xla_default",
            "latentjax_xla_convs",
        }
        assert {r["case"] for r in res["rows"]} == {
            "mlp_vae_b128",
            "mlp_vae_b1024",
            "conv_vae_b256",
            "mlp_vae_b128_pop8",
        }
        _check_consistent(res)
        return
    assert "torch" in res["versions"]
    cases = {r["case"] for r in res["rows"]}
    assert cases == {"mlp_vae_b128", "mlp_vae_b1024", "conv_vae_b256", "mlp_vae_b128_pop8"}
    for r in res["rows"]:
        assert r["impl"] in (
            "latentjax",
            "latentjax_xla_default",
            "latentjax_xla_convs",
            "pytorch_eager",
            "pytorch_compile",
        )
    for case in ("mlp_vae_b128", "mlp_vae_b1024", "conv_vae_b256"):
        impls = {r["impl"] for r in res["rows"] if r["case"] == case}
        assert {"latentjax", "pytorch_eager"} <= impls
        assert {"latentjax/pytorch_eager", "latentjax/latentjax_xla_default"} <= set(res["ratios"][case])
    _check_consistent(res)
    assert res["compiler_options"] == {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    }
    pop = [r for r in res["rows"] if r["case"] == "mlp_vae_b128_pop8" and r["impl"] == "latentjax"]
    assert len(pop) == 1 and pop[0]["population"] == 2
    assert "mlp_vae_b128" in proc.stdout  # the printed table
