"""data.download and data.load(download=True) against local HTTP servers on 127.0.0.1 only.

The servers deliver the real files (from the data directory), small synthetic IDX files (with the
checksum table patched to theirs, so these tests run without the data directory), a corrupted
copy, a truncated response, a 404, and stall before answering or in the middle of the body.
Each failure must be a one-line DataError within the timeout, leave nothing in the cache folder,
and leave a good file already there untouched.
"""

import gzip
import hashlib
import http.server
import os
import socket
import threading
import time

import numpy as np
import pytest

from latentjax import data
from latentjax.app import cli
from latentjax.data import _download
from latentjax.errors import DataError, InputError

_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_real_create_connection = socket.create_connection


@pytest.fixture(autouse=True)
def _local_only(monkeypatch, tmp_path):
    """No connection leaves 127.0.0.1, and no test sees the user's cache or data directory."""

    def create_connection(address, *args, **kwargs):
        assert address[0] == "127.0.0.1", f"a test tried to reach {address}"
        return _real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(data.DATA_URL_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "default-cache"))


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/<site>/<name>/<file>``: site ``good``, ``corrupt``, ``truncated``, ``missing`` or ``stall_body``."""

    files: dict[str, bytes]
    requests: list[str]
    release: threading.Event

    def do_GET(self):
        self.requests.append(self.path)
        site, _, rest = self.path.lstrip("/").partition("/")
        body = self.files.get("/" + rest)
        if body is None or site == "missing":
            self.send_error(404, "Not Found")
            return
        if site == "corrupt":
            body = bytearray(body)
            body[len(body) // 2] ^= 0xFF  # same size, one byte flipped
            body = bytes(body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if site == "truncated":  # announce it all, send half, close
            self.wfile.write(body[: len(body) // 2])
        elif site == "stall_body":  # send half, then nothing more
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.release.wait(10)
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """``serve(files) -> (server, base)``; ``base + "/good"`` is a mirror laid out like a data directory."""
    started, release = [], threading.Event()

    def start(files):
        handler = type("Handler", (_Handler,), {"files": files, "requests": [], "release": release})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    release.set()
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stalled():
    """A server that accepts connections and never answers."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.1)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except TimeoutError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    sock.close()


def _refused_url():
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _idx_gz(a: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return gzip.compress(header + a.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture
def fake(monkeypatch):
    """Small IDX sets served as ``mnist`` and ``fashion_mnist``, with the checksum table patched to them."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (24, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 24, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 8, dtype=np.uint8),
    }
    files = {}
    for name in ("mnist", "fashion_mnist"):
        table = {}
        for stem, a in arrays.items():
            b = files[f"/{name}/{stem}.gz"] = _idx_gz(a)
            table[f"{stem}.gz"] = _download._File(
                len(b), hashlib.md5(b).hexdigest(), hashlib.sha256(b).hexdigest()
            )
        monkeypatch.setitem(_download.CHECKSUMS, name, table)
    return arrays, files


def _listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.data
def test_checksum_table_matches_the_real_files(data_dir):
    for name, table in _download.CHECKSUMS.items():
        assert list(table) == [f"{s}.gz" for s in _STEMS]
        for file, expected in table.items():
            b = (data_dir / name / file).read_bytes()
            assert (len(b), hashlib.md5(b).hexdigest(), hashlib.sha256(b).hexdigest()) == tuple(expected)


@pytest.mark.data
def test_download_real_mnist_then_load_offline(data_dir, serve, tmp_path, monkeypatch):
    files = {f"/mnist/{s}.gz": (data_dir / "mnist" / f"{s}.gz").read_bytes() for s in _STEMS}
    server, base = serve(files)
    monkeypatch.setenv(data.DATA_URL_ENV, base + "/good")
    cache = tmp_path / "cache"
    got = data.load("mnist", download=True, cache_dir=cache)
    assert _listing(cache / "mnist") == sorted(f"{s}.gz" for s in _STEMS)
    for s in _STEMS:
        assert (cache / "mnist" / f"{s}.gz").read_bytes() == files[f"/mnist/{s}.gz"]
    server.shutdown()
    server.server_close()
    ref = data.load("mnist", data_dir=data_dir)
    for offline in (data.load("mnist", cache_dir=cache), data.load("mnist", download=True, cache_dir=cache)):
        for a, b, r in zip(got[:4], offline[:4], ref[:4]):
            np.testing.assert_array_equal(a, r)
            np.testing.assert_array_equal(b, r)
    assert len(server.RequestHandlerClass.requests) == 4


def test_download_then_offline_and_equal_to_the_served_arrays(fake, serve, tmp_path, monkeypatch):
    arrays, files = fake
    server, base = serve(files)
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "env-cache"))  # the default cache folder
    folder = data.download("fashion_mnist", base_url=base + "/good", progress=False)
    assert folder == tmp_path / "env-cache" / "fashion_mnist"
    assert _listing(folder) == sorted(f"{s}.gz" for s in _STEMS)  # no temporary file left
    assert oct(os.stat(folder / "t10k-labels-idx1-ubyte.gz").st_mode & 0o777) == "0o644"
    server.shutdown()
    server.server_close()
    ds = data.load("fashion_mnist")  # offline, from the cache
    np.testing.assert_array_equal(ds.train_images[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.test_labels, arrays["t10k-labels-idx1-ubyte"])
    assert ds.label_names == data.FASHION_MNIST_CLASSES
    assert data.download("fashion_mnist", base_url=_refused_url()) == folder  # nothing to fetch


def _failure_sites(serve, stalled, files):
    _, base = serve(files)
    return {
        "corrupt": (base + "/corrupt", "checksum mismatch for train-images-idx3-ubyte.gz: expected md5"),
        "truncated": (base + "/truncated", "truncated response: got"),
        "404": (base + "/missing", "HTTP 404"),
        "refused": (_refused_url(), "connection refused"),
        "stall": (stalled, "timed out: no answer within 1 s"),
        "stall_body": (base + "/stall_body", "timed out: no answer within 1 s"),
    }


@pytest.mark.parametrize("site", ["corrupt", "truncated", "404", "refused", "stall", "stall_body"])
def test_each_failure_is_one_clear_error_leaving_nothing_behind(fake, serve, stalled, tmp_path, site):
    _, files = fake
    base, problem = _failure_sites(serve, stalled, files)[site]
    folder = tmp_path / "cache" / "mnist"
    folder.mkdir(parents=True)
    good = folder / "t10k-labels-idx1-ubyte.gz"
    good.write_bytes(files["/mnist/t10k-labels-idx1-ubyte.gz"])
    os.utime(good, ns=(1_000_000_000, 1_000_000_000))
    before = (good.read_bytes(), good.stat().st_mtime_ns)
    start = time.monotonic()
    with pytest.raises(DataError) as e:
        data.download("mnist", cache_dir=tmp_path / "cache", base_url=base, timeout=1, progress=False)
    assert time.monotonic() - start < 5
    msg = str(e.value)
    url = f"{base}/mnist/train-images-idx3-ubyte.gz"
    assert msg.startswith(
        f"data.download: cannot fetch train-images-idx3-ubyte.gz of 'mnist': {url}: {problem}"
    )
    assert "\n" not in msg
    if site == "corrupt":
        body = bytearray(files["/mnist/train-images-idx3-ubyte.gz"])
        body[len(body) // 2] ^= 0xFF
        expected = _download.CHECKSUMS["mnist"]["train-images-idx3-ubyte.gz"].md5
        assert f"expected md5 {expected}" in msg and f"got md5 {hashlib.md5(body).hexdigest()}" in msg
    assert _listing(folder) == [good.name]  # no partial or temporary file
    assert (good.read_bytes(), good.stat().st_mtime_ns) == before


def test_an_interrupt_leaves_no_temporary_file(fake, serve, tmp_path, monkeypatch):
    _, files = fake
    _, base = serve(files)

    def interrupted(response, url, timeout):
        yield response.read(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(_download, "_chunks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.download("mnist", cache_dir=tmp_path, base_url=base + "/good", progress=False)
    assert _listing(tmp_path / "mnist") == []


def test_mirrors_are_tried_in_order(fake, serve, tmp_path, monkeypatch):
    _, files = fake
    server, base = serve(files)
    monkeypatch.setitem(_download.MIRRORS, "mnist", (base + "/missing/mnist/", base + "/good/mnist/"))
    folder = data.download("mnist", cache_dir=tmp_path, progress=False)
    assert _listing(folder) == sorted(f"{s}.gz" for s in _STEMS)
    assert server.RequestHandlerClass.requests[:2] == [
        "/missing/mnist/train-images-idx3-ubyte.gz",
        "/good/mnist/train-images-idx3-ubyte.gz",
    ]
    monkeypatch.setitem(_download.MIRRORS, "mnist", (base + "/missing/mnist/", base + "/corrupt/mnist/"))
    with pytest.raises(
        DataError, match=r"/missing/mnist/train-images.*HTTP 404.*; .*/corrupt/.*checksum mismatch"
    ):
        data.download("mnist", cache_dir=tmp_path / "other", progress=False)
    assert _listing(tmp_path / "other" / "mnist") == []


def test_only_missing_files_are_fetched_and_the_data_dir_comes_first(fake, serve, tmp_path, monkeypatch):
    arrays, files = fake
    server, base = serve(files)
    folder = tmp_path / "cache" / "mnist"
    folder.mkdir(parents=True)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(files["/mnist/train-labels-idx1-ubyte.gz"])
    data.download("mnist", cache_dir=tmp_path / "cache", base_url=base + "/good", progress=False)
    assert "/good/mnist/train-labels-idx1-ubyte.gz" not in server.RequestHandlerClass.requests
    assert len(server.RequestHandlerClass.requests) == 3
    # a complete set in the data directory is used as it is: no request, nothing cached
    (tmp_path / "dd" / "mnist").mkdir(parents=True)
    for s in _STEMS:
        (tmp_path / "dd" / "mnist" / f"{s}.gz").write_bytes(files[f"/mnist/{s}.gz"])
    monkeypatch.setenv(data.DATA_URL_ENV, _refused_url())
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "dd"))
    ds = data.load("mnist", download=True, cache_dir=tmp_path / "empty")
    np.testing.assert_array_equal(ds.train_labels, arrays["train-labels-idx1-ubyte"])
    assert not (tmp_path / "empty").exists()


def test_messages_say_how_to_get_the_data(tmp_path):
    with pytest.raises(DataError) as e:
        data.load("fashion_mnist", cache_dir=tmp_path)
    msg = str(e.value)
    assert "download=True" in msg and "--download" in msg and str(tmp_path / "fashion_mnist") in msg
    assert f"pass data_dir or set {data.DATA_DIR_ENV}" in msg and "\n" not in msg
    with pytest.raises(DataError, match=r"'smile_faces' not found.*never downloaded.*hromi/SMILEsmileD"):
        data.load("smile_faces", data_dir=tmp_path, download=True)
    with pytest.raises(DataError, match="'genki4k' cannot be downloaded"):
        data.download("genki4k")
    with pytest.raises(InputError, match="timeout"):
        data.download("mnist", cache_dir=tmp_path, timeout=0)


def test_cli_download_fetches_into_an_empty_cache(fake, serve, tmp_path, monkeypatch, capsys):
    _, files = fake
    _, base = serve(files)
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))
    train = [
        "train",
        "--dataset",
        "fashion_mnist",
        "--limit",
        "16",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
    ]
    assert cli.main(train) == 2  # not there yet, and no --download
    assert "--download" in capsys.readouterr().err
    monkeypatch.setenv(data.DATA_URL_ENV, base + "/missing")
    assert cli.main([*train, "--download"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/missing/fashion_mnist/train-images-idx3-ubyte.gz: HTTP 404" in err[0]
    assert _listing(tmp_path / "cache" / "fashion_mnist") == []
    # embed (like demo) fetches before it reads the run; the run is missing, the data now is not
    monkeypatch.setenv(data.DATA_URL_ENV, base + "/good")
    embed = ["embed", "--checkpoint", str(tmp_path / "no-run"), "--dataset", "fashion_mnist", "--out", "e"]
    assert cli.main([*embed, "--download"]) == 2
    assert "no-run" in capsys.readouterr().err
    assert _listing(tmp_path / "cache" / "fashion_mnist") == sorted(f"{s}.gz" for s in _STEMS)
