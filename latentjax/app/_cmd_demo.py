"""``latentjax demo``: its flags and its run."""

from __future__ import annotations

import os

from latentjax.app import _cli_checks as _checks


def add(sub) -> None:
    """Adds the ``demo`` subcommand to ``sub`` (an argparse subparsers object)."""
    d = sub.add_parser("demo", help="train a VAE and write a report of its latent space")
    d.add_argument("--dataset", default="sprites")
    d.add_argument("--data-dir", default=None)
    d.add_argument("--download", action="store_true", help="fetch (Fashion-)MNIST to the cache if missing")
    d.add_argument("--out", default="latentjax-demo")
    d.add_argument("--epochs", type=_checks.positive_int, default=None)
    d.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    d.add_argument("--latent-dim", type=_checks.positive_int, default=None)
    d.add_argument("--seed", type=_checks.nonnegative_int, default=0)
    d.add_argument("--quick", action="store_true", help="a small run (under a minute on 2 CPU cores)")
    d.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier demo in --out (deletes only what latentjax wrote)",
    )
    d.add_argument("--quiet", action="store_true")


def run(args) -> int:
    """Runs ``latentjax demo``; returns the exit code."""
    from latentjax.app import demo

    if args.download:
        _checks.fetch(args.dataset, args.data_dir)
    m = demo.run(
        dataset=args.dataset,
        data_dir=args.data_dir,
        out=args.out,
        epochs=args.epochs,
        quick=args.quick,
        seed=args.seed,
        arch=args.arch,
        latent_dim=args.latent_dim,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(
        f"test ELBO {m['test_elbo']:.2f}, test MSE {m['test_recon_mse']:.4f} (PCA {m['pca_recon_mse']:.4f}), "
        f"{m['train_images_per_s']:.0f} images/s, {m['total_seconds']:.1f} s"
    )
    print(f"report: {os.path.join(args.out, 'report.html')}")
    return 0
