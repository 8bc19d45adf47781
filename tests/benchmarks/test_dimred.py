"""benchmarks/dimred.py --quick writes its rows in the shared format (timings are not checked)."""

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_benchmark_quick_writes_rows(tmp_path, data_dir, load_script):
    bench = load_script("dimred", "benchmarks")
    out = tmp_path / "dimred.json"
    bench.main(["--quick", "--skip-sklearn", "--skip-umap", "--data-dir", str(data_dir), "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["benchmark"] == "dimred" and result["versions"]["jax"]
    rows = {(r["case"], r["impl"]): r for r in result["rows"]}
    ours = rows[("tsne_n300", "latentjax")]
    for field in ("seconds", "cold_seconds", "trustworthiness", "knn_recall", "kl"):
        assert np.isfinite(ours[field])
    if ("tsne_n300", "opentsne") in rows:
        assert "seconds_vs_opentsne" in ours and "kl_vs_opentsne" in ours
