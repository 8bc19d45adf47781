"""t-SNE and UMAP: latentjax against openTSNE, scikit-learn and umap-learn on the same input.

Input: the first ``--n`` Fashion-MNIST training images (default 10,000) reduced to 50 PCA
components (latentjax's exact PCA, fitted once); optionally also the latent means of a trained
VAE (``--checkpoint DIR``). Every implementation embeds the same array into 2-D; quality is
measured by latentjax.look.metrics on the PCA-50 input (trustworthiness@10, kNN recall@10) and, for
t-SNE, the KL divergence under one common P (``tsne.kl_divergence`` with latentjax's affinities,
perplexity 30).

Times are end to end (kNN, affinities, initialisation, optimisation), wall clock:
``cold_seconds`` is the first call in this process (XLA / numba compilation included),
``seconds`` the second call. Peers: openTSNE's default FFT method (n_jobs = all cores, as XLA
uses all cores), scikit-learn's Barnes-Hut (``--skip-sklearn`` to skip: slow), umap-learn.
Timings mean something only on a quiet machine (two threads spin when others share the cores).

    python benchmarks/dimred.py --n 10000 --json dimred.json --data-dir ../shared/data
    python benchmarks/dimred.py --quick          # tiny, format only (tests)
"""

import argparse
import gzip
import json
import os
import pathlib
import platform
import sys
import time
from importlib import metadata

import jax
import numpy as np

from latentjax.look import metrics, pca, tsne
from latentjax.look import umap as lj_umap


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def load_fashion(data_dir, n):
    path = pathlib.Path(data_dir) / "fashion_mnist" / "train-images-idx3-ubyte.gz"
    raw = gzip.open(path, "rb").read()
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def vae_latents(checkpoint, data_dir, n):
    """Latent means of the first n training images under a trained model (or None)."""
    from latentjax.learn import models, runs

    model, _ = runs.load_model(checkpoint)
    images = load_fashion(data_dir, n).reshape(-1, 28, 28, 1)
    encode = jax.jit(jax.vmap(lambda im: models.encode(model, im).mean))
    return np.concatenate([np.asarray(encode(images[i : i + 1000])) for i in range(0, len(images), 1000)])


def timed(fn, repeats=2):
    """(cold seconds, warm seconds, result of the last call)."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return times[0], times[-1], np.asarray(out, np.float32)


def quality(x, y, p=None):
    row = {
        "trustworthiness": float(metrics.trustworthiness(x, y, k=10)),
        "knn_recall": float(metrics.knn_recall(x, y, k=10)),
    }
    if p is not None:
        row["kl"] = float(tsne.kl_divergence(p, y))
    return row


def tsne_rows(case, x, *, quick, skip_sklearn, n_jobs):
    # openTSNE counts its n_iter after the early_exaggeration_iter; num_steps counts both.
    num_steps, ee = (100, 50) if quick else (750, 250)
    p = tsne.affinities(x, perplexity=30.0)  # the common P for KL
    rows = []

    def ours():
        return tsne.embed(
            jax.random.key(0), x, perplexity=30.0, num_steps=num_steps, early_exaggeration_steps=ee
        )

    cold, warm, y = timed(ours)
    rows.append(
        {"case": case, "impl": "latentjax", "seconds": warm, "cold_seconds": cold, **quality(x, y, p)}
    )

    try:
        import openTSNE
    except ImportError:
        print("openTSNE not installed: its rows are skipped", file=sys.stderr)
    else:

        def theirs():
            return openTSNE.TSNE(
                perplexity=30.0,
                n_iter=num_steps - ee,
                early_exaggeration_iter=ee,
                n_jobs=n_jobs,
                random_state=0,
            ).fit(x.astype(np.float64))

        cold, warm, y = timed(theirs)
        rows.append(
            {
                "case": case,
                "impl": "opentsne",
                "seconds": warm,
                "cold_seconds": cold,
                "n_jobs": n_jobs,
                **quality(x, y, p),
            }
        )

    if not skip_sklearn:
        from sklearn.manifold import TSNE

        def sk():
            return TSNE(
                perplexity=30.0, max_iter=max(num_steps, 250), init="pca", random_state=0, n_jobs=n_jobs
            ).fit_transform(x)

        cold, _, y = timed(sk, repeats=1)  # no JIT: one run
        rows.append(
            {
                "case": case,
                "impl": "sklearn",
                "seconds": cold,
                "cold_seconds": cold,
                "n_jobs": n_jobs,
                **quality(x, y, p),
            }
        )
    return rows


def umap_rows(case, x, *, quick):
    num_steps = 50 if quick else None  # umap-learn's n_epochs

    def ours():
        return lj_umap.embed(jax.random.key(0), x, n_neighbors=15, min_dist=0.1, num_steps=num_steps)

    cold, warm, y = timed(ours)
    rows = [{"case": case, "impl": "latentjax", "seconds": warm, "cold_seconds": cold, **quality(x, y)}]
    try:
        import umap
    except ImportError:
        print("umap-learn not installed: its rows are skipped", file=sys.stderr)
    else:

        def theirs():
            return umap.UMAP(
                n_neighbors=15, min_dist=0.1, n_epochs=num_steps, random_state=None, n_jobs=-1
            ).fit_transform(x)

        cold, warm, y = timed(theirs)
        rows.append(
            {"case": case, "impl": "umap_learn", "seconds": warm, "cold_seconds": cold, **quality(x, y)}
        )
    return rows


def add_ratios(rows):
    """``seconds_vs_<peer>`` etc. on each latentjax row: ours / peer's, same case, same run."""
    for row in rows:
        if row["impl"] != "latentjax":
            continue
        for peer in rows:
            if peer["case"] == row["case"] and peer["impl"] != "latentjax":
                for field in ("seconds", "cold_seconds", "kl"):
                    if field in row and field in peer and peer[field]:
                        row[f"{field}_vs_{peer['impl']}"] = row[field] / peer[field]
                for field in ("trustworthiness", "knn_recall"):
                    if field in row and field in peer:
                        row[f"{field}_minus_{peer['impl']}"] = row[field] - peer[field]
    return rows


def print_table(rows):
    cols = ["case", "impl", "seconds", "cold_seconds", "trustworthiness", "knn_recall", "kl"]
    print(" | ".join(f"{c:>16}" for c in cols))
    for r in rows:
        cells = [
            f"{r[c]:>16.4f}" if isinstance(r.get(c), float) else f"{str(r.get(c, '')):>16}" for c in cols
        ]
        print(" | ".join(cells))
    for r in rows:
        ratios = {k: round(v, 4) for k, v in r.items() if "_vs_" in k or "_minus_" in k}
        if ratios:
            print(r["case"], r["impl"], ratios)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, format only")
    ap.add_argument("--data-dir", default=os.environ.get("LATENTJAX_DATA_DIR", "../shared/data"))
    ap.add_argument("--checkpoint", help="a trained VAE run directory: also embed its latent means")
    ap.add_argument("--skip-sklearn", action="store_true", help="skip scikit-learn's (slow) Barnes-Hut t-SNE")
    ap.add_argument("--skip-umap", action="store_true")
    args = ap.parse_args(argv)
    n = 300 if args.quick else args.n
    n_jobs = os.cpu_count() or 1

    images = load_fashion(args.data_dir, n)
    x = np.asarray(pca.transform(pca.fit(images, num_components=50), images), np.float32)
    inputs = {"": x}
    if args.checkpoint:
        inputs["_vae"] = vae_latents(args.checkpoint, args.data_dir, n)

    rows = []
    for suffix, data in inputs.items():
        rows += tsne_rows(
            f"tsne{suffix}_n{n}", data, quick=args.quick, skip_sklearn=args.skip_sklearn, n_jobs=n_jobs
        )
        if not args.skip_umap:
            rows += umap_rows(f"umap{suffix}_n{n}", data, quick=args.quick)
    add_ratios(rows)
    print_table(rows)

    result = {
        "benchmark": "dimred",
        "device": f"{jax.devices()[0].platform}: {n_jobs} cores "
        f"({platform.processor() or platform.machine()})",
        "versions": {
            k: _version(k) for k in ("jax", "jaxlib", "openTSNE", "scikit-learn", "umap-learn", "numba")
        },
        "input": f"first {n} Fashion-MNIST training images, PCA-50"
        + (", and VAE latent means" if args.checkpoint else ""),
        "quick": args.quick,
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
