"""``latentjax demo``: train a VAE, measure it against PCA, draw its latent space, write a report.

The report opens with the model (reconstructions, samples, a latent map, a decoded grid); each
later topic adds a section, one function per topic in `SECTIONS`.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from latentjax import data
from latentjax.app import report
from latentjax.app.sections import _captions, _classifier, disentangle, embedding, latent, shapes, transport
from latentjax.app.sections import model as model_section
from latentjax.errors import InputError
from latentjax.learn import _manifest, models, runs, train
from latentjax.look import pca


class DemoRun(NamedTuple):
    """What the demo hands to each report section: the trained model, its data and where to write.

    Attributes:
        model: the trained ``models.AutoEncoder``.
        config: its ``models.Config``.
        out: the demo folder.
        figures: the folder for figures (``out / "figures"``).
        train_images: uint8 ``(n, h, w, c)``.
        test_images: uint8 ``(m, h, w, c)``.
        train_labels: ``(n,)`` integer labels.
        test_labels: ``(m,)`` integer labels.
        label_names: the name of each label value.
        dataset: the data set's name (``data.load``).
        data_dir: the data directory passed to the demo, or None.
        key: a ``jax.random.key`` for the sections' randomness.
        factors: the data set's known factors (``data.Dataset.factors``), or None.
        classifier: a pixel classifier (``sections._classifier``) trained on the second half of
            the test images, which judges decoded images; None: the sections that need one fit it.

    Examples:
        >>> DemoRun._fields[:4]
        ('model', 'config', 'out', 'figures')
    """

    model: models.AutoEncoder
    config: models.Config
    out: pathlib.Path
    figures: pathlib.Path
    train_images: np.ndarray
    test_images: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray
    label_names: tuple
    dataset: str
    data_dir: str | None
    key: jax.Array
    factors: dict | None = None
    classifier: Any = None


Section = Callable[..., report.Section]
# The report's sections after the model's, in order: `section(run, *, quick) -> report.Section`.
SECTIONS: tuple[Section, ...] = (
    embedding.section,
    latent.section,
    transport.section,
    shapes.section,
    disentangle.section,
)


def device_description() -> str:
    """The devices JAX computes on, in one line (the demo's, the experiments' and their JSON's).

    Returns:
        ``"cpu: <cores> cores (<CPU model>), <n> device(s)"`` or ``"<platform>: <n> x <kind>"``.

    Examples:
        >>> device_description().split(":")[0] in ("cpu", "gpu", "tpu")
        True
    """
    devices = jax.devices()
    if devices[0].platform != "cpu":
        return f"{devices[0].platform}: {len(devices)} x {devices[0].device_kind}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu: {cores} cores ({name}), {len(devices)} device(s)"


def pca_recon_mse(
    train_images: np.ndarray, test_images: np.ndarray, *, num_components: int, max_fit: int = 20000
) -> float:
    """Test reconstruction MSE of PCA, the baseline a VAE with as many latents should beat.

    Args:
        train_images: uint8 ``(n, h, w, c)``; PCA is fitted to the first ``max_fit``.
        test_images: uint8 ``(m, h, w, c)``, projected and reconstructed.
        num_components: the number of principal components (the VAE's ``latent_dim``).
        max_fit: the most training images to fit on.

    Returns:
        The mean squared error per pixel, pixels in [0, 1] and reconstructions clipped to it.

    Examples:
        >>> x = data.sprites(num_images=200, size=16)[0]
        >>> round(pca_recon_mse(x[:150], x[:10], num_components=150), 6)  # in the span: exact
        0.0
        >>> 0 < pca_recon_mse(x[:150], x[150:], num_components=2) < 0.2
        True
    """
    train_images = data.validate_images(train_images, what="demo.pca_recon_mse: train_images", dtype="uint8")
    test_images = data.validate_images(test_images, what="demo.pca_recon_mse: test_images", dtype="uint8")
    x = train_images[:max_fit].reshape(min(len(train_images), max_fit), -1).astype(np.float32) / 255.0
    # Randomized SVD where it is large (look.pca's "auto"): the same MSE to ~1e-6, 2x faster on CPU.
    fitted = pca.fit(x, num_components=num_components, key=jax.random.key(0))
    t = test_images.reshape(len(test_images), -1).astype(np.float32) / 255.0
    rec = np.clip(np.asarray(pca.inverse_transform(fitted, pca.transform(fitted, t))), 0.0, 1.0)
    return float(np.mean((rec.astype(np.float64) - t) ** 2))


def seed_ideas(metrics: dict) -> dict:
    """Whether each seed idea visibly works, from the demo's numbers (``metrics.json``'s ``seed_ideas``).

    The four checks and their thresholds (``sections/_captions.py``):

    - ``reconstructions_keep_the_class``: the pixel classifier trained on real test images is at
      least 90 % as accurate on reconstructions as on the originals (``reconstruction_class_ratio``);
    - ``tsne_separates_classes``: 10-NN class accuracy in the t-SNE map at least 0.9;
    - ``class_vector_flips``: at least 70 % of the edited examples classified as the target class at
      strength 1;
    - ``interpolation_stays_near_data``: the chosen path's farthest frame from its nearest training
      image is no farther than its farther endpoint's plus the data's spacing (off-data excess <= 1).

    Args:
        metrics: the demo's metrics with its ``sections`` tables.

    Returns:
        ``{check: {"value": number or None, "threshold": number, "ok": bool}}``; a check whose
        section failed or was left out has value None and is not ok.

    Examples:
        >>> seed_ideas({"reconstruction_class_ratio": 0.95, "sections": {}})["reconstructions_keep_the_class"]
        {'value': 0.95, 'threshold': 0.9, 'ok': True}
    """
    sections = metrics.get("sections", {})
    emb, lat = sections.get("embedding", {}), sections.get("latent", {})
    chosen = lat.get("chosen path")
    checks = {
        "reconstructions_keep_the_class": (metrics.get("reconstruction_class_ratio"), _captions.KEEPS, 1),
        "tsne_separates_classes": (emb.get("t-SNE kNN accuracy"), _captions.SEPARATE, 1),
        "class_vector_flips": (lat.get("class vector target rate at strength 1"), _captions.FLIPS, 1),
        "interpolation_stays_near_data": (lat.get(f"{chosen} off-data excess"), _captions.OFF_DATA, -1),
    }
    return {
        name: {
            "value": value,
            "threshold": threshold,
            "ok": value is not None and (value >= threshold if sign > 0 else value <= threshold),
        }
        for name, (value, threshold, sign) in checks.items()
    }


def _model_section(run: DemoRun, metrics: dict) -> report.Section:
    """Reconstructions, prior samples, the latent map and a decoded grid (``sections/model.py``)."""
    return model_section.section(run, metrics)


# What a demo writes in its folder besides the run's files (runs.RunDir records those itself).
DEMO_FILES = ("report.html", "metrics.json", "figures", "embedding_viewer.html", "projector")


def _check_out(out: pathlib.Path, overwrite: bool) -> None:
    """Refuses a non-empty ``out`` unless ``overwrite``, which deletes only what latentjax wrote there."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    if not (out.exists() and any(out.iterdir())):
        return
    if not overwrite:
        raise InputError(
            f"{out} is not empty (it holds an earlier run); choose another --out or pass "
            "--overwrite (nothing was overwritten)"
        )
    clash = _manifest.foreign(out, (*DEMO_FILES, *runs.RUN_FILES))
    if clash:
        raise InputError(
            f"{out} holds {', '.join(clash)}, not written by latentjax (--overwrite deletes only the "
            f"files its {_manifest.MANIFEST} lists); move them away or choose another --out "
            "(nothing was deleted)"
        )
    _manifest.remove(out)


def _plain(v: Any) -> Any:
    """A NumPy/JAX scalar or array in a section table as plain JSON (``json.dumps(default=...)``)."""
    return np.asarray(v).tolist() if hasattr(v, "dtype") else str(v)


def _run_sections(
    run: DemoRun, sections: tuple[Section, ...], *, quick: bool, progress: bool = False
) -> tuple[list, dict, dict]:
    """Each section's ``report.Section``, seconds and error; a failing section becomes a note.

    With ``progress``, a line on stderr as each section starts and ends (``report.timed``).
    """
    out, timings, errors = [], {}, {}
    for section in sections:
        # `sections/<topic>.py`'s `section` is named for its topic, any other function by its name.
        name = section.__module__.rsplit(".", 1)[-1] if section.__name__ == "section" else section.__name__
        t0 = time.perf_counter()
        try:
            with report.timed(f"section '{name}'", enabled=progress):
                out.append(section(run, quick=quick))
        except Exception as e:  # a broken section must not cost the user the rest of the report
            errors[name] = f"{type(e).__name__}: {e}"
            print(f"latentjax demo: section '{name}' failed: {errors[name]}", file=sys.stderr)
            traceback.print_exc()
            out.append(report.Section(f"{name} (failed)", f"This section failed: {errors[name]}"))
        timings[name] = round(time.perf_counter() - t0, 2)
    return out, timings, errors


def run(
    *,
    dataset: str = "sprites",
    data_dir: str | None = None,
    out: str | os.PathLike = "latentjax-demo",
    epochs: int | None = None,
    quick: bool = False,
    seed: int = 0,
    arch: str = "mlp",
    latent_dim: int | None = None,
    sections: tuple[Section, ...] = SECTIONS,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Trains a VAE, writes the report ``out/report.html`` and returns the metrics.

    Args:
        dataset: a name for ``data.load``.
        data_dir: its data directory (not needed for ``"sprites"``).
        out: the demo folder; it must be empty or absent.
        epochs: training epochs (default 6 with ``quick``, else 14).
        quick: 8,000 sprites (4,000 images of other sets), a smaller model and short sections.
        seed: seeds the data split, the model and the sections.
        arch: ``"mlp"`` or ``"conv"``.
        latent_dim: latent size (default 10 for sprites, else 16).
        sections: the report's sections after the model's (default `SECTIONS`).
        overwrite: replace an earlier demo in ``out``.
        progress: show a progress bar while training.

    Returns:
        The metrics, also written to ``out/metrics.json``: test ELBO and MSE, PCA's MSE at the same
        latent size, throughput, the device, and each section's seconds and errors.

    Raises:
        InputError: ``out`` holds something else, or ``conv`` for images whose sides are not
            divisible by 4.

    Examples:
        >>> m = run(out="/tmp/demo", quick=True)  # doctest: +SKIP
        >>> m["test_recon_mse"] < m["pca_recon_mse"]  # doctest: +SKIP
        True
    """
    t_start = time.perf_counter()
    out = pathlib.Path(out)
    _check_out(out, overwrite)
    limit = (8000 if dataset == "sprites" else 4000) if quick else None
    ds = data.load(dataset, data_dir=data_dir, limit=limit, seed=seed)
    epochs = epochs or (6 if quick else 14)
    shape = tuple(ds.train_images.shape[1:])
    if arch == "conv" and (shape[0] % 4 or shape[1] % 4):
        raise InputError(f"--arch conv needs image sides divisible by 4; {dataset} has {shape}")
    latent_dim = latent_dim or (10 if dataset == "sprites" else 16)
    likelihood = "bernoulli" if shape[-1] == 1 else "gaussian"
    cfg = models.Config(
        kind="vae",
        arch=arch,
        image_shape=shape,
        latent_dim=latent_dim,
        likelihood=likelihood,
        hidden=256 if quick else 512,
        depth=2,
    )
    fit_key, eval_key, run_key = jax.random.split(jax.random.key(seed), 3)
    _manifest.claim(out, DEMO_FILES)  # recorded before written: --overwrite may delete them later
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = train.fit(
        fit_key,
        cfg,
        ds.train_images,
        epochs=epochs,
        batch_size=128,
        learning_rate=1e-3,
        out_dir=out,
        progress=progress,
        settings={"seed": seed, "dataset": dataset},
    )
    train_seconds = time.perf_counter() - t0
    with report.timed("evaluating the model and the PCA baseline", enabled=progress):
        ev = train.evaluate(result.model, eval_key, ds.test_images)
        report.step(f"PCA-{latent_dim} baseline on {min(len(ds.train_images), 20000)} training images")
        pca_mse = pca_recon_mse(ds.train_images, ds.test_images, num_components=latent_dim)
        report.step("a pixel classifier on the second half of the test images")
        clf = _classifier.fit_on_test_half(jax.random.fold_in(eval_key, 1), ds.test_images, ds.test_labels)
    metrics: dict[str, Any] = {
        "dataset": dataset,
        "model": f"{cfg.kind}/{cfg.arch}",
        "latent_dim": latent_dim,
        "epochs": epochs,
        "num_train": int(len(ds.train_images)),
        "num_test": int(len(ds.test_images)),
        "test_elbo": ev["elbo"],
        "test_recon_mse": ev["recon_mse"],
        "pca_recon_mse": pca_mse,
        "train_images_per_s": train.throughput(result.history),
        "train_seconds": train_seconds,
        "jax_version": jax.__version__,
        "device": device_description(),
        "quick": quick,
    }
    demo_run = DemoRun(
        result.model,
        cfg,
        out,
        fig_dir,
        ds.train_images,
        ds.test_images,
        np.asarray(ds.train_labels),
        np.asarray(ds.test_labels),
        tuple(ds.label_names),
        dataset,
        data_dir,
        run_key,
        ds.factors,
        clf,
    )
    with report.timed("section 'model' (reconstructions, samples, maps)", enabled=progress):
        first = _model_section(demo_run, metrics)
    later, metrics["section_seconds"], metrics["section_errors"] = _run_sections(
        demo_run, sections, quick=quick, progress=progress
    )
    # Each section's table, the numbers its captions state (the model's are the top-level keys).
    metrics["sections"] = {k: s.table or {} for k, s in zip(metrics["section_seconds"], later)}
    metrics["seed_ideas"] = seed_ideas(metrics)
    metrics["total_seconds"] = time.perf_counter() - t_start
    _manifest.write_atomic(out / "metrics.json", json.dumps(metrics, indent=2, default=_plain))
    report.write_html(
        [first, *later],
        out / "report.html",
        title=f"latentjax demo: {dataset}",
        subtitle=f"jax {jax.__version__} on {metrics['device']}; {time.strftime('%Y-%m-%d %H:%M')}",
    )
    return metrics
