"""What every experiment script shares: its command-line options, host-side helpers, the result JSON.

Each script imports it as ``_common`` (the scripts' folder is put on ``sys.path`` first, so this
works under ``python experiments/<name>.py`` and when a test loads the script by path).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
from collections.abc import Callable

import jax
import numpy as np

from latentjax import data
from latentjax.app.demo import device_description


def parser(doc: str, *, name: str, data_sets: str | None) -> argparse.ArgumentParser:
    """The options every experiment takes; the script adds its own.

    Args:
        doc: the script's docstring (its first line describes the parser).
        name: the experiment's name: ``--out`` defaults to ``runs/<name>``.
        data_sets: the folders of the data directory it reads (for ``--data-dir``'s help), or
            None when it needs no data.

    Returns:
        A parser with ``--data-dir`` (with ``data_sets``), ``--out``, ``--json``, ``--quick``, ``--seed``.
    """
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    if data_sets is not None:
        p.add_argument(
            "--data-dir",
            type=pathlib.Path,
            default=None,
            help=f"folder holding {data_sets} (default: ${data.DATA_DIR_ENV})",
        )
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs") / name, help="figures and JSON")
    p.add_argument("--json", type=pathlib.Path, default=None, help="the numbers (default: OUT/result.json)")
    p.add_argument("--quick", action="store_true", help="a tiny run (format check, not a result)")
    p.add_argument("--seed", type=int, default=0)
    return p


def out_dir(args: argparse.Namespace) -> pathlib.Path:
    """``args.out``, created."""
    args.out.mkdir(parents=True, exist_ok=True)
    return args.out


def data_dir(args: argparse.Namespace) -> pathlib.Path | None:
    """``--data-dir``, else ``$LATENTJAX_DATA_DIR``, else ``../shared/data`` beside the repository."""
    guess = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    d = args.data_dir or os.environ.get(data.DATA_DIR_ENV) or (guess if guess.is_dir() else None)
    return None if d is None else pathlib.Path(d)


def write_result(result: dict, args: argparse.Namespace) -> pathlib.Path:
    """Writes ``result`` with the device and versions to ``--json`` (default ``OUT/result.json``)."""
    path = args.json or args.out / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    result["device"] = device_description()
    result["versions"] = {"jax": jax.__version__, "python": platform.python_version()}
    path.write_text(json.dumps(result, indent=2))
    return path


def batched(fn: Callable[[np.ndarray], object], x: np.ndarray, *, batch_size: int) -> np.ndarray:
    """``fn`` over ``x`` in host chunks of ``batch_size`` rows (bounded device memory), concatenated."""
    return np.concatenate([np.asarray(fn(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])


def first_of(labels: np.ndarray, cls: int, k: int = 0) -> int:
    """The index of the ``k``-th example of class ``cls`` (its last one if it has fewer, 0 if none)."""
    idx = np.flatnonzero(np.asarray(labels) == cls)
    return int(idx[min(k, len(idx) - 1)]) if len(idx) else 0
