"""Test NLL by importance sampling: latentjax's vectorised estimator against a per-example loop.

Both estimate log p(x) = log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x) (Burda et al. 2016,
sec. 5) for the same model, images and k:
  - ``latentjax``: ``likelihood.log_likelihood``: one jitted call, ``lax.map`` over blocks of
    images, each a ``vmap`` of a ``lax.scan`` over sample chunks (streaming logsumexp);
  - ``pytorch_loop``: the loop of pythae's ``VAE.get_nll`` (pythae 0.1.2, ``models/vae/vae_model.py``)
    in PyTorch: for each image, for each chunk of ``--peer-chunk`` samples (pythae's ``batch_size``,
    default 100), the image repeated ``chunk`` times, encoded, sampled, decoded, the chunk's log
    weights kept; then a logsumexp per image. Same weights (copied from the latentjax model), the
    same Bernoulli likelihood (BCE with logits). Run under ``torch.no_grad()``, which pythae omits:
    kinder to the peer.
Model: Burda et al.'s one-stochastic-layer VAE (784-200-200-50, tanh, Bernoulli), randomly
initialised, or a trained run's (``--checkpoint RUN``); the speed does not depend on the weights.
Images: the first ``--n`` MNIST test images binarised once (``data.binarize``), or random binary
images without a data directory. The peer is timed on the first ``--peer-n`` of them (its time per
image is constant), and the two NLLs are compared on those. ``seconds`` is the warm call;
``compile_s`` the first call's extra time.

    python benchmarks/nll.py --n 1000 --peer-n 50 --samples 5000 --json nll.json --data-dir ../shared/data
    python benchmarks/nll.py --quick        # tiny, format only (tests)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import jax
import numpy as np

from latentjax import data
from latentjax.learn import likelihood, models, runs

BURDA = models.Config(
    image_shape=(28, 28, 1), latent_dim=50, hidden=200, depth=2, activation="tanh", likelihood="bernoulli"
)


def device_string() -> str:
    if jax.default_backend() != "cpu":
        return f"{jax.default_backend()}: {jax.devices()[0].device_kind}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"cpu: {cores} cores ({platform.processor() or platform.machine()})"


def test_images(n: int, data_dir) -> tuple[np.ndarray, str]:
    """The first ``n`` binarised MNIST test images (uint8 0/255), or random binary ones."""
    try:
        images = data.load("mnist", data_dir=data_dir, limit=n).test_images[:n]
        source = "mnist test, binarised (data.BINARIZED_TEST_SEED)"
    except Exception:  # noqa: BLE001  (no data directory: synthetic images)
        images = np.random.default_rng(0).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
        source = "random, binarised"
    return data.binarize(jax.random.key(data.BINARIZED_TEST_SEED), images), source


def latentjax_nll(model, images, *, k: int, chunk_size: int, batch_size: int) -> dict:
    """Per-image log p(x) by ``likelihood.log_likelihood``: first (compiling) and warm call timed."""
    call = lambda: likelihood.log_likelihood(  # noqa: E731
        model, jax.random.key(0), images, num_samples=k, chunk_size=chunk_size, batch_size=batch_size
    )
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    log_px = np.asarray(jax.block_until_ready(call()), np.float64)
    seconds = time.perf_counter() - t0
    return {"log_px": log_px, "seconds": seconds, "compile_s": max(first - seconds, 0.0)}


def torch_model(model, config):
    """``torch_peer.VAE`` with the latentjax model's weights (a torch Linear holds kernel.T)."""
    import torch
    import torch_peer

    net = torch_peer.VAE(config)
    pairs = [
        (list(model.encoder.hidden) + [model.encoder.out], [m for m in net.encoder if hasattr(m, "weight")]),
        (list(model.decoder.hidden) + [model.decoder.out], [m for m in net.decoder if hasattr(m, "weight")]),
    ]
    with torch.no_grad():
        for ours, theirs in pairs:
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                b.weight.copy_(torch.from_numpy(np.asarray(a.kernel[...]).T.copy()))
                b.bias.copy_(torch.from_numpy(np.asarray(a.bias[...]).copy()))
    return net


def weights_agree(model, net, images: np.ndarray) -> float:
    """The largest difference between the peer's and latentjax's encoder outputs and decoder logits."""
    import torch

    x = models.to_float(images[:4])
    z = jax.random.normal(jax.random.key(1), (len(x), model.config.latent_dim))
    q = jax.vmap(models.encode, in_axes=(None, 0))(model, x)
    logits = jax.vmap(models.decode_logits, in_axes=(None, 0))(model, z)
    with torch.no_grad():
        enc = net.encoder(torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())).numpy()
        dec = net.decoder(torch.from_numpy(np.asarray(z))).numpy().transpose(0, 2, 3, 1)
    ours = np.concatenate([q.mean, q.log_var], axis=1)
    return float(max(np.abs(enc - ours).max(), np.abs(dec - np.asarray(logits)).max()))


def pythae_loop_nll(net, images: np.ndarray, *, k: int, chunk: int, device: str) -> dict:
    """The loop of pythae's ``get_nll`` (per image, per chunk of samples), with these weights.

    One image with one chunk runs untimed first (PyTorch's thread pool and allocator warm up).
    """
    import torch
    from torch.nn import functional as F

    torch.manual_seed(0)
    net = net.to(device)
    x_all = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0).to(device)
    n_chunks = 1 if k <= chunk else k // chunk
    chunk = min(k, chunk)
    log_p = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(-1, len(x_all)):  # -1: the untimed warm-up
            x = x_all[i].unsqueeze(0)
            log_p_x = []
            for _ in range(n_chunks if i >= 0 else 1):
                x_rep = torch.cat(chunk * [x])
                mu, log_var = net.encoder(x_rep).chunk(2, dim=1)
                std = torch.exp(0.5 * log_var)
                z = mu + torch.randn_like(std) * std
                log_q_z_given_x = -0.5 * (log_var + (z - mu) ** 2 / torch.exp(log_var)).sum(dim=-1)
                log_p_z = -0.5 * (z**2).sum(dim=-1)
                logits = net.decoder(z)
                log_p_x_given_z = -F.binary_cross_entropy_with_logits(
                    logits.reshape(chunk, -1), x_rep.reshape(chunk, -1), reduction="none"
                ).sum(dim=-1)
                log_p_x.append(log_p_x_given_z + log_p_z - log_q_z_given_x)  # log(2 pi) cancels
            log_p_x = torch.cat(log_p_x)
            log_p_i = (torch.logsumexp(log_p_x, 0) - math.log(len(log_p_x))).item()
            if i < 0:
                t0 = time.perf_counter()
                continue
            log_p.append(log_p_i)
    return {"log_px": np.asarray(log_p), "seconds": time.perf_counter() - t0, "k": n_chunks * chunk}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (format check for tests)")
    ap.add_argument("--n", type=int, default=1000, help="test images for latentjax")
    ap.add_argument("--peer-n", type=int, default=50, help="the first N of them for the PyTorch loop")
    ap.add_argument("--samples", type=int, default=5000, help="importance samples k")
    ap.add_argument("--chunk-size", type=int, default=500, help="latentjax's samples per chunk")
    ap.add_argument("--batch-size", type=int, default=16, help="latentjax's images per vmapped block")
    ap.add_argument("--peer-chunk", type=int, default=100, help="pythae's batch_size (samples per chunk)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--checkpoint", default=None, help="a trained run (default: Burda's model, random init)")
    ap.add_argument("--no-torch", action="store_true", help="latentjax only")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.peer_n, args.samples, args.chunk_size, args.peer_chunk = 6, 3, 60, 25, 20
    if args.checkpoint:
        model, config = runs.load_model(args.checkpoint)
    else:
        config = BURDA
        model = models.create(jax.random.key(0), config)
    images, source = test_images(args.n, args.data_dir)
    k = args.samples
    case = f"nll_k{k}"
    versions = {"jax": jax.__version__, "python": platform.python_version()}
    ours = latentjax_nll(model, images, k=k, chunk_size=args.chunk_size, batch_size=args.batch_size)
    rows = [
        {
            "case": case,
            "impl": "latentjax",
            "n": len(images),
            "k": k,
            "seconds": ours["seconds"],
            "images_per_s": len(images) / ours["seconds"],
            "compile_s": ours["compile_s"],
            "nll": float(-ours["log_px"].mean()),
            "chunk_size": args.chunk_size,
            "batch_size": args.batch_size,
        }
    ]
    ratios = {}
    if not args.no_torch:
        import torch

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        versions["torch"] = torch.__version__
        device = "cuda" if torch.cuda.is_available() else "cpu"
        peer_n = min(args.peer_n, len(images))
        net = torch_model(model, config)
        max_abs_diff = weights_agree(model, net, images)  # the peer runs the same model
        peer = pythae_loop_nll(net, images[:peer_n], k=k, chunk=args.peer_chunk, device=device)
        rows.append(
            {
                "case": case,
                "impl": "pytorch_loop",
                "n": peer_n,
                "k": peer["k"],
                "seconds": peer["seconds"],
                "images_per_s": peer_n / peer["seconds"],
                "compile_s": None,
                "nll": float(-peer["log_px"].mean()),
                "chunk_size": min(args.peer_chunk, k),
                "device": device,
                "outputs_max_abs_diff": max_abs_diff,
            }
        )
        rows[0]["nll_same_images"] = float(-ours["log_px"][:peer_n].mean())
        ratios[case] = {"latentjax/pytorch_loop": rows[0]["images_per_s"] / rows[1]["images_per_s"]}
    result = {
        "benchmark": "nll",
        "device": device_string(),
        "versions": versions,
        "quick": args.quick,
        "model": config.to_json() if hasattr(config, "to_json") else dict(config._asdict()),
        "images": source,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "rows": rows,
        "ratios": ratios,
    }
    print(
        f"{'case':<14}{'impl':<15}{'n':>6}{'k':>7}{'seconds':>10}{'images/s':>10}{'NLL':>10}{'compile s':>10}"
    )
    for r in rows:
        comp = "" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        print(
            f"{r['case']:<14}{r['impl']:<15}{r['n']:>6}{r['k']:>7}{r['seconds']:>10.2f}"
            f"{r['images_per_s']:>10.2f}{r['nll']:>10.2f}{comp:>10}"
        )
    for c, rs in ratios.items():
        print(f"{c}: " + ", ".join(f"{key} = {v:.1f}x" for key, v in rs.items()))
    if "nll_same_images" in rows[0]:
        print(
            f"NLL on the peer's {rows[1]['n']} images: latentjax {rows[0]['nll_same_images']:.2f}, "
            f"pytorch_loop {rows[1]['nll']:.2f}"
        )
    print(f"device: {result['device']}; load average {result['load_average']}; versions: {versions}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)
    return result


if __name__ == "__main__":
    main()
