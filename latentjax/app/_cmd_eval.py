"""``latentjax eval``: a trained run's test NLL by importance sampling, written to ``RUN/eval.json``."""

from __future__ import annotations

import json
import pathlib
import time

from latentjax.app import _cli_checks as _checks

EVAL_FILE = "eval.json"


def add(sub) -> None:
    """Adds the ``eval`` subcommand to ``sub`` (an argparse subparsers object)."""
    e = sub.add_parser(
        "eval",
        help="evaluate a trained run: the test NLL, -log p(x) by importance sampling (Burda et al. 2016)",
    )
    e.add_argument("run", metavar="RUN", help="a run folder of `latentjax train` or `latentjax demo`")
    e.add_argument(
        "--nll",
        action="store_true",
        help="estimate the test negative log-likelihood in nats (the only evaluation so far: the default)",
    )
    e.add_argument(
        "--samples", type=_checks.positive_int, default=5000, help="importance samples k per image"
    )
    e.add_argument("--data-dir", default=None)
    e.add_argument("--limit", type=_checks.positive_int, default=None, help="the first N test images only")
    e.add_argument("--batch-size", type=_checks.positive_int, default=16, help="images per vmapped block")
    e.add_argument("--chunk-size", type=_checks.positive_int, default=500, help="samples per chunk")
    e.add_argument("--seed", type=_checks.nonnegative_int, default=0, help="seeds the importance samples")
    e.add_argument(
        "--step", type=_checks.positive_int, default=None, help="checkpoint step (default: latest)"
    )


def nll(
    run_dir,
    *,
    num_samples: int = 5000,
    data_dir=None,
    limit: int | None = None,
    batch_size: int = 16,
    chunk_size: int = 500,
    seed: int = 0,
    step: int | None = None,
) -> dict:
    """The test NLL of a run's model on its data set's test images; writes ``run_dir/eval.json``.

    The test images of a run trained on binarised images (``binarize`` "fixed" or "dynamic" in its
    config) are the data set's one fixed binarisation (``data.binarize`` with
    ``data.BINARIZED_TEST_SEED``), as its training evaluated them.

    Returns:
      The JSON written: ``nll`` (-mean log p(x), nats), ``nll_sem`` (its standard error over
      images), ``k``, ``n``, ``seconds`` (the estimate, compilation included), and what defines it.
    """
    import jax
    import numpy as np

    from latentjax import data
    from latentjax.errors import InputError
    from latentjax.learn import _manifest, likelihood, runs

    run_dir = pathlib.Path(run_dir)
    settings = runs.read_config(run_dir).train
    model, cfg = runs.load_model(run_dir, step=step)
    name = settings.get("dataset")
    if not name:
        raise InputError(f"eval.nll: the run in {run_dir} does not name its data set")
    ds = data.load(name, data_dir=data_dir, limit=limit, seed=settings.get("seed", 0))
    images = ds.test_images[:limit] if limit else ds.test_images
    binarize = settings.get("binarize", "none")
    if binarize in ("fixed", "dynamic"):
        images = data.binarize(jax.random.key(data.BINARIZED_TEST_SEED), images)
    t0 = time.perf_counter()
    log_px = likelihood.log_likelihood(
        model,
        jax.random.key(seed),
        images,
        num_samples=num_samples,
        chunk_size=chunk_size,
        batch_size=batch_size,
    )
    log_px = np.asarray(jax.block_until_ready(log_px), np.float64)
    seconds = time.perf_counter() - t0
    res = {
        "nll": round(float(-log_px.mean()), 4),
        "nll_sem": round(float(log_px.std() / np.sqrt(len(log_px))), 4),
        "k": num_samples,
        "n": len(log_px),
        "seconds": round(seconds, 2),
        "dataset": name,
        "binarize": binarize,
        "seed": seed,
        "step": step if step is not None else _checks.saved_step(str(run_dir)),
        "chunk_size": chunk_size,
        "batch_size": batch_size,
        "device": jax.devices()[0].platform,
    }
    _manifest.claim(run_dir, [EVAL_FILE], adopt=True)  # recorded: --overwrite deletes it with the run
    _manifest.write_atomic(run_dir / EVAL_FILE, json.dumps(res, indent=1))
    return res


def run(args) -> int:
    """Runs ``latentjax eval``; returns the exit code."""
    res = nll(
        args.run,
        num_samples=args.samples,
        data_dir=args.data_dir,
        limit=args.limit,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        seed=args.seed,
        step=args.step,
    )
    print(
        f"test NLL {res['nll']:.3f} +- {res['nll_sem']:.3f} nats (k = {res['k']}, n = {res['n']}, "
        f"{res['seconds']:.1f} s) -> {pathlib.Path(args.run) / EVAL_FILE}"
    )
    print(json.dumps(res))
    return 0
