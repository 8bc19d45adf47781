"""``latentjax embed``: its flags and its run."""

from __future__ import annotations

import json

from latentjax.app import _cli_checks as _checks


def add(sub) -> None:
    """Adds the ``embed`` subcommand to ``sub`` (an argparse subparsers object)."""
    e = sub.add_parser("embed", help="embed a trained model's latents with PCA, t-SNE or UMAP")
    e.add_argument(
        "--checkpoint", required=True, help="a run folder of `latentjax train` or `latentjax demo`"
    )
    e.add_argument(
        "--method",
        choices=("pca", "tsne", "umap"),
        default="tsne",
        help="t-SNE and UMAP also write the map (OUT/map.npz + map.json) for --transform",
    )
    e.add_argument("--out", required=True)
    e.add_argument("--dataset", default=None, help="default: the data set the run was trained on")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--download", action="store_true", help="fetch (Fashion-)MNIST to the cache if missing")
    e.add_argument("--n", type=_checks.positive_int, default=5000, help="number of images to embed")
    e.add_argument("--split", choices=("test", "train"), default="test", help="which images (the first --n)")
    e.add_argument(
        "--transform",
        metavar="MAPDIR",
        default=None,
        help="place these latents into the map an earlier `latentjax embed --out MAPDIR` saved "
        "(only the new points move; --method is the map's)",
    )
    e.add_argument("--seed", type=_checks.nonnegative_int, default=0)
    e.add_argument("--no-progress", action="store_true", help="no t-SNE KL lines or UMAP bar on stderr")


def run(args) -> int:
    """Runs ``latentjax embed``; returns the exit code."""
    from latentjax.app import embed
    from latentjax.learn import runs

    if args.download:
        _checks.fetch(args.dataset or runs.read_config(args.checkpoint).train.get("dataset"), args.data_dir)
    res = embed.run(
        args.checkpoint,
        args.out,
        method=args.method,
        data_dir=args.data_dir,
        num_points=args.n,
        seed=args.seed,
        dataset=args.dataset,
        split=args.split,
        transform=args.transform,
        progress=not args.no_progress,
    )
    print(json.dumps(res, default=str))
    return 0
