"""experiments/geodesic_on_data.py: a quick format run on sprites (no data directory needed)."""

import json

import numpy as np


def test_geodesic_on_data_quick_format(tmp_path, load_script):
    script = load_script("geodesic_on_data")
    res = script.main(
        [
            "--quick",
            "--datasets",
            "sprites",
            "--train-limit",
            "600",
            "--geodesic-steps",
            "5",
            "--out",
            str(tmp_path),
        ]
    )
    saved = json.loads((tmp_path / "result.json").read_text())
    rows = saved["datasets"]["sprites"]["rows"]
    assert list(rows) == list(script.KINDS)
    for v in rows.values():
        assert v["excess"] >= 0.0 and 0.0 <= v["mean_saturation"] <= 1.0
        assert v["va_energy"] >= v["energy"]  # the variance-aware energy adds the sigma part
        np.testing.assert_allclose(v["mean_distance"], np.mean(v["per_pair_mean_distance"]), rtol=1e-6)
    assert saved["table"] == res["table"] == (tmp_path / "table.md").read_text().strip()
    assert len(res["table"].splitlines()) == 2 + len(script.KINDS)
    assert (tmp_path / "paths_sprites.png").is_file()
