"""Latent interpolation contrasted with optimal transport (ott-jax) on Fashion-MNIST, MNIST and shapes.

1. For pairs of test images (Fashion-MNIST and MNIST, one VAE per data set): six rows per pair,
   pixel cross-fade, latent lerp, slerp, geodesic, the debiased Wasserstein barycenter path and
   McCann's displacement interpolation; plus the 4-image barycenter square. The table records the
   column of each path's centre of mass at t = 0, 1/2, 1 (OT moves it linearly; a cross-fade
   also does but with two ghosts; latent paths need not).
2. OT in latent space (Fashion-MNIST): move the test latents of a source class onto the training
   latents of a target class with the entropic OT map (`transport.transport_points`) or with the
   mean-difference vector (`move.class_vector`); decode, and report how often a pixel
   classifier (logistic regression on real training images) calls the result the target class,
   and the Sinkhorn divergence between the moved latents and the target class's latents.
3. Point clouds: the free-support barycenter of a chair and a table (furniture_shapes, 1,024
   points each) and the OT distances chair-chair, chair-table.

Command (from the repository root):
    python experiments/ot_contrast.py --data-dir ../shared/data --out runs/ot_contrast \
        --limit 10000 --epochs 5
Expected result (measured: seed 0, `--limit 10000 --epochs 5`, busy 2-core CPU): the OT paths'
centre of mass goes from the source's to the target's column exactly like the cross-fade's (to
0.12 px at t = 1/2), the latent paths' does not (off by 0.1-0.6 px, endpoints are
reconstructions); barycenter paths converge (marginal error 1e-6) in 0.4-1.2 s per 9-point path,
their t = 0 end is 0.013-0.036 L1 from the input (slow final convergence of debiased Sinkhorn).
Latent OT, T-shirt -> Trouser, 200 test shirts: the OT map flips 0.965 of them to "Trouser" for the
pixel classifier (mean-difference vector: 1.0), and its moved cloud is much closer to the trouser
latents (Sinkhorn divergence 1.31, mean shift 8.18, unmoved 23.4): it matches the target's spread,
not only its mean. Shapes (1,024 points): OT chair-chair 0.019 < chair-table 0.49; the
chair/table barycenter is 0.12 / 0.13 from each.
Runtime: about 3 minutes on 2 busy CPU cores with the settings above (`--quick`: 1-2 minutes, mostly
compiling). Device: CPU (any JAX device).
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from latentjax import data, move, transport, viz
from latentjax.learn import models, train
from latentjax.shapes import meshes

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # experiments/_common.py
import _common

PAIRS = {"fashion_mnist": ((0, 1), (7, 9)), "mnist": ((1, 7), (3, 8))}
SOURCE, TARGET = 0, 1  # T-shirt/top -> Trouser


def _com_col(h) -> float:
    h = np.asarray(h, np.float64)
    return float((h * np.arange(h.shape[1])[None, :]).sum() / h.sum())


def contrast(model, ds, out: pathlib.Path, *, num: int, steps: int, max_iterations: int, tag: str) -> list:
    """The six-row contrast figure for each pair of classes of ``ds``; returns per-pair metrics."""

    def decode(v):
        return models.decode(model, v)

    @jax.jit
    def latent_paths(x):
        z = jax.vmap(lambda im: models.encode(model, im).mean)(x)
        return move.compare_paths(decode, z[0], z[1], num_points=num, num_steps=steps, learning_rate=2e-2)

    t = np.linspace(0.0, 1.0, num)
    results = []
    labels = np.asarray(ds.test_labels)
    for a, b in PAIRS[ds.name]:
        idx = [_common.first_of(labels, a), _common.first_of(labels, b)]
        x = np.asarray(models.to_float(ds.test_images[idx]))
        gray = x[..., 0]
        rows = {"pixel": (1 - t)[:, None, None] * gray[0][None] + t[:, None, None] * gray[1][None]}
        lat = jax.device_get(latent_paths(jnp.asarray(x)))
        rows |= {f"latent {k}": np.asarray(p.decoded)[..., 0] for k, p in lat._asdict().items()}
        t0 = time.perf_counter()
        bary = transport.wasserstein_interpolate(gray, transport.path_weights(num), max_steps=max_iterations)
        bary_s = time.perf_counter() - t0
        rows["Wasserstein"] = np.asarray(bary.image)
        rows["displacement"] = np.asarray(transport.displacement_interpolate(gray[0], gray[1], t).image)
        name = f"{ds.label_names[a]} -> {ds.label_names[b]}"
        viz.transport_contrast(
            rows,
            out / f"contrast_{tag}_{a}_{b}.png",
            title=f"{ds.name}: {name}",
            col_labels=[f"{v:.2f}" for v in t],
        )
        com = {k: [round(_com_col(v[i]), 2) for i in (0, num // 2, num - 1)] for k, v in rows.items()}
        results.append(
            {
                "pair": name,
                "centre_of_mass_col_t0_half_t1": com,
                "barycenter_seconds": round(bary_s, 2),
                "barycenter_max_error": float(np.max(np.asarray(bary.error))),
                "barycenter_endpoint_l1": float(
                    np.abs(np.asarray(bary.histogram[0]) - gray[0] / gray[0].sum()).sum()
                ),
            }
        )
    firsts = [_common.first_of(labels, c) for c in range(4)]
    corners = np.asarray(models.to_float(ds.test_images[firsts]))[..., 0]
    side = 5
    square = transport.wasserstein_interpolate(
        corners, transport.square_weights(side), max_steps=max_iterations
    )
    viz.barycenter_square(
        square.image, side, out / f"square_{tag}.png", title=f"{ds.name}: barycenter square"
    )
    return results


def latent_transport(model, ds, *, num_train: int, num_test: int) -> dict:
    """OT map vs mean-difference vector from SOURCE to TARGET latents, judged by a pixel classifier."""
    from sklearn.linear_model import LogisticRegression

    encode = jax.jit(jax.vmap(lambda im: models.encode(model, im).mean))
    decode = jax.jit(jax.vmap(lambda v: models.decode(model, v)))
    ytr, yte = np.asarray(ds.train_labels), np.asarray(ds.test_labels)
    xtr = ds.train_images[:num_train]
    ztr = np.asarray(encode(models.to_float(xtr)))
    clf = LogisticRegression(max_iter=300).fit(xtr.reshape(len(xtr), -1) / 255.0, ytr[:num_train])
    src = np.flatnonzero(yte == SOURCE)[:num_test]
    z_src = np.asarray(encode(models.to_float(ds.test_images[src])))
    z_tgt = ztr[ytr[:num_train] == TARGET]
    moved = {
        "ot_map": np.asarray(transport.transport_points(z_src, z_tgt, relative_epsilon=1e-2)),
        "mean_difference": z_src
        + np.asarray(move.class_vector(ztr, ytr[:num_train], source=SOURCE, target=TARGET))[None],
    }
    out = {"source": ds.label_names[SOURCE], "target": ds.label_names[TARGET], "num_test": len(src)}
    for k, z in moved.items():
        imgs = np.asarray(decode(jnp.asarray(z)))
        pred = clf.predict(imgs.reshape(len(imgs), -1))
        out[k] = {
            "flip_rate": float(np.mean(pred == TARGET)),
            "sinkhorn_divergence_to_target": float(transport.ot_distance(z, z_tgt, epsilon=1e-2)),
        }
    out["unchanged"] = {
        "sinkhorn_divergence_to_target": float(transport.ot_distance(z_src, z_tgt, epsilon=1e-2))
    }
    return out


def shapes(key, data_dir: pathlib.Path, out: pathlib.Path, *, num_points: int) -> dict:
    """Barycenter of a chair and a table point cloud and OT distances between shapes."""
    zpath = data_dir / "furniture_shapes" / "chairs_tables_pointclouds_ply.zip"
    if not zpath.is_file():
        return {"skipped": f"{zpath} not found"}
    rng = np.random.default_rng(0)
    every = meshes.read_point_clouds(data_dir)
    clouds = {
        k: every[v][0]
        for k, v in {"chair": "ChairNoArms1", "chair2": "ChairNoArms2", "table": "Table1"}.items()
    }
    clouds = {k: v[rng.choice(len(v), num_points, replace=False)] for k, v in clouds.items()}
    t0 = time.perf_counter()
    bary = np.asarray(
        transport.point_cloud_barycenter(
            key, np.stack([clouds["chair"], clouds["table"]]), num_points=num_points // 2, epsilon=1e-3
        )
    )
    res = {
        "barycenter_seconds": round(time.perf_counter() - t0, 2),
        "ot_chair_chair2": float(transport.ot_distance(clouds["chair"], clouds["chair2"], epsilon=1e-3)),
        "ot_chair_table": float(transport.ot_distance(clouds["chair"], clouds["table"], epsilon=1e-3)),
        "ot_barycenter_chair": float(transport.ot_distance(bary, clouds["chair"], epsilon=1e-3)),
        "ot_barycenter_table": float(transport.ot_distance(bary, clouds["table"], epsilon=1e-3)),
    }
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(9, 3))
    for i, (k, p) in enumerate(
        [("chair", clouds["chair"]), ("barycenter", bary), ("table", clouds["table"])]
    ):
        ax = fig.add_subplot(1, 3, i + 1, projection="3d")
        ax.scatter(p[:, 0], p[:, 2], p[:, 1], s=1)
        ax.set_title(k, fontsize=9)
        ax.set_axis_off()
    viz.save_figure(fig, out / "shapes_barycenter.png")
    return res


def main(argv=None) -> dict:
    p = _common.parser(__doc__, name="ot_contrast", data_sets="fashion_mnist/, mnist/, furniture_shapes/")
    p.add_argument("--limit", type=int, default=20000, help="training images per data set")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument(
        "--datasets", nargs="*", default=["fashion_mnist", "mnist"], choices=["fashion_mnist", "mnist"]
    )
    args = p.parse_args(argv)
    if args.quick:
        args.limit, args.epochs = 512, 1
    num, steps, max_iterations = (5, 5, 200) if args.quick else (9, 200, 2000)
    _common.out_dir(args)
    key = jax.random.key(args.seed)
    result = {"config": {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()}}
    for i, name in enumerate(args.datasets):
        ds = data.load(name, data_dir=args.data_dir, limit=args.limit)
        cfg = models.Config(
            kind="vae", arch="mlp", image_shape=(28, 28, 1), latent_dim=16, likelihood="bernoulli"
        )
        t0 = time.perf_counter()
        fit = train.fit(
            jax.random.fold_in(key, i),
            cfg,
            ds.train_images,
            epochs=args.epochs,
            batch_size=128,
            learning_rate=1e-3,
            progress=False,
        )
        result[name] = {
            "train_seconds": round(time.perf_counter() - t0, 1),
            "pairs": contrast(
                fit.model, ds, args.out, num=num, steps=steps, max_iterations=max_iterations, tag=name
            ),
        }
        if name == "fashion_mnist":
            result["latent_ot"] = latent_transport(
                fit.model, ds, num_train=min(args.limit, 5000), num_test=32 if args.quick else 200
            )
    data_root = _common.data_dir(args)
    result["shapes"] = (
        {"skipped": "no data directory"}
        if data_root is None
        else shapes(jax.random.fold_in(key, 9), data_root, args.out, num_points=256 if args.quick else 1024)
    )
    _common.write_result(result, args)
    json.dump({k: v for k, v in result.items() if k != "config"}, sys.stdout, indent=1)
    print()
    return result


if __name__ == "__main__":
    main()
