"""Burda et al.'s likelihood table on MNIST: VAE or IWAE test NLL after each stage of the paper's schedule.

The paper's one-stochastic-layer model (784-200-200-50 with tanh, Bernoulli pixels), dynamically
binarised MNIST (a fresh draw of each training image at every visit, from the run key), Adam with
beta1 = 0.9, beta2 = 0.999, epsilon = 1e-4, batch 20, and the schedule of 3^i epochs at learning
rate 1e-3 * 10^(-i/7) for i = 0..7 (3,280 epochs). The run folder holds one ``train.fit`` run,
extended stage by stage (``resume=True``; a killed run continues from its last epoch). After each
stage the test NLL is estimated with ``learn.likelihood.log_likelihood`` (k = 5,000 importance
samples) on the 10,000 test images binarised once with ``data.BINARIZED_TEST_SEED``, and written
beside the paper's Table 1 (VAE 86.76; IWAE k = 5 85.54, k = 50 84.78: after all 8 stages).

Command (from the repository root; run each objective in its own folder):
    python experiments/burda_nll.py --objective vae --k 1 --max-stage 6 --data-dir ../shared/data \
        --out runs/burda_vae
    python experiments/burda_nll.py --objective iwae --k 5 --max-stage 6 --data-dir ../shared/data \
        --out runs/burda_iwae5
Expected result: the NLL falls stage by stage towards the paper's (86.76 / 85.54 after stage 7);
IWAE below the VAE. Writes `result.json` (a row per completed stage: epochs, learning rate, test
NLL, seconds per epoch) and `table.md`; rerunning with a larger `--max-stage` continues the run.
Runtime (CPU, 2 cores, quiet): see the README's measured seconds per epoch; stage I takes 3^I epochs.
Device: any; k = 50 is meant for an accelerator. `--quick`: 300 images, stage 0, NLL with 64 samples.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import jax
import numpy as np

from latentjax import data
from latentjax.learn import checkpoint, likelihood, models, train

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # experiments/_common.py
import _common

CONFIG = models.Config(
    kind="vae", arch="mlp", latent_dim=50, hidden=200, depth=2, activation="tanh", likelihood="bernoulli"
)
STAGES = tuple((3**i, 1e-3 * 10 ** (-i / 7)) for i in range(8))  # (epochs, learning rate)
ADAM = {"adam_b1": 0.9, "adam_b2": 0.999, "adam_eps": 1e-4}
BATCH_SIZE = 20
# Burda, Grosse & Salakhutdinov (ICLR 2016), Table 1, MNIST, one stochastic layer: test NLL in nats.
PAPER = {("vae", 1): 86.76, ("iwae", 1): 86.76, ("iwae", 5): 85.54, ("iwae", 50): 84.78}


def parse_args(argv=None) -> argparse.Namespace:
    p = _common.parser(__doc__, name="burda_nll", data_sets="mnist/")
    p.add_argument("--objective", choices=("vae", "iwae"), default="iwae")
    p.add_argument(
        "--k", type=int, default=None, help="samples per image in training (default: 1 vae, 5 iwae)"
    )
    p.add_argument("--max-stage", type=int, default=7, help="last stage i of the schedule run (0..7)")
    p.add_argument("--nll-samples", type=int, default=None, help="importance samples of the NLL (5000)")
    p.add_argument("--train-limit", type=int, default=None, help="training images (default: all 60,000)")
    p.add_argument("--test-limit", type=int, default=None, help="test images (default: all 10,000)")
    return p.parse_args(argv)


def epochs_through(stage: int) -> int:
    """Epochs of stages 0..stage (1, 4, 13, 40, 121, 364, 1093, 3280)."""
    return sum(e for e, _ in STAGES[: stage + 1])


def run(args: argparse.Namespace) -> dict:
    out = _common.out_dir(args)
    k = args.k or (1 if args.objective == "vae" else 5)
    quick = args.quick
    max_stage = 0 if quick else args.max_stage
    if not 0 <= max_stage < len(STAGES):
        raise SystemExit(f"--max-stage must be in 0..{len(STAGES) - 1}, got {max_stage}")
    nll_samples = args.nll_samples or (64 if quick else 5000)
    train_limit = args.train_limit or (300 if quick else None)
    test_limit = args.test_limit or (100 if quick else None)
    ds = data.load("mnist", data_dir=_common.data_dir(args))
    train_images = ds.train_images[:train_limit]
    test = data.binarize(jax.random.key(data.BINARIZED_TEST_SEED), ds.test_images[:test_limit])
    run_dir = out / "run"
    json_path = args.json or out / "result.json"
    rows = {r["stage"]: r for r in _previous_rows(json_path, args.objective, k)}
    settings = {"seed": args.seed, "dataset": "mnist", "limit": train_limit, "experiment": "burda_nll"}
    steps_per_epoch = len(train_images) // BATCH_SIZE
    for stage in range(max_stage + 1):
        epochs = epochs_through(stage)
        done = _saved_step(run_dir)
        if done > epochs * steps_per_epoch or (stage in rows and done == epochs * steps_per_epoch):
            continue  # measured by an earlier invocation (or the run is past this stage)
        t0 = time.perf_counter()
        res = train.fit(
            jax.random.key(args.seed),
            CONFIG,
            train_images,
            epochs=epochs,
            batch_size=BATCH_SIZE,
            learning_rate=STAGES,
            objective="iwae" if args.objective == "iwae" else "elbo",
            num_samples=k,
            binarize="dynamic",
            **ADAM,
            out_dir=run_dir,
            resume=done > 0,
            keep=2,
            settings=settings,
        )
        train_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        nll_key = jax.random.fold_in(jax.random.key(args.seed), 1_000 + stage)
        log_px = likelihood.log_likelihood(res.model, nll_key, test, num_samples=nll_samples, chunk_size=500)
        nll = -float(np.mean(np.asarray(log_px)))
        hist = res.history
        rows[stage] = {
            "stage": stage,
            "epochs": epochs,
            "learning_rate": STAGES[stage][1],
            "test_nll": nll,
            "nll_samples": nll_samples,
            "train_loss": hist[-1]["loss"] if hist else None,
            "seconds_per_epoch": len(train_images) / train.throughput(hist) if hist else None,
            "train_seconds": train_seconds,
            "nll_seconds": time.perf_counter() - t0,
        }
        print(json.dumps(rows[stage]), flush=True)
        _write(rows, args, k, len(train_images), len(test), json_path)
    return _write(rows, args, k, len(train_images), len(test), json_path)


def _saved_step(run_dir: pathlib.Path) -> int:
    """The run's latest checkpoint step (0: none), read from the folder names."""
    ckpt = checkpoint.checkpoint_dir(run_dir)
    return max((int(p.name) for p in ckpt.iterdir() if p.name.isdigit()), default=0) if ckpt.is_dir() else 0


def _previous_rows(path: pathlib.Path, objective: str, k: int) -> list:
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    return old.get("rows", []) if (old.get("objective"), old.get("k")) == (objective, k) else []


def _write(rows: dict, args, k: int, n_train: int, n_test: int, json_path: pathlib.Path) -> dict:
    paper = PAPER.get((args.objective, k))
    result = {
        "objective": args.objective,
        "k": k,
        "model": CONFIG.to_json(),
        "schedule": [list(s) for s in STAGES],
        "adam": ADAM,
        "batch_size": BATCH_SIZE,
        "train_images": n_train,
        "test_images": n_test,
        "binarize": "dynamic (test: data.BINARIZED_TEST_SEED)",
        "paper_nll": paper,
        "paper": {f"{o} k={kk}": v for (o, kk), v in PAPER.items()},
        "rows": [rows[s] for s in sorted(rows)],
    }
    _common.write_result(result, argparse.Namespace(json=json_path, out=args.out))
    lines = [
        f"| stage | epochs | lr | test NLL ({args.objective}, k={k}) | paper (after stage 7) | s/epoch |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        spe = "-" if r["seconds_per_epoch"] is None else f"{r['seconds_per_epoch']:.1f}"
        lines.append(
            f"| {r['stage']} | {r['epochs']} | {r['learning_rate']:.2e} | {r['test_nll']:.2f} "
            f"| {'-' if paper is None else paper} | {spe} |"
        )
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    return result


def main(argv=None) -> dict:
    result = run(parse_args(argv))
    print(json.dumps({"rows": [(r["stage"], round(r["test_nll"], 2)) for r in result["rows"]]}))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
