"""benchmarks/explore_load.py --quick: a real explorer process answers every decode request from 8
concurrent clients (zero errors), and the JSON row's numbers agree with their definitions."""

import json

import numpy as np
import pytest


def test_explore_load_quick_has_no_errors(tmp_path, load_script):
    bench = load_script("explore_load", "benchmarks")
    out = tmp_path / "explore_load.json"
    bench.main(["--quick", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["benchmark"] == "explore_load" and result["versions"]["jax"] and result["quick"] is True
    assert set(result["load_average"]) == {"before", "after"}
    (row,) = result["rows"]
    assert row["case"] == "decode_c8_n64" and row["impl"] == "latentjax"
    assert row["requests"] == 64 and row["clients"] == 8
    assert row["errors"] == 0
    for field in ("p50_ms", "p99_ms", "mean_ms", "requests_per_s", "seconds", "startup_s"):
        assert np.isfinite(row[field]) and row[field] > 0, field
    assert row["p50_ms"] <= row["p99_ms"]
    assert row["requests_per_s"] == pytest.approx(row["requests"] / row["seconds"], rel=1e-12)
    # 8 clients overlap: the run takes less than the sum of the latencies, more than the largest one
    assert row["p99_ms"] / 1e3 <= row["seconds"] * 1.01 < row["mean_ms"] * row["requests"] / 1e3
