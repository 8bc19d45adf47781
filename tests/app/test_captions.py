"""The quick demo tells the truth: every caption's claim agrees with the number in metrics.json, the
figures are labelled, and progress lines mark each section's start and end.

One `latentjax demo --quick` run (session fixture, tests/app/conftest.py) is checked against its own
metrics.json; the verdicts are recomputed here from the thresholds the captions document
(sections/_captions.py).
"""

import re

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # one quick demo: about a minute on 2 idle cores


@pytest.fixture(scope="module")
def demo_run(quick_demo):
    """The quick demo (tests/app/conftest.py, shared with the browser test): (metrics, {figure file:
    caption}, html, [(seconds, line)], folder)."""
    return quick_demo


@pytest.fixture(scope="module")
def demo(demo_run):
    """(metrics, {figure file: caption}, html, [(seconds, line)]) of the quick demo."""
    return demo_run[:4]


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
    ratio = m["classifier_accuracy_reconstructions"] / m["classifier_accuracy"]
    assert m["reconstruction_class_ratio"] == pytest.approx(ratio, abs=1e-3)
    kept = "keep the class" if ratio >= 0.9 else "partly keep" if ratio >= 0.6 else "lose the class"
    assert f"reconstructions {kept}" in rec and _number(rec, "(ratio") == pytest.approx(ratio, abs=0.006), rec
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
    names = ("lerp", "slerp", "geodesic", "variance-aware")
    lowest = min(names, key=lambda k: t[f"{k} decoded energy"])
    assert f"Lowest decoded energy: {lowest} " in paths, paths
    smallest = min(names, key=lambda k: t[f"{k} max step"])
    assert f"Smallest largest step: {smallest} " in paths, paths
    spacing = t["data spacing"]
    assert _number(paths, "data spacing") == pytest.approx(spacing, abs=6e-4)
    for k in names:
        # The excess is the farthest frame's distance beyond the farther endpoint's, in spacings.
        excess = (t[f"{k} farthest frame distance"] - t[f"{k} endpoint distance"]) / spacing
        assert t[f"{k} off-data excess"] == pytest.approx(excess, abs=0.01)
        said = _number(paths.split("training image): ", 1)[1], f"{k} ")
        assert said == pytest.approx(t[f"{k} off-data excess"], abs=0.006)
        # The verdict clauses: "<names> keep(s) every frame near the data; <names> stray(s) ...".
        verdicts = paths.split("than the endpoints); ", 1)[1].split(". Chosen row")[0].split("; ")
        said_near = [v for v in verdicts if v.endswith("near the data") and re.search(rf"\b{k}\b", v)]
        assert bool(said_near) == (t[f"{k} off-data excess"] <= 1.0), (k, paths)
    chosen = min(names, key=lambda k: t[f"{k} off-data excess"])
    assert t["chosen path"] == chosen and f"Chosen row (nearest the data): {chosen}." in paths
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


def test_each_seed_idea_visibly_works_on_the_default_set(demo_run):
    """Issue 21: on the embedded sprites the quick demo's own output shows every seed idea working.

    The latent 10-NN accuracy is recomputed with scikit-learn from the exported projector files
    (the 1,000 latents and their labels), independently of latentjax's kNN.
    """
    m, _, _, _, out = demo_run
    neighbors = pytest.importorskip("sklearn.neighbors")
    z = np.loadtxt(out / "projector" / "tensors.tsv", delimiter="\t")
    labels = np.loadtxt(out / "projector" / "metadata.tsv", delimiter="\t", skiprows=1, usecols=0)
    # Leave-one-out 10-NN: the 11 nearest include the point itself (distance 0), which is dropped.
    near = neighbors.NearestNeighbors(n_neighbors=11).fit(z).kneighbors(z, return_distance=False)[:, 1:]
    votes = np.stack([(labels[near] == c).sum(axis=1) for c in range(4)], axis=1)
    emb = m["sections"]["embedding"]
    assert np.mean(np.argmax(votes, axis=1) == labels) == pytest.approx(emb["latent kNN accuracy"], abs=0.01)
    ideas = m["seed_ideas"]
    lat = m["sections"]["latent"]
    assert ideas["reconstructions_keep_the_class"]["value"] == m["reconstruction_class_ratio"] >= 0.9
    assert m["classifier_accuracy"] >= 0.9  # a fair judge: it knows the classes of unseen real images
    assert ideas["tsne_separates_classes"]["value"] == emb["t-SNE kNN accuracy"] >= 0.9
    assert ideas["class_vector_flips"]["value"] == lat["class vector target rate at strength 1"] >= 0.7
    assert lat["class vector target rate at strength 0"] <= 0.1  # the unedited sources are not the target
    chosen = lat["chosen path"]
    assert ideas["interpolation_stays_near_data"]["value"] == lat[f"{chosen} off-data excess"] <= 1.0
    assert all(v["ok"] for v in ideas.values()), ideas
