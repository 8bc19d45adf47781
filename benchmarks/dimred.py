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

Transform rows (``--transform``; ``--no-fit-rows`` for them alone): each implementation fits its
map on the first ``--n`` training images (PCA-50 fitted on them) and places the first ``--n-test``
test images into it (latentjax ``look.maps.transform``, openTSNE's ``TSNEEmbedding.transform``,
umap-learn's ``UMAP.transform``, all with their defaults). ``seconds``/``cold_seconds`` time the
transform alone (``fit_seconds`` the fit, once); quality is that of the new points:
``knn_accuracy`` (their test labels predicted by their 10 nearest reference points, scikit-learn's
``KNeighborsClassifier`` on the implementation's own map) and ``trustworthiness`` (@10, of the new
points against their PCA-50 inputs).

    python benchmarks/dimred.py --n 10000 --json dimred.json --data-dir ../shared/data
    python benchmarks/dimred.py --n 60000 --n-test 10000 --transform --no-fit-rows --skip-sklearn
    python benchmarks/dimred.py --quick          # tiny, format only (tests)
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import time
from importlib import metadata

import jax
import numpy as np

from latentjax import data as lj_data
from latentjax.look import maps, metrics, pca, tsne
from latentjax.look import umap as lj_umap


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _fashion(data_dir, split):
    ds = lj_data.load("fashion_mnist", data_dir=data_dir)
    if split == "train":  # continues into the test images: all 70,000
        return (
            np.concatenate([ds.train_images, ds.test_images]),
            np.concatenate([ds.train_labels, ds.test_labels]),
        )
    return ds.test_images, ds.test_labels


def load_fashion(data_dir, n, split="train"):
    """The first ``n`` images of a split, flat float32 in [0, 1] (``data.load``'s uint8 / 255).

    The train split continues into the test images beyond its 60,000 (``n = 70000``: all of
    Fashion-MNIST). (Until 2026-12-01 this scaled the continuation twice: see benchmarks/README.)
    """
    images = _fashion(data_dir, split)[0][:n]
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def load_labels(data_dir, n, split="train"):
    return _fashion(data_dir, split)[1][:n].astype(np.int64)


def jittered(x, n, *, scale=0.1, seed=0):
    """``n`` points: ``x`` repeated, each copy beyond the first moved by Gaussian noise.

    The noise's standard deviation is ``scale`` times the median distance from a point of ``x`` to its
    nearest neighbour (on 2,000 of them), so each copy stays within its original's neighbourhood: the
    data set of the 1,000,000-point run (Fashion-MNIST PCA-50, jittered).
    """
    rng = np.random.default_rng(seed)
    probe = x[rng.choice(len(x), min(2000, len(x)), replace=False)]
    d2 = np.sum(probe**2, 1)[:, None] - 2 * probe @ x.T + np.sum(x**2, 1)[None, :]
    nearest = np.sqrt(np.maximum(np.partition(d2, 1, axis=1)[:, 1], 0.0))
    sd = scale * float(np.median(nearest))
    reps = -(-n // len(x))
    out = np.concatenate([x] * reps)[:n].copy()
    out[len(x) :] += rng.normal(scale=sd, size=out[len(x) :].shape).astype(np.float32)
    return out


def peak_rss_mib():
    """This process's peak resident memory so far (MiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vae_latents(checkpoint, data_dir, n):
    """Latent means of the first n training images under a trained model (or None)."""
    from latentjax.learn import models, runs

    model, _ = runs.load_model(checkpoint)
    images = load_fashion(data_dir, n).reshape(-1, 28, 28, 1)
    encode = jax.jit(jax.vmap(lambda im: models.encode(model, im).mean))
    return np.concatenate([np.asarray(encode(images[i : i + 1000])) for i in range(0, len(images), 1000)])


REPEATS = 2  # calls per implementation (--repeats); 1: ``seconds`` is the cold call
IMPL = "all"  # --impl: "latentjax", "peers" (each in its own process: its own peak memory) or both
KL_MAX_N = 100000  # beyond: no common P (its kNN would cost as much as the fit), no KL column
QUALITY_N = 10000  # trustworthiness / kNN recall on this many points (--quality-n), the same for all


def timed(fn, repeats=None):
    """(cold seconds, warm seconds, result of the last call)."""
    times, out = [], None
    for _ in range(REPEATS if repeats is None else repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return times[0], times[-1], np.asarray(out, np.float32)


def quality(x, y, p=None):
    # Beyond QUALITY_N points: on one fixed random subsample (the same indices for every implementation).
    sub = np.arange(len(x))
    if len(x) > QUALITY_N:
        sub = np.sort(np.random.default_rng(0).choice(len(x), QUALITY_N, replace=False))
    xs, ys = x[sub], np.asarray(y)[sub]
    row = {
        "trustworthiness": float(metrics.trustworthiness(xs, ys, k=10)),
        "knn_recall": float(metrics.knn_recall(xs, ys, k=10)),
        "quality_points": int(len(sub)),
    }
    if p is not None:
        row["kl"] = float(tsne.kl_divergence(p, y))
    return row


def tsne_rows(case, x, *, quick, skip_sklearn, n_jobs):
    # openTSNE counts its n_iter after the early_exaggeration_iter; num_steps counts both.
    num_steps, ee = (100, 50) if quick else (750, 250)
    p = tsne.affinities(x, perplexity=30.0) if len(x) <= KL_MAX_N else None  # the common P for KL
    rows = []

    def ours():
        return tsne.embed(
            jax.random.key(0), x, perplexity=30.0, num_steps=num_steps, early_exaggeration_steps=ee
        )

    if IMPL != "peers":
        cold, warm, y = timed(ours)
        knn = "approximate" if len(x) > tsne.APPROXIMATE_ABOVE else "exact"  # embed's knn_method="auto"
        rows.append(
            {
                "case": case,
                "impl": "latentjax",
                "knn": knn,
                "seconds": warm,
                "cold_seconds": cold,
                **quality(x, y, p),
            }
        )

    try:
        import openTSNE
    except ImportError:
        print("openTSNE not installed: its rows are skipped", file=sys.stderr)
    if IMPL != "latentjax" and "openTSNE" in sys.modules:

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

    if not skip_sklearn and IMPL != "latentjax":
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


def umap_rows(case, x, *, quick, knn_method="auto", epochs=None):
    num_steps = 50 if quick else epochs  # None: each its default (200 beyond 10,000 points)

    def ours():
        return lj_umap.embed(
            jax.random.key(0), x, n_neighbors=15, min_dist=0.1, num_steps=num_steps, knn_method=knn_method
        )

    rows = []
    if IMPL != "peers":
        cold, warm, y = timed(ours)
        method = knn_method
        if method == "auto":
            method = "approximate" if len(x) > lj_umap.APPROXIMATE_ABOVE else "exact"
        rows.append(
            {
                "case": case,
                "impl": "latentjax",
                "knn": method,
                "epochs": num_steps,
                "seconds": warm,
                "cold_seconds": cold,
                **quality(x, y),
            }
        )
    try:
        import umap
    except ImportError:
        print("umap-learn not installed: its rows are skipped", file=sys.stderr)
    if IMPL != "latentjax" and "umap" in sys.modules:

        def theirs():
            return umap.UMAP(
                n_neighbors=15, min_dist=0.1, n_epochs=num_steps, random_state=None, n_jobs=-1
            ).fit_transform(x)

        cold, warm, y = timed(theirs)
        rows.append(
            {"case": case, "impl": "umap_learn", "seconds": warm, "cold_seconds": cold, **quality(x, y)}
        )
    return rows


def transform_quality(x_new, y_ref, labels_ref, y_new, labels_new):
    from sklearn.neighbors import KNeighborsClassifier

    y_ref, y_new = np.asarray(y_ref, np.float32), np.asarray(y_new, np.float32)
    return {
        "knn_accuracy": float(KNeighborsClassifier(10).fit(y_ref, labels_ref).score(y_new, labels_new)),
        "trustworthiness": float(metrics.trustworthiness(x_new, y_new, k=10)),
    }


def transform_rows(data_dir, n, m, *, quick, skip_umap, n_jobs, skip_tsne=False):
    """Fit on the first ``n`` training images, transform the first ``m`` test images; each peer alike."""
    train, test = load_fashion(data_dir, n, "train"), load_fashion(data_dir, m, "test")
    l_ref, l_new = load_labels(data_dir, n, "train"), load_labels(data_dir, m, "test")
    p = pca.fit(train, num_components=50)
    x_ref = np.asarray(pca.transform(p, train), np.float32)
    x_new = np.asarray(pca.transform(p, test), np.float32)
    num_steps, ee = (100, 50) if quick else (750, 250)
    steps = 50 if quick else 250  # openTSNE's transform n_iter (default 250)
    rows = []

    def row(case, impl, fit_seconds, cold, warm, y_ref, y_new, **extra):
        q = transform_quality(x_new, y_ref, l_ref, y_new, l_new)
        head = {"case": case, "impl": impl, "seconds": warm, "cold_seconds": cold, "fit_seconds": fit_seconds}
        return head | q | extra

    if not skip_tsne:
        rows += _tsne_transform_rows(row, x_ref, x_new, n, m, num_steps, ee, steps, n_jobs)
    if skip_umap:
        return rows
    case = f"umap_transform_n{n}_m{m}"
    umap_steps = 50 if quick else None
    t = time.perf_counter()
    fitted = jax.block_until_ready(maps.fit_umap(jax.random.key(0), x_ref, num_steps=umap_steps))
    fit_s = time.perf_counter() - t
    cold, warm, y = timed(lambda: maps.transform(fitted, jax.random.key(1), x_new))
    rows.append(row(case, "latentjax", fit_s, cold, warm, fitted.embedding, y))
    try:
        import umap
    except ImportError:
        print("umap-learn not installed: its transform rows are skipped", file=sys.stderr)
    else:
        t = time.perf_counter()
        u = umap.UMAP(n_neighbors=15, min_dist=0.1, n_epochs=umap_steps, n_jobs=-1).fit(x_ref)
        fit_s = time.perf_counter() - t
        cold, warm, y = timed(lambda: u.transform(x_new))
        rows.append(row(case, "umap_learn", fit_s, cold, warm, u.embedding_, y))
    return rows


def _tsne_transform_rows(row, x_ref, x_new, n, m, num_steps, ee, steps, n_jobs):
    rows = []
    case = f"tsne_transform_n{n}_m{m}"
    t = time.perf_counter()
    fitted = jax.block_until_ready(
        maps.fit_tsne(
            jax.random.key(0), x_ref, perplexity=30.0, num_steps=num_steps, early_exaggeration_steps=ee
        )
    )
    fit_s = time.perf_counter() - t
    cold, warm, y = timed(lambda: maps.transform(fitted, jax.random.key(1), x_new, num_steps=steps))
    rows.append(row(case, "latentjax", fit_s, cold, warm, fitted.embedding, y))
    try:
        import openTSNE
    except ImportError:
        print("openTSNE not installed: its transform rows are skipped", file=sys.stderr)
    else:
        t = time.perf_counter()
        emb = openTSNE.TSNE(
            perplexity=30.0, n_iter=num_steps - ee, early_exaggeration_iter=ee, n_jobs=n_jobs, random_state=0
        ).fit(x_ref.astype(np.float64))
        fit_s = time.perf_counter() - t
        cold, warm, y = timed(lambda: emb.transform(x_new.astype(np.float64), n_iter=steps))
        rows.append(row(case, "opentsne", fit_s, cold, warm, np.asarray(emb), y, n_jobs=n_jobs))

    return rows


def add_ratios(rows):
    """``seconds_vs_<peer>`` etc. on each latentjax row: ours / peer's, same case, same run."""
    for row in rows:
        if row["impl"] != "latentjax":
            continue
        for peer in rows:
            if peer["case"] == row["case"] and peer["impl"] != "latentjax":
                for field in ("seconds", "cold_seconds", "fit_seconds", "kl"):
                    if field in row and field in peer and peer[field]:
                        row[f"{field}_vs_{peer['impl']}"] = row[field] / peer[field]
                for field in ("trustworthiness", "knn_recall", "knn_accuracy"):
                    if field in row and field in peer:
                        row[f"{field}_minus_{peer['impl']}"] = row[field] - peer[field]
    return rows


def print_table(rows):
    cols = ["case", "impl", "seconds", "cold_seconds", "trustworthiness", "knn_recall", "kl", "knn_accuracy"]
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
    ap.add_argument(
        "--n",
        type=int,
        default=10000,
        help="points: the first n Fashion-MNIST images (70000: all); beyond 70,000 jittered copies of all",
    )
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, format only")
    ap.add_argument("--data-dir", default=os.environ.get("LATENTJAX_DATA_DIR", "../shared/data"))
    ap.add_argument("--checkpoint", help="a trained VAE run directory: also embed its latent means")
    ap.add_argument("--skip-sklearn", action="store_true", help="skip scikit-learn's (slow) Barnes-Hut t-SNE")
    ap.add_argument("--skip-umap", action="store_true")
    ap.add_argument("--skip-tsne", action="store_true")
    ap.add_argument(
        "--umap-knn", choices=("auto", "exact", "approximate"), default="auto", help="latentjax UMAP's search"
    )
    ap.add_argument("--umap-epochs", type=int, default=None, help="both UMAPs' epochs (default: their rule)")
    ap.add_argument(
        "--transform", action="store_true", help="also the transform rows (fit on train, place test)"
    )
    ap.add_argument("--n-test", type=int, default=10000, help="test images placed by the transform rows")
    ap.add_argument("--no-fit-rows", action="store_true", help="only the transform rows")
    ap.add_argument(
        "--impl",
        choices=("all", "latentjax", "peers"),
        default="all",
        help="fit rows of latentjax, of the peers, or of both (separate processes: separate peak memory)",
    )
    ap.add_argument("--repeats", type=int, default=2, help="calls per implementation (1: cold only)")
    ap.add_argument(
        "--quality-n",
        type=int,
        default=10000,
        help="trustworthiness / recall on this many points (subsample)",
    )
    args = ap.parse_args(argv)
    global REPEATS, QUALITY_N, IMPL
    REPEATS, QUALITY_N, IMPL = max(1, args.repeats), args.quality_n, args.impl
    n = 300 if args.quick else args.n
    m = 100 if args.quick else args.n_test
    n_jobs = os.cpu_count() or 1

    images = load_fashion(args.data_dir, min(n, 70000))
    x = np.asarray(pca.transform(pca.fit(images, num_components=50), images), np.float32)
    if n > len(x):
        x = jittered(x, n)
    inputs = {"": x}
    if args.checkpoint:
        inputs["_vae"] = vae_latents(args.checkpoint, args.data_dir, n)

    rows = []
    if args.transform:
        rows += transform_rows(
            args.data_dir,
            n,
            m,
            quick=args.quick,
            skip_umap=args.skip_umap,
            n_jobs=n_jobs,
            skip_tsne=args.skip_tsne,
        )
    for suffix, data in {} if args.no_fit_rows else inputs.items():
        if not args.skip_tsne:
            rows += tsne_rows(
                f"tsne{suffix}_n{n}", data, quick=args.quick, skip_sklearn=args.skip_sklearn, n_jobs=n_jobs
            )
        if not args.skip_umap:
            rows += umap_rows(
                f"umap{suffix}_n{n}",
                data,
                quick=args.quick,
                knn_method=args.umap_knn,
                epochs=args.umap_epochs,
            )
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
        + (", and VAE latent means" if args.checkpoint else "")
        + (f"; transform: first {m} test images into maps of those" if args.transform else ""),
        "quick": args.quick,
        "repeats": REPEATS,
        "peak_rss_mib": peak_rss_mib(),
        "quality": f"trustworthiness and kNN recall (k = 10) on the PCA-50 input, on at most {QUALITY_N} "
        "points (one fixed random subsample for every implementation)",
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
