"""``latentjax demo``: train a VAE, measure it against PCA, draw its latent space, write a report.

The report opens with the model (reconstructions, samples, a latent map, a decoded grid); each
later topic adds a section through ``latentjax.app.sections.<topic>.section(run, quick=...)``.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import shutil
import sys
import time
import traceback
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax import viz
from latentjax.app import report
from latentjax.errors import LatentJaxError
from latentjax.learn import models, train

SECTIONS = ("embedding", "latent", "transport", "shapes")


class DemoRun(NamedTuple):
    """What the demo hands to each report section."""

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


def device_description() -> str:
    devs = jax.devices()
    kind = devs[0].device_kind
    if devs[0].platform == "cpu":
        return f"cpu: {os.cpu_count()} cores, {len(devs)} device(s)"
    return f"{devs[0].platform}: {len(devs)} x {kind}"


def pca_recon_mse(
    train_images: np.ndarray, test_images: np.ndarray, num_components: int, *, max_fit: int = 20000
) -> float:
    """Reconstruction MSE (pixels in [0, 1], clipped) of PCA with ``num_components`` on the test set."""
    x = train_images[:max_fit].reshape(min(len(train_images), max_fit), -1).astype(np.float64) / 255.0
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    v = vt[:num_components]
    t = test_images.reshape(len(test_images), -1).astype(np.float64) / 255.0
    rec = np.clip((t - mean) @ v.T @ v + mean, 0.0, 1.0)
    return float(np.mean((rec - t) ** 2))


def _principal_plane(z: np.ndarray):
    mean = z.mean(0)
    _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
    std = s[:2] / np.sqrt(max(len(z) - 1, 1))
    return mean, vt[:2], std


def model_section(run: DemoRun, metrics: dict) -> report.Section:
    """Reconstructions, prior samples, the latent map and a decoded grid of the trained model."""
    model, fig_dir, key = run.model, run.figures, run.key
    n_show = 10
    x = run.test_images[:n_show]
    rec = np.asarray(jax.vmap(models.reconstruct, in_axes=(None, 0))(model, models.to_float(x)))
    figs = [
        report.Figure(
            str(
                viz.image_grid(
                    np.concatenate([models.to_float(x), rec]),
                    fig_dir / "reconstructions.png",
                    rows=2,
                    row_labels=["input", "recon."],
                )
            ),
            f"Test images (top) and their reconstructions from the posterior mean (bottom); test MSE "
            f"{metrics['test_recon_mse']:.4f} vs PCA-{run.config.latent_dim} {metrics['pca_recon_mse']:.4f}.",
        )
    ]
    samples = np.asarray(jax.vmap(models.sample, in_axes=(None, 0))(model, jax.random.split(key, 64)))
    figs.append(
        report.Figure(
            str(viz.image_grid(samples, fig_dir / "samples.png", rows=8)),
            "64 samples from the prior N(0, I), decoded to their mean images.",
        )
    )
    z = models.encode_images(model, run.test_images[:3000])
    lab = run.test_labels[:3000]
    mean, plane, std = _principal_plane(z)
    p2 = (z - mean) @ plane.T
    figs.append(
        report.Figure(
            str(
                viz.latent_scatter(
                    p2,
                    lab,
                    fig_dir / "latent_scatter.png",
                    label_names=run.label_names,
                    title=f"{run.dataset}: posterior means, first 2 principal directions",
                )
            ),
            "Posterior means of test images projected on their two principal directions, coloured by class: "
            "similar images land close together.",
        )
    )
    if run.factors:
        name = next((k for k in ("x", "scale", "rotation") if k in run.factors), None)
        if name is not None:
            vals = np.asarray(run.factors[name][1])[:3000]
            figs.append(
                report.Figure(
                    str(
                        viz.latent_scatter(
                            p2,
                            vals,
                            fig_dir / f"latent_scatter_{name}.png",
                            continuous=True,
                            title=f"the same map coloured by the factor '{name}'",
                        )
                    ),
                    f"The same map coloured by the known generative factor '{name}'.",
                )
            )
    k = 11
    ticks = np.linspace(-2.0, 2.0, k)
    grid_z = mean + (ticks[None, :, None] * std[0] * plane[0] + ticks[::-1, None, None] * std[1] * plane[1])
    dec = jax.vmap(jax.vmap(models.decode, in_axes=(None, 0)), in_axes=(None, 0))(
        model, jnp.asarray(grid_z, jnp.float32)
    )
    figs.append(
        report.Figure(
            str(
                viz.decoded_grid(
                    np.asarray(dec),
                    fig_dir / "decoded_grid.png",
                    extent=(-2, 2),
                    axis_labels=("PC 1 (std)", "PC 2 (std)"),
                )
            ),
            "Images decoded on an 11x11 grid spanning +-2 standard deviations along the two principal "
            "directions of the latents.",
        )
    )
    table = {
        k: metrics[k]
        for k in (
            "dataset",
            "model",
            "latent_dim",
            "epochs",
            "test_elbo",
            "test_recon_mse",
            "pca_recon_mse",
            "train_images_per_s",
            "train_seconds",
            "device",
        )
    }
    return report.Section(
        "The model",
        f"A {metrics['model']} with a {run.config.latent_dim}-dimensional latent space, trained "
        f"for {metrics['epochs']} epochs on {len(run.train_images)} images of '{run.dataset}'.",
        figs,
        table,
    )


def _check_out(out: pathlib.Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise LatentJaxError(
                f"{out} is not empty (it holds an earlier run); choose another --out or pass "
                "--overwrite (nothing was overwritten)"
            )
        if not (out / "report.html").exists() and not (out / "metrics.json").exists():
            raise LatentJaxError(f"{out} does not look like a demo folder; refusing to delete it")
        shutil.rmtree(out)


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
    sections: tuple = SECTIONS,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Runs the demo and returns its metrics (also written to ``out/metrics.json``)."""
    from latentjax import data

    t_start = time.perf_counter()
    out = pathlib.Path(out)
    _check_out(out, overwrite)
    limit = (8000 if dataset == "sprites" else 4000) if quick else None
    ds = data.load(dataset, data_dir=data_dir, limit=limit, seed=seed)
    epochs = epochs or (6 if quick else 20)
    shape = tuple(ds.train_images.shape[1:])
    if arch == "conv" and (shape[0] % 4 or shape[1] % 4):
        raise LatentJaxError(f"--arch conv needs image sides divisible by 4; {dataset} has {shape}")
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
    key = jax.random.key(seed)
    fit_key, eval_key, run_key = jax.random.split(key, 3)
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
    ev = train.evaluate(result.model, eval_key, ds.test_images)
    metrics: dict[str, Any] = {
        "dataset": dataset,
        "model": f"{cfg.kind}/{cfg.arch}",
        "latent_dim": latent_dim,
        "epochs": epochs,
        "num_train": int(len(ds.train_images)),
        "num_test": int(len(ds.test_images)),
        "test_elbo": ev["elbo"],
        "test_recon_mse": ev["recon_mse"],
        "pca_recon_mse": pca_recon_mse(ds.train_images, ds.test_images, latent_dim),
        "train_images_per_s": train.throughput(result.history),
        "train_seconds": train_seconds,
        "jax_version": jax.__version__,
        "device": device_description(),
        "quick": quick,
    }
    run_ = DemoRun(
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
    )
    secs = [model_section(run_, metrics)]
    errors = {}
    timings = {}
    for name in sections:
        try:
            mod = importlib.import_module(f"latentjax.app.sections.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"latentjax.app.sections.{name}":
                continue
            raise
        t1 = time.perf_counter()
        try:
            secs.append(mod.section(run_, quick=quick))
        except Exception as e:  # a broken section must not cost the user the rest of the report
            errors[name] = f"{type(e).__name__}: {e}"
            print(f"latentjax demo: section '{name}' failed: {errors[name]}", file=sys.stderr)
            traceback.print_exc()
            secs.append(report.Section(f"{name} (failed)", f"This section failed: {errors[name]}"))
        timings[name] = round(time.perf_counter() - t1, 2)
    metrics["section_seconds"] = timings
    metrics["section_errors"] = errors
    metrics["total_seconds"] = time.perf_counter() - t_start
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    report.write_html(
        out / "report.html",
        f"latentjax demo: {dataset}",
        secs,
        subtitle=f"jax {jax.__version__} on {metrics['device']}; {time.strftime('%Y-%m-%d %H:%M')}",
    )
    return metrics
