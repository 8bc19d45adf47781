"""``latentjax explore``: its flags and its run (a live explorer, or one self-contained page)."""

from __future__ import annotations

from latentjax.app import _cli_checks as _checks


def add(sub) -> None:
    """Adds the ``explore`` subcommand to ``sub`` (an argparse subparsers object)."""
    e = sub.add_parser(
        "explore",
        help="explore a trained run's latent space in the browser: decode anywhere, paths, attribute sliders",
    )
    e.add_argument("run", metavar="RUN", help="a run folder of `latentjax train` or `latentjax demo`")
    e.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    e.add_argument("--port", type=_checks.nonnegative_int, default=8765, help="0: any free port")
    e.add_argument("--method", choices=("pca", "tsne", "umap"), default="tsne", help="the 2-D map")
    e.add_argument(
        "--inverse",
        choices=("auto", "idw", "map"),
        default="auto",
        help="map position -> latent: umap-learn's inverse_transform (map), inverse-distance weighting "
        "(idw), or auto (map for umap, idw otherwise)",
    )
    e.add_argument("--data-dir", default=None)
    e.add_argument("--n", type=_checks.positive_int, default=2000, help="test images on the map")
    e.add_argument(
        "--static", metavar="OUT.html", default=None, help="write one self-contained page and exit"
    )


def run(args) -> int:
    """Runs ``latentjax explore``; returns the exit code."""
    from latentjax.app import explore

    session = explore.load(
        args.run, method=args.method, data_dir=args.data_dir, num_points=args.n, inverse=args.inverse
    )
    if args.static:
        from latentjax.app.explore import _static

        path = _static.write_static(session, args.static)
        print(f"latentjax explore: wrote {path}")
        return 0
    explore.serve(args.run, host=args.host, port=args.port, session=session)
    return 0
