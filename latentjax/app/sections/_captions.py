"""Captions computed from the demo's numbers: each states what its numbers show, failures included.

Every verdict is a threshold on a number that the section also writes to its table (and so to
``metrics.json``); the thresholds are module constants, named in the captions' wording:

- classes *separate* in a 2-D map when its 10-NN class accuracy is at least `SEPARATE` (0.9),
  *partly separate* from `PARTLY` (0.6), and *do not separate* below;
- a map *orders* a continuous factor when a linear fit of the factor on the two map coordinates
  has R² of at least `ORDERS` (0.5), *partly* from `ORDERS_PARTLY` (0.2);
- reconstructions *keep the class* when a pixel classifier trained on real test images recognises
  at least `KEEPS` (90 %) as many of them as of the originals, *partly* from `KEEPS_PARTLY` (60 %);
- a class vector *works* when at least `FLIPS` (70 %) of the edited examples are classified as the
  target class at strength 1, *partly* from `FLIPS_PARTLY` (30 %);
- a path *stays near the data* when no decoded frame is farther from its nearest training image
  than the farther of its two endpoints plus `OFF_DATA` (1.0) times the data's spacing (the median
  distance from a real test image to its nearest training image);
- a factor is *disentangled* when its best latent dimension has |correlation| of at least
  `DOMINANT` (0.5) and at least twice the next one's.
"""

from __future__ import annotations

from collections.abc import Mapping

SEPARATE, PARTLY = 0.9, 0.6
ORDERS, ORDERS_PARTLY = 0.5, 0.2
FLIPS, FLIPS_PARTLY = 0.7, 0.3
KEEPS, KEEPS_PARTLY = 0.9, 0.6
OFF_DATA = 1.0
DOMINANT = 0.5

_SILENT_VOWEL = ("uni", "use", "usu", "uti", "eu", "one", "once")


def article(word: str) -> str:
    """``word`` with its indefinite article, by its first sound ("an ellipse", "a uniform").

    Args:
        word: a noun phrase.

    Returns:
        ``"a <word>"`` or ``"an <word>"``.

    Examples:
        >>> article("ellipse"), article("Ankle boot"), article("T-shirt/top"), article("unicorn")
        ('an ellipse', 'an Ankle boot', 'a T-shirt/top', 'a unicorn')
        >>> article("hour"), article("8")
        ('an hour', 'an 8')
    """
    w = word.strip().lower()
    vowel = w[:1] in tuple("aeiou") and not w.startswith(_SILENT_VOWEL)
    vowel = vowel or w.startswith(("hour", "honest", "honour", "8", "11", "18"))
    return f"{'an' if vowel else 'a'} {word}"


def separation(accuracy: float, chance: float) -> str:
    """Whether classes separate in a map, by its kNN class accuracy (`SEPARATE`, `PARTLY`).

    Args:
        accuracy: leave-one-out 10-NN class accuracy in the map.
        chance: the accuracy of always guessing the most frequent class.

    Returns:
        E.g. ``"classes do not separate: 10-NN accuracy 0.31 (chance 0.25)"``.

    Examples:
        >>> separation(0.31, 0.25)
        'classes do not separate: 10-NN accuracy 0.31 (chance 0.25)'
        >>> separation(0.95, 0.1)
        'classes separate: 10-NN accuracy 0.95 (chance 0.10)'
    """
    verdict = (
        "separate" if accuracy >= SEPARATE else "partly separate" if accuracy >= PARTLY else "do not separate"
    )
    return f"classes {verdict}: 10-NN accuracy {accuracy:.2f} (chance {chance:.2f})"


def factor_order(r2: float, name: str) -> str:
    """Whether a map orders a continuous factor, by the R² of a linear fit (`ORDERS`, `ORDERS_PARTLY`).

    Args:
        r2: R² of the factor regressed on the two map coordinates.
        name: the factor's name.

    Returns:
        E.g. ``"the map orders 'x' (R² 0.82 of a linear fit on the two coordinates)"``.

    Examples:
        >>> factor_order(0.05, "scale")
        "the map does not order 'scale' (R² 0.05 of a linear fit on the two coordinates)"
    """
    verdict = "orders" if r2 >= ORDERS else "partly orders" if r2 >= ORDERS_PARTLY else "does not order"
    return f"the map {verdict} '{name}' (R² {r2:.2f} of a linear fit on the two coordinates)"


def reconstruction(mse: float, pca_mse: float, latent_dim: int) -> str:
    """The VAE's test reconstruction error against PCA with as many components.

    Examples:
        >>> reconstruction(0.02, 0.01, 16)
        'the VAE reconstructs worse than PCA-16: test MSE 0.0200 vs 0.0100 (2.00x)'
    """
    verdict = "better" if mse < pca_mse else "worse"
    return (
        f"the VAE reconstructs {verdict} than PCA-{latent_dim}: test MSE {mse:.4f} vs {pca_mse:.4f} "
        f"({mse / max(pca_mse, 1e-12):.2f}x)"
    )


def kept_class(accuracy_reconstructions: float, accuracy: float, count: int) -> str:
    """Whether reconstructions keep their class, judged by a pixel classifier (`KEEPS`, `KEEPS_PARTLY`).

    Args:
        accuracy_reconstructions: the classifier's accuracy on the reconstructions.
        accuracy: its accuracy on the original images.
        count: how many images were classified.

    Returns:
        One clause with both accuracies and their ratio.

    Examples:
        >>> print(kept_class(0.45, 0.9, 1000))
        the reconstructions lose the class: a pixel classifier trained on real test images recognises
        45% of 1000 reconstructions and 90% of their originals (ratio 0.50)
    """
    ratio = accuracy_reconstructions / max(accuracy, 1e-12)
    verdict = "keep" if ratio >= KEEPS else "partly keep" if ratio >= KEEPS_PARTLY else "lose"
    return (
        f"the reconstructions {verdict} the class: a pixel classifier trained on real test images "
        f"recognises {accuracy_reconstructions:.0%} of {count} reconstructions and {accuracy:.0%} of their "
        f"originals (ratio {ratio:.2f})"
    )


def class_vector(rate: float, rate0: float, count: int, source: str, target: str) -> str:
    """Whether a class vector turns source examples into the target class (`FLIPS`, `FLIPS_PARTLY`).

    Args:
        rate: fraction of edited examples classified as ``target`` at strength 1.
        rate0: the same fraction at strength 0 (the unedited reconstructions).
        count: how many examples were edited.
        source: the source class's name.
        target: the target class's name.

    Returns:
        One sentence with both fractions and the verdict.

    Examples:
        >>> print(class_vector(0.0, 0.0, 32, "triangle", "ellipse"))
        the vector does not work: at strength 1, 0% of 32 edited triangles are classified as an ellipse (0% at
        strength 0)
    """
    verdict = "works" if rate >= FLIPS else "partly works" if rate >= FLIPS_PARTLY else "does not work"
    return (
        f"the vector {verdict}: at strength 1, {rate:.0%} of {count} edited {source}s are classified as "
        f"{article(target)} ({rate0:.0%} at strength 0)"
    )


def paths(
    table: Mapping[str, float],
    names: tuple[str, ...] = ("lerp", "slerp", "geodesic"),
    chosen: str | None = None,
) -> str:
    """What the path diagnostics show: the lowest energy, the smallest step, which paths leave the data.

    Args:
        table: ``"<name> decoded energy"``, ``"<name> max step"`` and ``"<name> off-data excess"``
            for each path name, and ``"data spacing"``.
        names: the paths.
        chosen: the path the figure recommends (the one nearest the data), named in the text.

    Returns:
        Sentences naming the paths by their numbers (`OFF_DATA` decides "stays near the data").

    Examples:
        >>> t = {"a decoded energy": 2.0, "a max step": 0.5, "a off-data excess": 0.4,
        ...      "b decoded energy": 1.0, "b max step": 0.7, "b off-data excess": 1.6, "data spacing": 0.05}
        >>> paths(t, ("a", "b"), chosen="a")  # doctest: +NORMALIZE_WHITESPACE
        'Lowest decoded energy: b (1.000; a 2.000). Smallest largest step: a (0.500; b 0.700).
        Farthest frame from the nearest training image beyond the farther endpoint, in units of the
        data spacing 0.050 (the median distance from a real test image to its nearest training image):
        a 0.40, b 1.60 (<= 1.0: no frame farther from the data than the endpoints); a keeps every frame
        near the data; b strays farther than its endpoints. Chosen row (nearest the data): a.'
    """

    def ranked(key: str) -> str:
        vals = {k: float(table[f"{k} {key}"]) for k in names}
        best = min(vals, key=vals.get)
        rest = ", ".join(f"{k} {v:.3f}" for k, v in vals.items() if k != best)
        return f"{best} ({vals[best]:.3f}; {rest})"

    excess = {k: float(table[f"{k} off-data excess"]) for k in names}
    near = [k for k in names if excess[k] <= OFF_DATA]
    far = [k for k in names if excess[k] > OFF_DATA]
    parts = []
    if near:
        parts.append(f"{_series(near)} {'keeps' if len(near) == 1 else 'keep'} every frame near the data")
    if far:
        its = "its" if len(far) == 1 else "their"
        parts.append(f"{_series(far)} {'strays' if len(far) == 1 else 'stray'} farther than {its} endpoints")
    return (
        f"Lowest decoded energy: {ranked('decoded energy')}. Smallest largest step: {ranked('max step')}. "
        "Farthest frame from the nearest training image beyond the farther endpoint, in units of the data "
        f"spacing {float(table['data spacing']):.3f} (the median distance from a real test image to its "
        "nearest training image): "
        + ", ".join(f"{k} {excess[k]:.2f}" for k in names)
        + f" (<= {OFF_DATA}: no frame farther from the data than the endpoints); "
        + "; ".join(parts)
        + "."
        + (f" Chosen row (nearest the data): {chosen}." if chosen else "")
    )


def _series(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def disentanglement(best: Mapping[str, tuple[int, float, float]]) -> str:
    """Which factors one latent dimension dominates (`DOMINANT`, and twice the runner-up).

    Args:
        best: factor name -> (best dimension, its |correlation|, the runner-up's |correlation|).

    Returns:
        One sentence listing disentangled and entangled factors.

    Examples:
        >>> disentanglement({"x": (3, 0.9, 0.1), "scale": (1, 0.4, 0.3)})  # doctest: +NORMALIZE_WHITESPACE
        'One dominant dimension (|corr| >= 0.5 and >= 2x the next): x (z3, 0.90).
        None for: scale (best z1, 0.40).'
    """
    good = [f"{k} (z{d}, {c:.2f})" for k, (d, c, c2) in best.items() if c >= DOMINANT and c >= 2 * c2]
    bad = [
        f"{k} (best z{d}, {c:.2f})" for k, (d, c, c2) in best.items() if not (c >= DOMINANT and c >= 2 * c2)
    ]
    parts = [
        f"One dominant dimension (|corr| >= {DOMINANT} and >= 2x the next): {', '.join(good) or 'none'}."
    ]
    if bad:
        parts.append(f"None for: {', '.join(bad)}.")
    return " ".join(parts)
