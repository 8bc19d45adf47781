"""experiments/disentangle.py end to end at a toy size (2 steps, FactorVAE as a population of 2 seeds).

References: MIG recomputed with scikit-learn's ``mutual_info_score`` on the codes the script emits
(``--save-codes``), as disentanglement_lib computes it (20-bin histograms of each code); and, through
the script's own metric path, the factors themselves as codes, whose MIG is that closed form's value
(the second-best code carries nothing about a factor, so each factor's gap is its binned share).
"""

import json

import jax
import numpy as np
import pytest
from sklearn.metrics import mutual_info_score


def mig_sklearn(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> float:
    """disentanglement_lib's MIG: histogram-discretised codes, sklearn MI, gap over factor entropy."""
    disc = [np.digitize(c, np.histogram(c, num_bins)[1][:-1]) for c in codes.T]
    gaps = []
    for f in factors.T:
        mi = np.sort([mutual_info_score(f, d) for d in disc])[::-1]
        gaps.append((mi[0] - mi[1]) / mutual_info_score(f, f))
    return float(np.mean(gaps))


class FactorsAsImages:
    """A ground-truth set whose "images" are the factor indices: the identity represents them exactly."""

    factor_sizes = (3, 6, 40, 32, 32)

    def sample_factors(self, key, num_samples):
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
        return rng.integers(0, self.factor_sizes, size=(num_samples, 5))

    def sample_observations_from_factors(self, key, factors):
        return np.asarray(factors, np.float64)


@pytest.fixture(scope="module")
def quick(load_script, tmp_path_factory):
    mod = load_script("disentangle")
    out = tmp_path_factory.mktemp("disentangle")
    argv = ["--quick", "--models", "FactorVAE", "--population", "on", "--metrics", "mig,factor_vae"]
    return mod, out, mod.main([*argv, "--save-codes", "--out", str(out)])


def test_disentangle_quick_writes_the_table_and_figures(quick):
    _, out, result = quick
    assert (result["steps"], result["seeds"], result["population"]) == (2, 2, True)
    assert set(result["summary"]) == {"FactorVAE"}
    assert (out / "traversals_factorvae.png").stat().st_size > 1000
    assert result["models"]["FactorVAE"]["objective"]["gamma"] == 35.0
    assert json.loads((out / "result.json").read_text())["published"]["mig_infogan_cr"]["beta-TCVAE"] == 0.45
    md = (out / "table.md").read_text()
    assert "| FactorVAE | " in md and "| 0.15 | " in md and "| 0.82 | " in md  # InfoGAN-CR's Table 1
    assert "MIG 0.43" in md  # its FactorVAE re-run (gamma 40)
    fv = result["summary"]["FactorVAE"]["factor_vae"]["values"]
    assert len(fv) == 2 and all(0.0 <= v <= 1.0 for v in fv)


def test_disentangle_mig_matches_sklearn_on_the_emitted_codes(quick):
    _, out, result = quick
    saved = np.load(out / "codes.npz")
    want = mig_sklearn(saved["codes_FactorVAE"], saved["factors"])
    np.testing.assert_allclose(result["models"]["FactorVAE"]["scores"][0]["mig"], want, atol=1e-6)


def test_disentangle_mig_of_the_factors_themselves(quick):
    mod = quick[0]
    scores, codes, factors = mod.metrics(
        jax.random.key(0), FactorsAsImages(), lambda f: f, eval_points=2000, vote_points=20, which=("mig",)
    )
    np.testing.assert_array_equal(codes, factors)
    assert scores["mig"] == pytest.approx(mig_sklearn(codes, factors), abs=1e-6)
    assert scores["mig"] > 0.85  # shape and scale exactly, rotation and x/y through 20 bins
