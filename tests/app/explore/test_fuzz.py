"""Malformed requests to every endpoint of a live explorer: a 4xx with a message, and it keeps serving."""

import http.client
import json
import random
import socket
import urllib.parse

import pytest

POSTS = ("/api/decode", "/api/paths", "/api/edit", "/api/neighbors", "/api/strip")
GETS = ("/", "/explore.js", "/explore.css", "/api/info", "/api/thumb?i=0")

BAD_BODIES = {
    "/api/decode": [
        {"xy": [[0, 0, 0]]}, {"z": [[0, 0]]}, {"xy": []}, {"xy": [[0, 0]] * 257}, {"xy": [[0, "a"]]},
        {"xy": [[True, False]]}, {"xy": [[0, None]]}, {"xy": [[0], [0, 0]]}, {"xy": [[1e300 * 10, 0]]},
        {"xy": [[2e6, 0]]}, {"xy": 3}, {"xy": "0,0"}, {"xy": {"x": 0}}, {}, {"xy": [[0, 0]], "z": [[0] * 4]},
        {"index": 0}, {"xy": [[0, 0]], "extra": 1}, [], "xy", 7, None, {"z": [[10**400, 0, 0, 0]]},
    ],
    "/api/paths": [
        {"xy": [[0, 0]]}, {"xy": [[0, 0]] * 9}, {"xy": [[0, 0], [1, 1]], "num_points": 2},
        {"xy": [[0, 0], [1, 1]], "num_points": 1000}, {"xy": [[0, 0], [1, 1]], "num_points": 4.5},
        {"xy": [[0, 0], [1, 1]], "geodesic_steps": -1}, {"xy": [[0, 0], [1, 1]], "geodesic_steps": True},
        {"z": [[0, 0, 0], [0, 0, 0]]},
    ],
    "/api/edit": [
        {"index": -1}, {"index": 400}, {"index": 10**20}, {"index": 1.0}, {"index": "3"},
        {"index": 0, "edits": {"kind": "class"}}, {"index": 0, "edits": [{"kind": "class", "source": 0}]},
        {"index": 0, "edits": [{"kind": "class", "source": 0, "target": 9, "strength": 1}]},
        {"index": 0, "edits": [{"kind": "factor", "name": "nope", "strength": 1}]},
        {"index": 0, "edits": [{"kind": "factor", "name": "scale", "strength": 1e9}]},
        {"index": 0, "edits": [{"kind": "magic", "strength": 1}]}, {"index": 0, "edits": [1]},
        {"index": 0, "edits": [{"kind": "factor", "name": "scale", "strength": 1}] * 17},
        {"index": 0, "orthogonalize": "yes"}, {"xy": [[0, 0]]}, {"z": [0, 0, 0]},
    ],
    "/api/neighbors": [{"index": 0, "k": 0}, {"index": 0, "k": 65}, {"index": 0, "k": "8"}, {"z": [0] * 5}],
    "/api/strip": [
        {"z": [[0, 0, 0, 0]], "format": "bmp"}, {"z": [[0, 0, 0, 0]], "scale": 0}, {"z": [[0] * 4] * 129},
        {"xy": [[0, 0]]},
    ],
}  # fmt: skip
BAD_RAW = [
    b"",
    b"{",
    b"{'xy': 1}",
    b'{"xy": [[NaN, 0]]}',
    b'{"xy": [[Infinity, 0]]}',
    b"\xff\xfe",
    b"[" * 100000,
]


def _request(base, method, path, body=None, headers=None):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


def _assert_refused(base, method, path, body=None, headers=None, status=400):
    got, ctype, raw = _request(base, method, path, body, headers)
    assert 400 <= got < 500, (path, body if body is None or len(body) < 200 else body[:200], got, raw[:300])
    if status is not None:
        assert got == status, (path, got, raw[:300])
    msg = json.loads(raw)["error"]
    assert ctype == "application/json" and isinstance(msg, str) and msg and "\n" not in msg
    return msg


def _alive(base):
    assert _request(base, "GET", "/api/info")[0] == 200


@pytest.mark.parametrize("path", POSTS)
def test_malformed_json_bodies_get_400(server, path):
    for body in BAD_BODIES[path] + [[], "x", None, {"unknown": 1}]:
        _assert_refused(server, "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    for raw in BAD_RAW:
        msg = _assert_refused(server, "POST", path, raw)
        if b"NaN" in raw or b"Infinity" in raw:
            assert "not a JSON number" in msg
    _alive(server)


def test_wrong_methods_paths_sizes_and_queries(server):
    for path in POSTS:
        _assert_refused(server, "GET", path, status=405)
        _assert_refused(server, "PUT", path, b"{}", status=405)
    for path in GETS:
        _assert_refused(server, "POST", urllib.parse.urlsplit(path).path, b"{}", status=405)
        _assert_refused(server, "DELETE", path, status=405)
    for path in ("/api/nope", "/../etc/passwd", "/page.html", "/api/info/x", "/%00"):
        _assert_refused(server, "GET", path, status=404)
    for q in ("", "i=", "i=-1", "i=abc", "i=400", "i=1&i=2", "i=99999999999999999999", "i=1.5", "i=%00"):
        _assert_refused(server, "GET", "/api/thumb?" + q)
    msg = _assert_refused(server, "POST", "/api/decode", b"{}", {"Content-Length": str(2 << 20)}, status=413)
    assert "more than" in msg
    _alive(server)


def test_a_post_without_content_length_and_a_dropped_connection(server):
    url = urllib.parse.urlsplit(server)
    with socket.create_connection((url.hostname, url.port), timeout=30) as s:
        s.sendall(b"POST /api/decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 411") and b"Content-Length" in reply
    with socket.create_connection((url.hostname, url.port), timeout=30) as s:  # a body that never comes
        s.sendall(b"POST /api/decode HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    _alive(server)


def _random_json(rng, depth=0):
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(10**6), 10**6)
    if kind == 2:
        return rng.choice([0.5, -1e308, 1e-320, 3.0, -0.0, 1e6 + 1])
    if kind == 3:
        return rng.choice(["", "xy", "<script>", "z" * 50])
    if kind in (4, 5):
        return [rng.uniform(-3, 3) for _ in range(rng.choice([0, 1, 2, 3, 4, 5]))]
    if kind in (6, 7):
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["xy", "z", "index", "k", "edits", "num_points", "format", "scale", "strength", "kind", "name"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_random_requests_get_200_or_400(server):
    rng = random.Random(0)
    for _ in range(150):
        path = rng.choice(POSTS)
        body = _random_json(rng)
        if rng.random() < 0.5:
            body = {rng.choice(["xy", "z", "index"]): body}
        got, _, raw = _request(server, "POST", path, json.dumps(body).encode())
        assert got in (200, 400), (path, body, got, raw[:300])
        if got == 400:
            assert json.loads(raw)["error"]
    _alive(server)
