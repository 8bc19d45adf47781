"""Debiased Wasserstein barycenter paths: latentjax (ott-jax grid geometry, jit) against POT.

Case ``barycenter_{28,64,128}_path9``: the 9 debiased entropic barycenters along the path
between two images (weights ``(1 - t, t)``, ``t`` in ``linspace(0, 1, 9)``), at the library's
default regularisation (``transport.default_epsilon``: a blur of one pixel at 28x28, scaled with
the image).
Both sides run the same algorithm (Janati et al. 2020 with 10 debiasing updates per iteration, as
POT's ``convolutional_barycenter2d_debiased``) for the same fixed number of iterations, so the
barycenters are comparable entry by entry (``l1_vs_pot``).

Rows per case:
- ``latentjax``: the library's default (``mode="auto"``: kernel mode in float64, log-domain
  rerun of any weight whose kernel result is non-finite or loses mass), jit, after
  warm-up; ``compile_s`` separate.
- ``pot``: ``ot.bregman.convolutional_barycenter2d_debiased(method="sinkhorn")`` in float64 with
  ``stabThr=1e-300`` (POT's default 1e-15/1e-30 shifts its own answer at small regularisation);
  POT's fastest variant that reaches this barycenter.
- ``pot_log``: POT's log-domain debiased variant (``method="sinkhorn_log"``); too slow for the
  full path at 64 and 128, so it is timed on ``--log-iterations`` iterations of the middle
  weight and extrapolated (``extrapolated: true``).
- ``latentjax_log``, ``latentjax_log32``, ``latentjax_kernel32``: the other modes.

Fields: ``seconds`` (whole path, best of ``--rounds`` alternating rounds), ``iterations``,
``l1_vs_pot`` (max over the path of the L1 distance to POT's barycenter), ``mass`` (min over
the path), ``compile_s``. Images: Fashion-MNIST test images 0 and 1 (``LATENTJAX_DATA_DIR`` or
``../shared/data``), else two generated blobs; upsampled bilinearly for 64 and 128.

Run: ``python benchmarks/barycenter.py --json barycenter.json`` (about 3 minutes on 2 CPU
cores); pin to one core for a fair comparison with POT (``taskset -c 0``).
``--quick`` is a format-only run for tests (tiny sizes, no timing claims).
"""

import argparse
import functools
import gzip
import json
import os
import pathlib
import platform
import time
import warnings

import jax
import numpy as np
import scipy.ndimage

from latentjax import transport
from latentjax.transport._images import _histograms


def _images(size: int) -> tuple[np.ndarray, str]:
    d = os.environ.get("LATENTJAX_DATA_DIR") or str(
        pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    f = pathlib.Path(d) / "fashion_mnist" / "t10k-images-idx3-ubyte.gz"
    if f.is_file():
        with gzip.open(f) as fh:
            x = (
                np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:2].astype(np.float64)
                / 255.0
            )
        source = "fashion_mnist test[0:2]"
    else:
        r, c = np.mgrid[0:28, 0:28]
        x = np.stack(
            [np.exp(-((r - 9) ** 2 + (c - 8) ** 2) / 8.0), np.exp(-((r - 18) ** 2 + (c - 19) ** 2) / 8.0)]
        )
        source = "generated blobs"
    if size != 28:
        x = np.stack([np.clip(scipy.ndimage.zoom(im, size / 28, order=1), 0, None) for im in x])
    return x, source


def _pot_path(ot, hists, weights, eps, iterations, method):
    out = []
    for w in weights:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(
                ot.bregman.convolutional_barycenter2d_debiased(
                    hists,
                    eps,
                    weights=w,
                    method=method,
                    numItermax=iterations,
                    stopThr=0.0,
                    stabThr=1e-300,
                    warn=False,
                )
            )
    return np.stack(out)


def _ljx_path(x, weights, *, eps, mode, dtype, iterations):
    r = transport.wasserstein_interpolate(
        x, weights, epsilon=eps, mode=mode, dtype=dtype, threshold=0.0, max_steps=iterations
    )
    return jax.block_until_ready(r)


def _best(fn, rounds):
    best, result = np.inf, None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def run(sizes, *, iterations, log_iterations, rounds, num_weights=9):
    import ot

    rows = []
    weights = transport.path_weights(num_weights)
    modes = {
        "latentjax": ("auto", "float64"),
        "latentjax_log": ("log", "float64"),
        "latentjax_log32": ("log", "float32"),
        "latentjax_kernel32": ("kernel", "float32"),
        "latentjax_kernel": ("kernel", "float64"),
    }
    source = None
    for size in sizes:
        x, source = _images(size)
        case = f"barycenter_{size}_path{num_weights}"
        eps = transport.default_epsilon((size, size))
        # POT gets exactly the floored, normalised histograms latentjax iterates on.
        hists = _histograms(x).reshape(2, size, size)

        def ljx(mode, dtype, w=weights, its=iterations, x=x, eps=eps):
            return functools.partial(_ljx_path, x, w, eps=eps, mode=mode, dtype=dtype, iterations=its)

        compile_s = {}
        # The log-domain modes are ~20-30x slower: at 64 and up, time 10 iterations of the middle
        # weight and extrapolate, like pot_log.
        slow = {n: m for n, m in modes.items() if m[0] == "log" and size > 28}
        for name, (mode, dtype) in slow.items():
            mid = weights[num_weights // 2 : num_weights // 2 + 1]
            f = ljx(mode, dtype, w=mid, its=10)
            f()
            s, _ = _best(f, 1)
            rows.append(
                {
                    "case": case,
                    "impl": name,
                    "seconds": s / 10 * iterations * num_weights,
                    "iterations": iterations,
                    "extrapolated": True,
                    "measured_iterations": 10,
                    "epsilon": eps,
                    "mode": mode,
                    "dtype": dtype,
                }
            )
        modes_here = {n: m for n, m in modes.items() if n not in slow}
        for name, (mode, dtype) in modes_here.items():
            t0 = time.perf_counter()
            ljx(mode, dtype)()
            compile_s[name] = time.perf_counter() - t0
        times = {name: np.inf for name in modes_here} | {"pot": np.inf}
        results = {}
        # Alternate the implementations round by round so that machine noise hits both alike.
        for _ in range(rounds):
            for name, (mode, dtype) in modes_here.items():
                s, results[name] = _best(ljx(mode, dtype), 1)
                times[name] = min(times[name], s)
            s, results["pot"] = _best(
                functools.partial(_pot_path, ot, hists, weights, eps, iterations, "sinkhorn"), 1
            )
            times["pot"] = min(times["pot"], s)
        pot_b = results["pot"].reshape(num_weights, -1)
        for name in modes_here:
            hist = np.asarray(results[name].histogram, np.float64).reshape(num_weights, -1)
            rows.append(
                {
                    "case": case,
                    "impl": name,
                    "seconds": times[name],
                    "iterations": iterations,
                    "compile_s": max(compile_s[name] - times[name], 0.0),
                    "l1_vs_pot": float(np.abs(hist - pot_b).sum(axis=1).max()),
                    "mass": float(hist.sum(axis=1).min()),
                    "epsilon": eps,
                    "mode": modes[name][0],
                    "dtype": modes[name][1],
                }
            )
        rows.append(
            {
                "case": case,
                "impl": "pot",
                "seconds": times["pot"],
                "iterations": iterations,
                "l1_vs_pot": 0.0,
                "mass": float(pot_b.sum(axis=1).min()),
                "epsilon": eps,
                "method": "convolutional_barycenter2d_debiased(sinkhorn), float64, stabThr=1e-300",
            }
        )
        # POT's log domain: time a few iterations of the middle weight, extrapolate to the path.
        mid = weights[num_weights // 2 : num_weights // 2 + 1]
        s, _ = _best(functools.partial(_pot_path, ot, hists, mid, eps, log_iterations, "sinkhorn_log"), 1)
        full = _pot_path(ot, hists, mid, eps, iterations, "sinkhorn_log") if size <= 28 else None
        row = {
            "case": case,
            "impl": "pot_log",
            "seconds": s / log_iterations * iterations * num_weights,
            "iterations": iterations,
            "extrapolated": True,
            "measured_iterations": log_iterations,
            "epsilon": eps,
            "method": "convolutional_barycenter2d_debiased(sinkhorn_log), float64",
        }
        if full is not None:
            row["l1_vs_pot"] = float(np.abs(full.reshape(-1) - pot_b[num_weights // 2]).sum())
            row["mass"] = float(full.sum())
        rows.append(row)
    return rows, source


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", type=pathlib.Path, help="write the results here")
    p.add_argument("--quick", action="store_true", help="tiny format-only run (no timing claims)")
    p.add_argument("--sizes", type=int, nargs="*", default=[28, 64, 128])
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--log-iterations", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.iterations, args.log_iterations, args.rounds = [28], 20, 2, 1
    rows, source = run(
        args.sizes, iterations=args.iterations, log_iterations=args.log_iterations, rounds=args.rounds
    )
    import ot

    print(f"{'case':24s} {'impl':20s} {'seconds':>9s} {'x pot':>7s} {'l1_vs_pot':>10s} {'mass':>9s}")
    pot = {r["case"]: r["seconds"] for r in rows if r["impl"] == "pot"}
    for r in rows:
        ratio = pot[r["case"]] / r["seconds"]
        l1 = f"{r['l1_vs_pot']:10.2e}" if "l1_vs_pot" in r else f"{'-':>10s}"
        mass = f"{r['mass']:9.6f}" if "mass" in r else f"{'-':>9s}"
        star = " (extrapolated)" if r.get("extrapolated") else ""
        print(f"{r['case']:24s} {r['impl']:20s} {r['seconds']:9.3f} {ratio:7.2f} {l1} {mass}{star}")
    speedups = {
        c: pot[c] / next(r["seconds"] for r in rows if r["case"] == c and r["impl"] == "latentjax")
        for c in pot
    }
    print("latentjax speed-up over pot:", {c: round(v, 2) for c, v in speedups.items()})
    result = {
        "benchmark": "barycenter",
        "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}, {os.cpu_count()} cores",
        "versions": {
            "jax": jax.__version__,
            "ott-jax": _version("ott-jax"),
            "pot": ot.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "images": source,
        "quick": args.quick,
        "ratios": {c: {"latentjax_speedup_vs_pot": v} for c, v in speedups.items()},
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def _version(dist):
    from importlib import metadata

    return metadata.version(dist)


if __name__ == "__main__":
    main()
