"""The explorer's 2-D -> latent inverse on held-out points: README's "Look at it" table, reproducible.

A 16-d MLP VAE (hidden 400, 3 epochs on Fashion-MNIST's training images; ``--run DIR`` to use
another run) encodes the first ``--n`` test images. Two measurements, each on the last ``--held``
of them:

- ``table``: the map of all ``n`` latents as the explorer makes it (``embed.reduce``: PCA, t-SNE,
  UMAP with the library's defaults); the held-out points are removed from the inverse's table and
  their map positions go back to latents by inverse-distance weighting of the 8 nearest map points
  (the explorer's ``inverse_map``), by the one nearest, and by the mean latent.
- ``maps``: a map fitted on the first ``n - held`` latents (``look.maps``, as the explorer's
  ``--inverse map``), the held-out latents placed into it by ``maps.transform``; their positions
  go back by ``maps.inverse_transform`` (umap-learn's method) and by inverse-distance weighting;
  its time per position in one call for all held-out points, and for one position per call.

Errors: the latent's RMS error over the held-out latents' RMS spread about the table's mean, and
the mean absolute pixel error of the decoded image against the decode of the true latent.

    python benchmarks/explore_inverse.py --data-dir ../shared/data --json explore_inverse.json
    python benchmarks/explore_inverse.py --quick     # sprites, a tiny run: format only (tests)
"""

import argparse
import json
import pathlib
import platform
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import explore_load  # noqa: E402  (benchmarks/ is not a package)

from latentjax import data  # noqa: E402
from latentjax.app import embed  # noqa: E402
from latentjax.app.explore import inverse_map  # noqa: E402
from latentjax.learn import models, runs  # noqa: E402
from latentjax.look import maps  # noqa: E402


def errors(model, z_true, z_hat, centre):
    """(latent error / spread, image MAE) of ``z_hat`` against ``z_true``."""
    spread = np.sqrt(np.mean(np.sum((z_true - centre) ** 2, axis=1)))
    latent = float(np.sqrt(np.mean(np.sum((np.asarray(z_hat) - z_true) ** 2, axis=1))) / spread)
    decode = jax.vmap(lambda zi: models.decode(model, zi))
    truth = np.asarray(decode(z_true))
    image = float(np.mean(np.abs(np.asarray(decode(np.asarray(z_hat, np.float32))) - truth)))
    return round(latent, 4), round(image, 4)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--run", default=None, help="a trained run folder (default: train one here)")
    ap.add_argument("--n", type=int, default=2000, help="test images on the map")
    ap.add_argument("--held", type=int, default=200, help="of them held out")
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n, held = (300, 40) if args.quick else (args.n, args.held)
    dataset = "sprites" if args.quick else "fashion_mnist"
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or explore_load.train_run(
            pathlib.Path(tmp) / "run", dataset, args.data_dir, quick=args.quick
        )
        model, _ = runs.load_model(run)
        name = runs.read_config(run).train.get("dataset")
    images = data.load(name, data_dir=args.data_dir, limit=n).test_images[:n]
    z = np.asarray(models.encode_images(model, images), np.float32)
    keep, out = slice(0, n - held), slice(n - held, n)
    centre = z[keep].mean(axis=0)
    rows = []
    for method in ("pca", "tsne", "umap"):
        t = time.perf_counter()
        y = embed.reduce(jax.random.key(0), z, method=method, quick=args.quick)
        seconds = time.perf_counter() - t
        for inverse, z_hat in (
            ("idw", inverse_map(y[keep], z[keep], y[out])),
            ("nearest", inverse_map(y[keep], z[keep], y[out], k=1)),
            ("mean", np.broadcast_to(centre, z[out].shape)),
        ):
            lat, img = errors(model, z[out], z_hat, centre)
            rows.append({"case": f"table_{method}_{inverse}", "impl": "latentjax", "latent_error": lat,
                         "image_error": img, "map_seconds": round(seconds, 2)})  # fmt: skip
    for method in ("tsne", "umap"):
        fitted = embed.fit_map(jax.random.key(0), z[keep], method=method, quick=args.quick)
        y_new = np.asarray(maps.transform(fitted, jax.random.key(1), z[out]))
        t = time.perf_counter()
        back = np.asarray(maps.inverse_transform(fitted, jax.random.key(2), y_new))
        ms = 1e3 * (time.perf_counter() - t) / held
        single = []  # one position per call, as the page's drag asks (after one warm-up call)
        for i in range(4):
            t = time.perf_counter()
            jax.block_until_ready(maps.inverse_transform(fitted, jax.random.key(2), y_new[i : i + 1]))
            single.append(1e3 * (time.perf_counter() - t))
        y_ref = np.asarray(fitted.embedding)
        for inverse, z_hat, per in (
            ("inverse_transform", back, (ms, float(np.median(single[1:])))),
            ("idw", inverse_map(y_ref, z[keep], y_new), (None, None)),
        ):
            lat, img = errors(model, z[out], z_hat, centre)
            batch, one = (None if v is None else round(v, 2) for v in per)
            rows.append({"case": f"maps_{method}_{inverse}", "impl": "latentjax", "latent_error": lat,
                         "image_error": img, "ms_per_position": batch, "ms_one_position": one})  # fmt: skip
    print(f"{'case':>28} | {'latent error':>12} | {'image error':>11}")
    for r in rows:
        print(f"{r['case']:>28} | {r['latent_error']:>12} | {r['image_error']:>11}")
    if args.json:
        result = {
            "benchmark": "explore_inverse",
            "device": f"{jax.default_backend()}: {platform.machine()}",
            "versions": {"jax": jax.__version__},
            "dataset": name, "n": n, "held": held, "quick": args.quick,
            "rows": rows,
        }  # fmt: skip
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1))
    return rows


if __name__ == "__main__":
    main()
