"""``latentjax explore``: a live latent-space explorer for a trained run, served on this machine.

`load` reads a run into a `Session` (model, test images, latents, their cached 2-D map); `serve` runs
the page and its JSON API (`_api`) on the standard library's HTTP server (`_server`); the 2-D -> latent
inverse is `inverse_map` (`_inverse`).
"""

from __future__ import annotations

import os
import sys
import warnings

from latentjax.app.explore._inverse import inverse_map
from latentjax.app.explore._server import make_server
from latentjax.app.explore._session import Session, load
from latentjax.errors import InputError

__all__ = ["Session", "inverse_map", "load", "make_server", "serve"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(
    run_dir: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    method: str = "tsne",
    data_dir: str | os.PathLike | None = None,
    num_points: int = 2000,
    session: Session | None = None,
    inverse: str = "auto",
) -> None:
    """Serves the explorer of a run until interrupted (Ctrl-C stops it cleanly).

    Args:
      run_dir: a ``latentjax train`` / ``latentjax demo`` run folder.
      host: the address to bind; anything but loopback prints a warning (no authentication).
      port: the port (0: any free one).
      method: the map: ``"pca"``, ``"tsne"`` or ``"umap"``.
      data_dir: the data directory (default ``$LATENTJAX_DATA_DIR``).
      num_points: test images on the map.
      session: an already loaded `Session` (then ``run_dir``, ``method``, ``data_dir`` are not read).
      inverse: map position -> latent, as `load`'s ``inverse``.

    Examples:
      >>> serve("runs/vae", method="umap")  # doctest: +SKIP
      latentjax explore: serving runs/vae at http://127.0.0.1:8765/ (Ctrl-C stops)
    """
    if host not in LOOPBACK:
        warnings.warn(
            f"binding {host}: anyone who can reach this address can use the explorer (no authentication)",
            stacklevel=2,
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InputError(f"explore.serve: port must be an integer in [0, 65535], got {port!r}")
    if session is None:
        session = load(run_dir, method=method, data_dir=data_dir, num_points=num_points, inverse=inverse)
    server = make_server(session, host=host, port=port)
    h, p = server.server_address[:2]
    shown = f"[{h}]" if ":" in str(h) else h
    print(f"latentjax explore: serving {run_dir} at http://{shown}:{p}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print("latentjax explore: stopped", file=sys.stderr, flush=True)
