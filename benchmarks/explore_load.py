"""`latentjax explore` under load: decode requests from concurrent clients on loopback.

The explorer server runs in its own process (``python -m latentjax.app.cli explore RUN``, as a user
starts it), bound to 127.0.0.1, for a trained MLP VAE run (``--run DIR``, or one trained here: 28x28
Fashion-MNIST, latent 16, hidden 400). After a warm-up (the decoder's compilations), ``--clients``
threads (stdlib ``http.client``, one keep-alive connection each, reconnecting when the server closes
it) send ``--requests`` POST /api/decode requests in all, each for one random position on the map
(the page's drag). Reported: errors (a non-200 answer or a failed connection), p50 / p99 / mean
latency (send to full body read) and requests per second over the whole run (first send to last
answer), plus the machine's load average before and after: client and server share the cores, so
timings mean something only on a quiet machine.

    python benchmarks/explore_load.py --data-dir ../shared/data --json explore_load.json
    python benchmarks/explore_load.py --quick      # tiny (sprites, 64 requests), format only (tests)
"""

import argparse
import contextlib
import http.client
import json
import os
import pathlib
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata

import jax
import numpy as np

from latentjax import data
from latentjax.learn import models, train


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def train_run(out_dir, dataset, data_dir, *, quick):
    """A small trained MLP VAE run folder (the explorer needs one)."""
    ds = data.load(dataset, data_dir=data_dir, limit=2048 if quick else None)
    cfg = models.Config(
        image_shape=tuple(ds.train_images.shape[1:]),
        latent_dim=4 if quick else 16,
        hidden=32 if quick else 400,
    )
    train.fit(
        jax.random.key(0),
        cfg,
        ds.train_images[: 2048 if quick else None],
        epochs=1 if quick else 3,
        batch_size=128,
        out_dir=out_dir,
        settings={"dataset": dataset},
    )
    return out_dir


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(conn, method, path, body=None):
    """(status, body bytes) of one request on ``conn`` (raises on a broken connection)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    if resp.will_close:
        conn.close()  # http.client reconnects on the next request
    return resp.status, payload


# The server's process: explore.serve (what `latentjax explore RUN` runs) on 127.0.0.1.
SERVE = (
    "import sys; from latentjax.app import explore; a = sys.argv; explore.serve(a[1], port=int(a[2]), "
    "method=a[3], data_dir=a[4] or None, num_points=int(a[5]))"
)


def start_server(run_dir, port, *, method, data_dir, num_points, timeout, log):
    """``explore.serve`` in a subprocess: ``(process, seconds until /api/info answered, info)``.

    Its output goes to ``log``, a file: a pipe nobody reads could fill up and block the server.
    """
    cmd = [sys.executable, "-c", SERVE, str(run_dir), str(port), method, str(data_dir or ""), str(num_points)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the explorer exited with {proc.returncode}:\n{log.read()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            status, body = request(conn, "GET", "/api/info")
            conn.close()
            if status == 200:
                return proc, time.perf_counter() - t0, json.loads(body)
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the explorer did not answer within {timeout} s")


def decode_bodies(info, n, seed):
    """``n`` request bodies: one uniform random position in the map's bounding box each."""
    points = np.asarray(info["points"], float)
    lo, hi = points.min(axis=0), points.max(axis=0)
    xy = np.random.default_rng(seed).uniform(lo, hi, size=(n, 2))
    return [json.dumps({"xy": [p.tolist()]}).encode() for p in xy]


def load(port, bodies, clients):
    """Sends ``bodies`` from ``clients`` threads; returns (latencies s, errors, wall seconds)."""
    latencies = [None] * len(bodies)
    errors = []
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start.wait()
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            t = time.perf_counter()
            try:
                status, payload = request(conn, "POST", "/api/decode", bodies[i])
                ok = status == 200 and payload
            except (OSError, http.client.HTTPException) as e:
                status, ok = repr(e), False
                conn.close()
            latencies[i] = time.perf_counter() - t
            if not ok:
                with lock:
                    errors.append(status)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    return np.asarray(latencies, float), errors, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="a trained MLP VAE run folder (default: train one)")
    ap.add_argument("--dataset", default=None, help="data set of the run trained here (fashion_mnist)")
    ap.add_argument("--data-dir", default=os.environ.get("LATENTJAX_DATA_DIR"))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=50, help="requests sent (and not timed) first")
    ap.add_argument("--method", default="pca", help="the map's method (decoding does not depend on it)")
    ap.add_argument("--num-points", type=int, default=2000, help="test images on the map")
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, format only")
    args = ap.parse_args(argv)
    n, warmup = (64, 8) if args.quick else (args.requests, args.warmup)
    dataset = args.dataset or ("sprites" if args.quick else "fashion_mnist")

    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        run_dir = args.run or train_run(pathlib.Path(tmp) / "run", dataset, args.data_dir, quick=args.quick)
        load_before = os.getloadavg()
        port = free_port()
        log = stack.enter_context(tempfile.TemporaryFile("w+"))
        proc, startup_s, info = start_server(
            run_dir,
            port,
            method=args.method,
            data_dir=args.data_dir,
            num_points=200 if args.quick else args.num_points,
            timeout=300,
            log=log,
        )
        try:
            bodies = decode_bodies(info, warmup + n, seed=0)
            load(port, bodies[:warmup], min(args.clients, warmup))
            latencies, errors, wall = load(port, bodies[warmup:], args.clients)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        if errors:
            log.seek(0)
            print("server output (last 2000 characters):\n" + log.read()[-2000:], file=sys.stderr)
        load_after = os.getloadavg()

    ms = latencies * 1e3
    row = {
        "case": f"decode_c{args.clients}_n{n}",
        "impl": "latentjax",
        "requests": n,
        "clients": args.clients,
        "errors": len(errors),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "requests_per_s": n / wall,
        "seconds": wall,
        "startup_s": startup_s,
    }
    print(" | ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    if errors:
        print(f"errors (first 5): {errors[:5]}", file=sys.stderr)
    result = {
        "benchmark": "explore_load",
        "device": f"cpu: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        "client and server on one machine",
        "versions": {k: _version(k) for k in ("jax", "jaxlib", "flax")},
        "input": f"POST /api/decode of one random map position, {args.clients} clients on 127.0.0.1, "
        f"MLP VAE {info.get('image_shape')} latent {info.get('latent_dim')}, map {args.method}",
        "load_average": {"before": list(load_before), "after": list(load_after)},
        "quick": args.quick,
        "rows": [row],
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
