"""The accelerator suite in ``--quick`` mode on CPU: every step runs at tiny sizes and lands in one
JSON (``../shared/BENCHMARKS.md`` rows) and a table; a failing step is recorded and the suite goes on."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "accelerator.py"
# The burda step runs experiments/burda_nll.py --quick (its own smoke test is in tests/experiments).
QUICK_STEPS = "install,tests,throughput,tsne,umap,barycenter,nll"


def test_quick_suite_writes_one_json_and_a_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quick", "--steps", QUICK_STEPS],
        capture_output=True,
        text=True,
        timeout=900,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "accelerator.json").read_text())
    assert res["benchmark"] == "accelerator" and res["quick"] and res["device"].startswith("cpu:")
    status = {s["step"]: s["status"] for s in res["steps"]}
    assert status == {
        "install": "skipped",  # no --wheels
        "tests": "ok",
        "throughput": "ok",
        "tsne": "ok",
        "umap": "ok",
        "barycenter": "ok",
        "nll": "ok",
    }, [s for s in res["steps"] if s["status"] != "ok"]
    rows = {r["case"]: r for r in res["rows"] if r["impl"] != "pytorch_loop"}
    for case in ("mlp_vae_b128", "mlp_vae_b4096", "conv_vae_b256"):
        r = rows[case]
        assert r["images_per_s"] == pytest.approx(r["batch"] / (r["step_ms"] / 1e3), rel=1e-9)
    assert rows["accelerator_tests"]["passed"] >= 1 and not rows["accelerator_tests"].get("failed")
    assert rows["tsne_n500"]["finite"] and rows["umap_n500"]["finite"]
    assert rows["barycenter_28_path9"]["mass_error"] < 0.05  # 20 iterations; 2e-8 after 300
    assert 0 < rows["nll_k50_n8"]["nll"] < 784 * 10
    peer = [r for r in res["rows"] if r["impl"] == "pytorch_loop"]  # when PyTorch is installed
    if peer:
        ratio = rows["nll_k50_n8"]["images_per_s_vs_pytorch_loop"]
        assert ratio == pytest.approx(rows["nll_k50_n8"]["images_per_s"] / peer[0]["images_per_s"])
    # targets are named but not judged at --quick sizes
    assert rows["mlp_vae_b4096"]["target"] == "images_per_s >= 5e+06" and rows["mlp_vae_b4096"]["met"] is None
    assert rows["suite"]["seconds"] > 0
    assert "mlp_vae_b4096" in proc.stdout and "status" in proc.stdout


def test_a_failing_step_is_recorded_and_the_suite_goes_on(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("accelerator_suite", SCRIPT)
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)

    def broken(ctx):
        raise RuntimeError("no such kernel\nsecond line")

    monkeypatch.setitem(suite.STEPS, "tsne", broken)
    monkeypatch.setitem(
        suite.STEPS, "umap", lambda ctx: [{"case": "umap_n70000", "impl": "latentjax", "seconds": 0.5}]
    )
    res = suite.main(["--out", str(tmp_path), "--steps", "tsne,umap,install"])
    steps = {s["step"]: s for s in res["steps"]}
    assert steps["tsne"]["status"] == "failed" and steps["tsne"]["error"] == "RuntimeError: no such kernel"
    assert "Traceback" in steps["tsne"]["traceback"]
    assert steps["umap"]["status"] == "ok" and steps["install"]["status"] == "skipped"
    umap = next(r for r in res["rows"] if r["case"] == "umap_n70000")
    assert umap["met"] is True and umap["target"] == "seconds <= 1"  # judged outside --quick
    assert json.loads((tmp_path / "accelerator.json").read_text())["steps"] == json.loads(
        json.dumps(res["steps"])
    )
    with pytest.raises(SystemExit):
        suite.main(["--out", str(tmp_path), "--steps", "nonsense"])
