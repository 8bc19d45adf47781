"""MNIST and Fashion-MNIST on a user's machine: the official IDX files fetched once into a cache.

``download`` fetches what is missing of a set into ``<cache>/<name>/``, the layout of a data
directory, so the cache is one: each file from the first mirror that delivers it whole, checked
against its published size and checksums, written to a temporary file beside it, synced to disk
and renamed into place. No partial file is ever left under a file's name, and a file already
there is never fetched again or touched: later loads work offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import pathlib
import socket
import tempfile
import urllib.error
import urllib.request
from typing import NamedTuple

from tqdm.auto import tqdm

from latentjax.errors import DataError, InputError

CACHE_DIR_ENV = "LATENTJAX_CACHE_DIR"
DATA_URL_ENV = "LATENTJAX_DATA_URL"
DEFAULT_CACHE_DIR = "~/.cache/latentjax/data"
DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 16


class _File(NamedTuple):
    size: int
    md5: str
    sha256: str


# The official locations, tried in order.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror
        "http://yann.lecun.com/exdb/mnist/",  # the original page, often down
    ),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
# MD5s as published (MNIST: torchvision's ``datasets.MNIST.resources``; Fashion-MNIST: its
# README's table); sizes and SHA-256s as in tensorflow-datasets' ``url_checksums``.
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": _File(
            9912422,
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        "train-labels-idx1-ubyte.gz": _File(
            28881,
            "d53e105ee54ea40749a09fcbcd1e9432",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        "t10k-images-idx3-ubyte.gz": _File(
            1648877,
            "9fb629c4189551a2d022fa330f9573f3",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        "t10k-labels-idx1-ubyte.gz": _File(
            4542,
            "ec29112dd5afa0611ce80d1b7f02629c",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": _File(
            26421880,
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        ),
        "train-labels-idx1-ubyte.gz": _File(
            29515,
            "25c81989df183df01b3e8a0aad5dffbe",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        ),
        "t10k-images-idx3-ubyte.gz": _File(
            4422102,
            "bef4ecab320f06d8554ea6380940ec79",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        ),
        "t10k-labels-idx1-ubyte.gz": _File(
            5148,
            "bb300cfdad3c16e7a12a480ee83cd310",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        ),
    },
}
DOWNLOADABLE = tuple(CHECKSUMS)


def cache_dir_for(cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The cache folder: ``cache_dir``, else ``$LATENTJAX_CACHE_DIR``, else ``~/.cache/latentjax/data``.

    Examples:
        >>> str(cache_dir_for("/tmp/c"))
        '/tmp/c'
    """
    d = cache_dir if cache_dir is not None else os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
    return pathlib.Path(d).expanduser()


def missing(name: str, cache_dir: str | os.PathLike | None = None) -> list[str]:
    """The files of ``name`` not yet in its cache folder (all of them for a set that never downloads)."""
    folder = cache_dir_for(cache_dir) / name
    return [f for f in CHECKSUMS.get(name, {}) if not (folder / f).is_file()]


def download(
    name: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> pathlib.Path:
    """Fetches the official files of MNIST or Fashion-MNIST that the cache does not hold yet.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        cache_dir: the cache folder (default: `cache_dir_for`); files go to ``<cache_dir>/<name>/``.
        base_url: a server laid out like a data directory (``<base_url>/<name>/<file>``) to use
            instead of the official mirrors; defaults to ``$LATENTJAX_DATA_URL``.
        timeout: seconds to wait for the connection and for each read; a stalled server errors.
        progress: show a progress bar while fetching.

    Returns:
        The folder holding the four IDX files, ready for ``data.load(name, data_dir=<its parent>)``.

    Raises:
        DataError: in one line naming the file, the URL and the problem (an HTTP status, a refused
            connection, a timeout, a truncated response, a checksum mismatch) when no mirror
            delivers a file; or a name that cannot be downloaded.
        InputError: a ``timeout`` that is not a positive number.

    Examples:
        >>> download("mnist", cache_dir="/tmp/cache")  # doctest: +SKIP
        PosixPath('/tmp/cache/mnist')
    """
    if name not in CHECKSUMS:
        raise DataError(
            f"data.download: {name!r} cannot be downloaded; the downloadable sets: {', '.join(DOWNLOADABLE)}"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise InputError(f"data.download: timeout must be a positive number of seconds, got {timeout!r}")
    folder = cache_dir_for(cache_dir) / name
    todo = missing(name, cache_dir)
    if not todo:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"data.download: cannot create the cache folder {folder}: {e.strerror or e}"
        ) from None
    base = base_url or os.environ.get(DATA_URL_ENV)
    bases = (base.rstrip("/") + f"/{name}/",) if base else MIRRORS[name]
    for file in todo:
        problems = []
        for b in bases:
            try:
                _fetch(
                    b + file, folder / file, CHECKSUMS[name][file], timeout=float(timeout), progress=progress
                )
                break
            except DataError as e:
                problems.append(str(e))
        else:
            raise DataError(f"data.download: cannot fetch {file} of {name!r}: {'; '.join(problems)}")
    return folder


def _fetch(url: str, dest: pathlib.Path, expected: _File, *, timeout: float, progress: bool) -> None:
    """One file from ``url`` to ``dest``, atomically: a checked temporary file renamed into place."""
    try:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise DataError(f"{url}: cannot write in {dest.parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            _stream(url, f, expected, timeout=timeout, progress=progress, label=dest.name)
            try:
                f.flush()
                os.fsync(f.fileno())
                os.chmod(tmp, 0o644)  # mkstemp's 0o600 would hide the cache from other users
            except OSError as e:
                raise DataError(f"{url}: cannot write {tmp}: {e.strerror or e}") from None
        if dest.is_file():  # another process got there first: keep its (equally checked) file
            os.unlink(tmp)
            return
        try:
            os.replace(tmp, dest)
        except OSError as e:
            raise DataError(f"{url}: cannot rename {tmp} to {dest.name}: {e.strerror or e}") from None
    except BaseException:  # also KeyboardInterrupt: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX; a no-op elsewhere)
        dir_fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _stream(url: str, f, expected: _File, *, timeout: float, progress: bool, label: str) -> None:
    """Copies ``url``'s body to ``f``, checking its length and checksums; DataError ``"<url>: <problem>"``."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DataError(f"{url}: {_network_problem(e.reason, timeout)}") from None
    except (OSError, http.client.HTTPException) as e:
        raise DataError(f"{url}: {_network_problem(e, timeout)}") from None
    except ValueError as e:
        raise DataError(f"{url}: not a URL urllib can open ({e})") from None
    n = 0
    with (
        response,
        tqdm(total=expected.size, unit="B", unit_scale=True, desc=label, disable=not progress) as bar,
    ):
        announced = response.headers.get("Content-Length")
        for chunk in _chunks(response, url, timeout):
            n += len(chunk)
            if n > expected.size:
                raise DataError(f"{url}: sends more than the {expected.size} bytes of {label}")
            try:
                f.write(chunk)
            except OSError as e:
                raise DataError(f"{url}: cannot write {f.name}: {e.strerror or e}") from None
            md5.update(chunk)
            sha256.update(chunk)
            bar.update(len(chunk))
    if announced is not None and announced.isdigit() and n != int(announced):
        raise DataError(f"{url}: truncated response: got {n} of the {announced} bytes announced")
    if (n, md5.hexdigest(), sha256.hexdigest()) != tuple(expected):
        raise DataError(
            f"{url}: checksum mismatch for {label}: expected md5 {expected.md5} ({expected.size} bytes), "
            f"got md5 {md5.hexdigest()} ({n} bytes)"
        )


def _chunks(response, url: str, timeout: float):
    """The body in chunks; a read that stalls for ``timeout`` seconds or fails is a DataError."""
    while True:
        try:
            chunk = response.read(_CHUNK)
        except (OSError, http.client.HTTPException) as e:
            raise DataError(f"{url}: {_network_problem(e, timeout)}") from None
        if not chunk:
            return
        yield chunk


def _network_problem(e: BaseException | str, timeout: float) -> str:
    """What went wrong on the network, in words."""
    if isinstance(e, TimeoutError | socket.timeout):
        return f"timed out: no answer within {timeout:g} s"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve the host ({e.strerror or e})"
    if isinstance(e, http.client.IncompleteRead):
        return f"truncated response: got {len(e.partial)} more bytes, {e.expected} were still due"
    if isinstance(e, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(e, ConnectionError):
        return f"connection lost ({type(e).__name__})"
    if isinstance(e, str):
        return e
    return f"{type(e).__name__}: {str(e).splitlines()[0]}" if str(e) else type(e).__name__
