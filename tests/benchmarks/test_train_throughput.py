"""The throughput benchmark runs end to end in ``--quick`` mode and writes the documented JSON
(``../shared/BENCHMARKS.md``); no timing assertions."""

import importlib.util
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


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
        assert all(r["images_per_s"] > 0 and r["gflops_per_s"] > 0 for r in res["rows"])
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
        assert r["images_per_s"] > 0 and r["gflops_per_s"] > 0
        if r["impl"].startswith("latentjax"):
            assert r["compile_s"] > 0
    for case in ("mlp_vae_b128", "mlp_vae_b1024", "conv_vae_b256"):
        impls = {r["impl"] for r in res["rows"] if r["case"] == case}
        assert {"latentjax", "pytorch_eager"} <= impls
        assert res["ratios"][case]["latentjax/pytorch_eager"] > 0
        assert res["ratios"][case]["latentjax/latentjax_xla_default"] > 0
    assert res["compiler_options"] == {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    }
    pop = [r for r in res["rows"] if r["case"] == "mlp_vae_b128_pop8" and r["impl"] == "latentjax"]
    assert len(pop) == 1 and pop[0]["population"] == 2 and pop[0]["models_images_per_s"] > 0
    assert "mlp_vae_b128" in proc.stdout  # the printed table
