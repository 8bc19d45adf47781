"""The explorer's HTTP server: the standard library's ``ThreadingHTTPServer`` over the `_api` handlers.

Why the standard library and not a framework (Flask, FastAPI, aiohttp): the explorer is a local tool on
loopback with eight JSON endpoints and three static files, so ``http.server`` does all it needs without
a new dependency; a thread per connection keeps the page responsive while a geodesic is computed. What a
framework would add is done here in one place: a body-size limit (413), JSON parsing that refuses
NaN/Infinity (400), 404/405 for unknown paths and methods, and every exception turned into a JSON error
(``{"error": message}``) so that one bad request never stops the server. It binds 127.0.0.1 unless told
otherwise, since it runs models on request and has no authentication.
"""

from __future__ import annotations

import http.server
import json
import sys
import traceback
import urllib.parse
from importlib import resources

from latentjax.app.explore import _api, _session
from latentjax.errors import InputError

MAX_BODY = 1 << 20  # bytes of a request body
STATIC = {"/": ("page.html", "text/html; charset=utf-8"), "/explore.js": ("explore.js", "text/javascript"),
          "/explore.css": ("explore.css", "text/css")}  # fmt: skip
POST = {
    "/api/decode": _api.decode,
    "/api/paths": _api.paths,
    "/api/edit": _api.edit,
    "/api/neighbors": _api.neighbors,
}


def _reject_constant(name: str):
    raise InputError(f"explore.server: the request body holds {name}, which is not a JSON number")


def static_file(name: str) -> bytes:
    """A file of the page (``page.html``, ``explore.js``, ``explore.css``), from the package."""
    return resources.files("latentjax.app.explore").joinpath(name).read_bytes()


def make_handler(session: _session.Session, *, quiet: bool = True) -> type:
    """The request handler class serving ``session``."""
    info_json = json.dumps(_api.info(session), allow_nan=False).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "latentjax-explore"
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes: with Nagle's algorithm the body waits for the
        # client's delayed ACK (~40 ms a request on loopback), so small answers go out at once.
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):
            if not quiet:
                super().log_message(fmt, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client left: nothing to answer
                self.close_connection = True

        def _json(self, status: int, obj) -> None:
            self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

        def _fail(self, status: int, message: str) -> None:
            self._json(status, {"error": message})

        def _body(self) -> tuple[bool, object]:
            """``(True, the parsed JSON)``, or ``(False, None)`` once 411 or 413 is answered."""
            length = self.headers.get("Content-Length")
            if length is None or not length.strip().isdigit():
                self.close_connection = True
                self._fail(411, "explore.server: a POST needs a Content-Length header (a number of bytes)")
                return False, None
            n = int(length)
            if n > MAX_BODY:
                self.close_connection = True  # the body is left unread
                self._fail(413, f"explore.server: the request body has {n} bytes, more than {MAX_BODY}")
                return False, None
            raw = self.rfile.read(n)
            try:
                return True, json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
                raise InputError(f"explore.server: the request body is not valid JSON ({e})") from None

        def _run(self, fn) -> None:
            try:
                fn()
            except InputError as e:
                self._json(400, {"error": str(e).splitlines()[0] if str(e) else "bad request"})
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except Exception as e:  # the server keeps serving whatever a handler does
                traceback.print_exc(file=sys.stderr)
                self._json(500, {"error": f"explore.server: internal error ({type(e).__name__}: {e})"})

        def _get(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path in STATIC:
                name, ctype = STATIC[url.path]
                self._send(200, static_file(name), ctype)
            elif url.path == "/api/info":
                self._send(200, info_json, "application/json")
            elif url.path == "/api/thumb":
                query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
                self._send(200, _api.thumb(session, query), "image/png")
            elif url.path in POST or url.path == "/api/strip":
                self._fail(405, f"explore.server: {url.path} takes POST, not {self.command}")
            else:
                self._fail(404, f"explore.server: no such path {url.path!r}")

        def _post(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path not in POST and path != "/api/strip":
                if path in STATIC or path in ("/api/info", "/api/thumb"):
                    return self._fail(405, f"explore.server: {path} takes GET, not POST")
                return self._fail(404, f"explore.server: no such path {path!r}")
            ok, payload = self._body()
            if not ok:
                return None
            if path == "/api/strip":
                ctype, body = _api.strip(session, payload)
                self._send(200, body, ctype)
            else:
                self._json(200, POST[path](session, payload))

        def do_GET(self):  # noqa: N802 (http.server's names)
            self._run(self._get)

        def do_HEAD(self):  # noqa: N802
            self._run(self._get)

        def do_POST(self):  # noqa: N802
            self._run(self._post)

        def _not_allowed(self):
            self._run(lambda: self._fail(405, f"explore.server: {self.command} is not allowed"))

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    return Handler


def make_server(session: _session.Session, *, host: str = "127.0.0.1", port: int = 8765, quiet: bool = True):
    """A ``ThreadingHTTPServer`` serving ``session`` (not started: call ``serve_forever``).

    Args:
      session: the loaded run.
      host: the address to bind (127.0.0.1: this machine only).
      port: the port (0: any free one; read it from ``server.server_address``).
      quiet: no access log on stderr.

    Returns:
      The server.
    """
    server = http.server.ThreadingHTTPServer((host, port), make_handler(session, quiet=quiet))
    server.daemon_threads = True
    return server
