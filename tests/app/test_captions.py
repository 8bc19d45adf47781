"""The quick demo tells the truth: every caption's claim agrees with the number in metrics.json, the
figures are labelled, and progress lines mark each section's start and end.

One `latentjax demo --quick` run (module fixture) is checked against its own metrics.json; the
verdicts are recomputed here from the thresholds the captions document (sections/_captions.py).
"""

import html
import json
import os
import re
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # one quick demo: about a minute on 2 idle cores


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Runs the quick demo once; returns (metrics, {figure file: caption}, html, [(seconds, line)])."""
    out = tmp_path_factory.mktemp("demo") / "out"
    env = dict(os.environ)
    env.pop("LATENTJAX_DATA_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "latentjax.app.cli", "demo", "--quick", "--out", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,  # universal newlines: the training bar's \r ends a line too
        env=env,
    )
    lines, t0 = [], time.perf_counter()
    for line in proc.stderr:
        lines.append((time.perf_counter() - t0, line.rstrip("\n")))
    assert proc.wait(timeout=900) == 0, "\n".join(x for _, x in lines[-40:])
    metrics = json.loads((out / "metrics.json").read_text())
    page = (out / "report.html").read_text()
    captions = {
        src.rsplit("/", 1)[-1]: html.unescape(cap)
        for src, cap in re.findall(r"<img src='([^']+)'[^>]*><figcaption>(.*?)</figcaption>", page)
    }
    return metrics, captions, page, lines


def _number(caption, before):
    """The first number after ``before`` in ``caption``."""
    m = re.search(re.escape(before) + r"[^0-9]*([0-9]+(?:\.[0-9]+)?)", caption)
    assert m, (before, caption)
    return float(m.group(1))


def _separation(acc):  # sections/_captions.py: 0.9 and 0.6
    return "classes separate" if acc >= 0.9 else "partly separate" if acc >= 0.6 else "do not separate"


def test_each_section_prints_a_start_and_an_end_line_with_its_time(demo):
    metrics, _, _, lines = demo
    text = [x for _, x in lines]
    for name in ["model", *metrics["section_seconds"]]:
        start = [
            i for i, x in enumerate(text) if x.startswith(f"[demo] section '{name}'") and x.endswith("...")
        ]
        end = [i for i, x in enumerate(text) if x.startswith(f"[demo] section '{name}'") and " done in " in x]
        assert len(start) == 1 and len(end) == 1 and start[0] < end[0], (name, text[-30:])
        if name != "model":
            said = float(re.search(r"done in ([0-9.]+) s", text[end[0]]).group(1))
            assert said == pytest.approx(metrics["section_seconds"][name], abs=0.15)
    # After the training bar closes, the demo speaks at least once per section step: the longest
    # silence is a small part of the sections' time (an absolute bound would depend on the load).
    after = [t for t, x in lines if x.startswith("[demo]")]
    gaps = [b - a for a, b in zip(after, after[1:])]
    assert max(gaps) < max(12.0, 0.5 * (after[-1] - after[0])), gaps


def test_model_captions_state_their_numbers(demo):
    m, cap, _, _ = demo
    rec = cap["reconstructions.png"]
    assert ("better than PCA" in rec) == (m["test_recon_mse"] < m["pca_recon_mse"]), rec
    assert _number(rec, "test MSE") == pytest.approx(m["test_recon_mse"], abs=6e-5)
    scatter = cap["latent_scatter.png"]
    acc = m["latent_map_knn_accuracy"]
    assert _separation(acc) in scatter and _number(scatter, "10-NN accuracy") == pytest.approx(acc, abs=0.006)
    r2 = m["latent_map_factor_r2"]
    verdict = "map orders" if r2 >= 0.5 else "partly orders" if r2 >= 0.2 else "does not order"
    assert verdict in cap[f"latent_scatter_{m['latent_map_factor']}.png"]
    assert "similar images land close together" not in scatter


def test_embedding_caption_matches_each_map(demo):
    m, cap, page, _ = demo
    t, caption = m["sections"]["embedding"], cap["embedding_panels.png"]
    for name in ("PCA", "t-SNE", "UMAP"):
        part = caption.split(f"in {name}, ", 1)[1].split(";")[0]
        assert _separation(t[f"{name} kNN accuracy"]) in part, part
        assert _number(part, "10-NN accuracy") == pytest.approx(t[f"{name} kNN accuracy"], abs=0.006)
    assert "href='projector/'" in page


def test_latent_captions_match_paths_vector_and_factors(demo):
    m, cap, _, _ = demo
    t = m["sections"]["latent"]
    paths = cap["latent_paths.png"]
    names = ("lerp", "slerp", "geodesic")
    lowest = min(names, key=lambda k: t[f"{k} decoded energy"])
    assert f"Lowest decoded energy: {lowest} " in paths, paths
    smallest = min(names, key=lambda k: t[f"{k} max step"])
    assert f"Smallest largest step: {smallest} " in paths, paths
    for k in names:
        ratio = t[f"{k} off-data ratio"]
        assert _number(paths.split("endpoint:")[1], f"{k} ") == pytest.approx(ratio, abs=0.006)
    assert "smoother morph" not in paths
    vec = cap["latent_class_vector.png"]
    rate = t["class vector target rate at strength 1"]
    verdict = "vector works" if rate >= 0.7 else "partly works" if rate >= 0.3 else "does not work"
    assert verdict in vec and f"{rate:.0%} of {t['class vector examples']}" in vec, vec
    sens = cap["latent_factor_sensitivity.png"]
    dominant = sens.split("next): ")[1].split(".")[0]
    for key in [k for k in t if k.endswith(": best |corr|")]:
        factor = key.split("factor ")[1].split(":")[0]
        good = t[key] >= 0.5 and t[key] >= 2 * t[f"factor {factor}: next |corr|"]
        assert (f"{factor} (z{t[f'factor {factor}: best dim']}," in dominant) == good, (factor, sens)


def test_sections_walk_the_same_pair_and_speak_proper_english(demo):
    _, cap, page, _ = demo
    pair = re.search(r"Paths from (an? .+?) to (an? .+?):", cap["latent_paths.png"]).groups()
    assert f"from {pair[0]} to {pair[1]} (the latent section's pair)" in cap["transport_contrast.png"]
    for file, caption in cap.items():
        assert not re.search(r"\ba [aeiouAEIOU]", caption), (file, caption)
        assert not re.search(r"\ban [b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]", caption), (file, caption)
    assert "shapes_path.gif" not in cap  # the shapes section is left out of --quick, and says so
    assert "Left out of --quick" in page


def test_transport_caption_states_the_measured_stripes(demo):
    m, cap, _, _ = demo
    t, c = m["sections"]["transport"], cap["transport_contrast.png"]
    r_in, r_w, r_d = (
        t[f"ripple inside the {k}"] for k in ("inputs", "Wasserstein frames", "displacement frames")
    )
    assert f"ripple {r_w:.2f} (Wasserstein) and {r_d:.2f} (displacement) against {r_in:.2f}" in c, c
    assert ("POT's" in c) == (r_w > 1.5 * r_in) and ("gaps between the moved pixels" in c) == (
        r_d > 1.5 * r_in
    )
