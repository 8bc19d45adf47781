"""Paths through a Fashion-MNIST VAE latent space: lerp vs slerp vs geodesic, and sandal -> ankle boot.

Trains an MLP VAE (16-D latent, smooth swish activations so the decoder's pulled-back metric is
smooth), then for pairs of test images from different classes compares three paths of 12 points:
the straight line, the spherical one and the geodesic minimising the decoded curve energy
(`move.geodesic`, all pairs at once with `vmap`). Each path gets its diagnostics (latent length,
decoded length, decoded energy, largest decoded step). Then it builds the sandal -> ankle boot
class vector from training latents, applies it to test sandals at increasing strength and reports
how often a pixel classifier trained on real images calls the result an ankle boot. Finally it
writes an animated GIF of a piecewise slerp path through several garments.

Command (from the repository root):
    python experiments/fashion_paths.py --data-dir ../shared/data --out runs/fashion_paths \
        --json runs/fashion_paths/result.json
Expected result (measured: seed 0, 20k images, 10 epochs): the geodesic's decoded energy is
0.69-0.81 of the straight line's (mean 0.76 over the four pairs) with a 30-50 % smaller largest
decoded step, while its latent length is about 3x longer (it detours through the latent space);
slerp has slightly more energy than lerp here. The fraction of edited sandals that the pixel
classifier calls ankle boots rises 0.07, 0.14, 0.36, 0.57, 0.72, 0.77 over strengths 0 to 1.25
(sandal: 0.86 down to 0.02). The geodesic starts on the straight line and keeps its best iterate,
so it can never end above it; `--init-noise 0.2` starts it off the line instead (the slow test's
run, `--train-limit 6000 --epochs 4 --geodesic-steps 300`, 1 CPU-minute: start 1.9-2.9x the
line's energy, end 0.79-0.88 of it; ankle boot 0.09 -> 0.86 at strength 1).
Runtime: about 2 CPU-minutes (6.5 minutes wall on a busy 2-core machine; `--quick`: seconds).
Device: CPU (any JAX device).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from latentjax import data, move, viz
from latentjax.learn import models, train

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # experiments/_common.py
import _common

PAIRS = ((0, 1), (7, 8), (3, 9), (2, 5))  # (class, class): T-shirt->Trouser, Sneaker->Bag, ...
SANDAL, BOOT = 5, 9
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)


def parse_args(argv=None) -> argparse.Namespace:
    p = _common.parser(__doc__, name="fashion_paths", data_sets="fashion_mnist/")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--geodesic-steps", type=int, default=None)
    p.add_argument(
        "--init-noise",
        type=float,
        default=0.0,
        help="start the geodesic off the straight line: Gaussian noise of this std on its interior points",
    )
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    t_start = time.perf_counter()
    quick = args.quick
    limit = args.train_limit or (512 if quick else 20000)
    epochs = args.epochs or (1 if quick else 10)
    geo_steps = args.geodesic_steps or (10 if quick else 400)
    out = _common.out_dir(args)
    key = jax.random.key(args.seed)

    ds = data.load("fashion_mnist", data_dir=args.data_dir, limit=limit)
    names = list(ds.label_names)
    cfg = models.Config(
        kind="vae",
        arch="mlp",
        image_shape=(28, 28, 1),
        latent_dim=16,
        likelihood="bernoulli",
        hidden=400,
        depth=2,
        activation="swish",
    )
    model = train.fit(
        jax.random.fold_in(key, 0),
        cfg,
        ds.train_images,
        epochs=epochs,
        batch_size=128,
        learning_rate=1e-3,
        progress=False,
    ).model
    encode = jax.jit(jax.vmap(lambda x: models.encode(model, x).mean))

    def decode(z):
        return models.decode(model, z)

    decode_many = jax.jit(jax.vmap(decode))
    test_labels = np.asarray(ds.test_labels)

    # 1. lerp vs slerp vs geodesic between pairs of classes (all geodesics at once with vmap).
    num_points = 12
    i0 = np.array([_common.first_of(test_labels, a) for a, _ in PAIRS])
    i1 = np.array([_common.first_of(test_labels, b) for _, b in PAIRS])
    z0 = encode(models.to_float(ds.test_images[i0]))
    z1 = encode(models.to_float(ds.test_images[i1]))
    ends = jnp.stack([z0, z1], axis=1)
    lines = jax.vmap(lambda e: move.path(e, num_points=num_points))(ends)
    slerps = jax.vmap(lambda e: move.path(e, num_points=num_points, method="slerp"))(ends)
    t0 = time.perf_counter()
    geo = jax.jit(
        jax.vmap(
            lambda a, b, k: move.geodesic(
                decode,
                a,
                b,
                num_points=num_points,
                num_steps=geo_steps,
                learning_rate=2e-2,
                key=k,
                init_noise=args.init_noise,
            )
        )
    )(z0, z1, jax.random.split(jax.random.fold_in(key, 1), len(PAIRS)))
    geo_points = jax.block_until_ready(geo.points)
    geodesic_seconds = time.perf_counter() - t0
    diag = jax.jit(jax.vmap(lambda zs: move.path_diagnostics(decode, zs)))
    results = {"lerp": diag(lines), "slerp": diag(slerps), "geodesic": diag(geo_points)}
    pairs_out = []
    for p, (a, b) in enumerate(PAIRS):
        row = {"from": names[a], "to": names[b]}
        for m, d in results.items():
            row[m] = {k: float(v[p]) for k, v in d._asdict().items()}
        row["energy_ratio_geodesic_to_lerp"] = (
            row["geodesic"]["decoded_energy"] / row["lerp"]["decoded_energy"]
        )
        # The energy of the path the optimisation started from (the straight line unless --init-noise).
        row["geodesic_start_energy"] = float(geo.energies[p, 0])
        pairs_out.append(row)
        strips = {
            m: np.asarray(decode_many(zs[p]))
            for m, zs in (("lerp", lines), ("slerp", slerps), ("geodesic", geo_points))
        }
        viz.path_strips(
            strips,
            out / f"paths_{a}_{b}.png",
            diagnostics={m: type(d)(*(v[p] for v in d)) for m, d in results.items()},
            title=f"{names[a]} -> {names[b]}",
        )

    # 2. The sandal -> ankle boot vector applied to test sandals.
    n_vec = min(len(ds.train_images), 512 if quick else 10000)
    z_train = models.encode_images(model, ds.train_images[:n_vec])
    vector = move.class_vector(z_train, ds.train_labels[:n_vec], source=SANDAL, target=BOOT)
    sandals = np.flatnonzero(test_labels == SANDAL)[: (8 if quick else 200)]
    zs = encode(models.to_float(ds.test_images[sandals]))
    sweep = jax.vmap(jax.vmap(move.apply, in_axes=(None, None, 0)), in_axes=(0, None, None))(
        zs, vector, jnp.asarray(STRENGTHS)
    )
    decoded = np.asarray(decode_many(sweep.reshape(-1, sweep.shape[-1]))).reshape(
        len(sandals), len(STRENGTHS), 28, 28, 1
    )
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=200 if quick else 500)
    clf.fit(ds.train_images[:n_vec].reshape(n_vec, -1) / 255.0, ds.train_labels[:n_vec])
    pred = clf.predict(decoded.reshape(len(sandals) * len(STRENGTHS), -1)).reshape(
        len(sandals), len(STRENGTHS)
    )
    viz.strength_sweep(
        decoded[:6],
        STRENGTHS,
        out / "sandal_to_boot.png",
        title="sandal -> ankle boot vector, strength per column",
    )

    # 3. A GIF along a piecewise slerp through one garment of five classes.
    tour = [_common.first_of(test_labels, c, 1) for c in (5, 7, 9, 8, 1)]
    zt = encode(models.to_float(ds.test_images[np.array(tour)]))
    frames = np.asarray(decode_many(move.path(zt, num_points=8 if quick else 41, method="slerp")))
    viz.path_gif(frames, out / "tour.gif", fps=10)

    result = {
        "pairs": pairs_out,
        "mean_energy_ratio_geodesic_to_lerp": float(
            np.mean([r["energy_ratio_geodesic_to_lerp"] for r in pairs_out])
        ),
        "sandal_to_boot": {
            "strengths": list(STRENGTHS),
            "frac_ankle_boot": [float(v) for v in (pred == BOOT).mean(axis=0)],
            "frac_sandal": [float(v) for v in (pred == SANDAL).mean(axis=0)],
            "num_sandals": len(sandals),
        },
        "geodesic_steps": geo_steps,
        "geodesic_init_noise": args.init_noise,
        "geodesic_seconds": geodesic_seconds,
        "epochs": epochs,
        "num_train": len(ds.train_images),
        "total_seconds": time.perf_counter() - t_start,
        "quick": quick,
    }
    _common.write_result(result, args)
    return result


def main(argv=None) -> dict:
    result = run(parse_args(argv))
    print(
        json.dumps(
            {
                "mean_energy_ratio_geodesic_to_lerp": result["mean_energy_ratio_geodesic_to_lerp"],
                "sandal_to_boot": result["sandal_to_boot"],
            }
        )
    )
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
