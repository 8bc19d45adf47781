"""benchmarks/explore_inverse.py --quick: the README table's rows, in the common JSON format, with
errors that agree with their definitions (the mean latent's error is the spread itself: 1)."""

import json

import numpy as np


def test_explore_inverse_quick_rows(tmp_path, load_script):
    bench = load_script("explore_inverse", "benchmarks")
    out = tmp_path / "explore_inverse.json"
    bench.main(["--quick", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["benchmark"] == "explore_inverse" and result["versions"]["jax"] and result["quick"]
    rows = {r["case"]: r for r in result["rows"]}
    want = {f"table_{m}_{i}" for m in ("pca", "tsne", "umap") for i in ("idw", "nearest", "mean")}
    want |= {f"maps_{m}_{i}" for m in ("tsne", "umap") for i in ("inverse_transform", "idw")}
    assert set(rows) == want and all(r["impl"] == "latentjax" for r in rows.values())
    for r in rows.values():
        assert np.isfinite(r["latent_error"]) and r["latent_error"] > 0 and r["image_error"] > 0
    for m in ("pca", "tsne", "umap"):
        assert abs(rows[f"table_{m}_mean"]["latent_error"] - 1.0) < 1e-3
    assert rows["maps_umap_inverse_transform"]["ms_per_position"] > 0
    assert rows["maps_umap_inverse_transform"]["ms_one_position"] > 0
