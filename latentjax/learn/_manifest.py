"""What latentjax wrote in a folder: ``.latentjax-manifest.json``, the only list ``--overwrite`` deletes.

A run (``runs.RunDir``) or a demo records each top-level file or folder *before* it creates it
(``claim``), so a process killed at any point leaves every file it wrote listed. ``remove`` deletes
the listed entries and nothing else; a listed folder is one latentjax created (``claim`` refuses a
name that already exists and is not listed: ``foreign``). Every write of the manifest and of small
JSON files is atomic (``write_atomic``: a temporary file, then ``os.replace``).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterable

from latentjax.errors import InputError

MANIFEST = ".latentjax-manifest.json"


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` at once: readers see the old file or the new one, never a part.

    Args:
      path: the file.
      text: its new content.

    Examples:
      >>> import tempfile
      >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.json"
      >>> write_atomic(p, "{}"); p.read_text()
      '{}'
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it (mkstemp makes it private)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def entries(folder: str | os.PathLike) -> list[str]:
    """The names latentjax recorded in ``folder`` (a list of str; empty without a manifest).

    Examples:
      >>> entries("/nonexistent")
      []
    """
    path = pathlib.Path(folder) / MANIFEST
    try:
        raw = json.loads(path.read_text())
        return [str(n) for n in raw["entries"]]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError):
        return []  # a damaged manifest lists nothing: nothing is deleted on its word


def foreign(folder: str | os.PathLike, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that exist in ``folder`` but latentjax did not record there.

    Examples:
      >>> import tempfile
      >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "report.html").write_text("mine")
      4
      >>> foreign(d, ["report.html", "metrics.json"])
      ['report.html']
    """
    folder = pathlib.Path(folder)
    known = set(entries(folder))
    return [n for n in names if n not in known and os.path.lexists(folder / n)]


def claim(folder: str | os.PathLike, names: Iterable[str], *, adopt: bool = False) -> None:
    """Records ``names`` in ``folder``'s manifest before they are written (``folder`` is created).

    Args:
      folder: the folder.
      names: top-level file or folder names latentjax is about to write.
      adopt: record names that exist already (a run folder of an older latentjax being resumed).

    Raises:
      InputError: a name exists in ``folder`` and was not written by latentjax (unless ``adopt``).

    Examples:
      >>> import tempfile
      >>> d = pathlib.Path(tempfile.mkdtemp())
      >>> claim(d, ["config.json"]); entries(d)
      ['config.json']
    """
    folder = pathlib.Path(folder)
    names = list(names)
    if not adopt:
        clash = foreign(folder, names)
        if clash:
            raise InputError(
                f"{folder} holds {', '.join(clash)}, not written by latentjax; choose another "
                "out_dir or move them away (nothing was changed)"
            )
    old = entries(folder)
    new = old + [n for n in names if n not in old]
    if new == old and (folder / MANIFEST).exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / MANIFEST, json.dumps({"entries": new}, indent=1))


def remove(folder: str | os.PathLike) -> list[str]:
    """Deletes what ``folder``'s manifest lists, then the manifest; nothing else is touched.

    Args:
      folder: the folder.

    Returns:
      The names deleted (those that existed).

    Examples:
      >>> import tempfile
      >>> d = pathlib.Path(tempfile.mkdtemp()); claim(d, ["a.txt"]); (d / "a.txt").write_text("x")
      1
      >>> (d / "thesis.pdf").write_text("y")
      1
      >>> remove(d), sorted(p.name for p in d.iterdir())
      (['a.txt'], ['thesis.pdf'])
    """
    folder = pathlib.Path(folder)
    gone = []
    for name in entries(folder):
        p = folder / name
        if pathlib.Path(name).is_absolute() or ".." in pathlib.Path(name).parts or name in ("", "."):
            continue  # a manifest edited by hand never reaches outside its folder
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
            gone.append(name)
        elif os.path.lexists(p):
            p.unlink()
            gone.append(name)
    (folder / MANIFEST).unlink(missing_ok=True)
    return gone
