"""The explorer's request handlers: parsed JSON (or a query) in, JSON-able dicts (or image bytes) out.

Pure functions of a `Session` and the request, so tests call them without a server. Every input is
validated here and a bad one raises `InputError` with a one-line message (the server answers 400).
Images travel as 8-bit PNG data URLs, the values the page shows.
"""

from __future__ import annotations

import base64
import functools
import io
import math

import jax
import numpy as np
from PIL import Image

from latentjax import move
from latentjax.app.explore import _session
from latentjax.errors import InputError
from latentjax.learn import models

MAX_PATH_POINTS = 8  # waypoints of one path request
MAX_SEGMENT_POINTS = 33
MAX_GEODESIC_STEPS = 1000
MAX_EDITS = 16
MAX_NEIGHBORS = 64
MAX_STRIP = 128
MAX_ABS = 1e6  # latents and map positions beyond this are refused (float32 decodes overflow)


def _where(fn: str) -> str:
    return f"explore.api.{fn}"


def _numbers(x, name: str, where: str, shape: tuple) -> np.ndarray:
    """``x`` (nested JSON lists of numbers) as float64 of ``shape`` (None: any length), finite and bounded."""
    if isinstance(x, (str, bytes, dict)) or x is None:
        raise InputError(f"{where}: {name} must be a list of numbers, got {type(x).__name__}")
    try:
        a = np.asarray(x)
    except ValueError:
        raise InputError(f"{where}: {name} must be a regular (non-ragged) list of numbers") from None
    if a.dtype.kind not in "iuf":
        raise InputError(f"{where}: {name} must hold numbers only, got {_kind(a)}")
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise InputError(f"{where}: {name} must have shape {want}, got {a.shape}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)) or np.any(np.abs(a) > MAX_ABS):
        raise InputError(f"{where}: {name} must be finite numbers within +-{MAX_ABS:g}")
    return a


def _kind(a: np.ndarray) -> str:
    return {"b": "booleans", "U": "strings", "O": "mixed values"}.get(a.dtype.kind, str(a.dtype))


def _int(x, name: str, where: str, *, lo: int, hi: int, default: int | None = None) -> int:
    if x is None and default is not None:
        return default
    if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
        raise InputError(f"{where}: {name} must be an integer in [{lo}, {hi}], got {x!r}")
    return x


def _float(x, name: str, where: str, *, bound: float = MAX_ABS) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or abs(x) > bound:
        raise InputError(f"{where}: {name} must be a finite number within +-{bound:g}, got {x!r}")
    return float(x)


def _object(payload, where: str, allowed: set[str]) -> dict:
    if not isinstance(payload, dict):
        raise InputError(f"{where}: the request body must be a JSON object, got {type(payload).__name__}")
    extra = sorted(set(payload) - allowed)
    if extra:
        raise InputError(
            f"{where}: unknown field {extra[0]!r}; expected some of {', '.join(sorted(allowed))}"
        )
    return payload


def _latents(session: _session.Session, payload: dict, where: str, *, lo: int, hi: int, single: bool = False):
    """The request's latents from exactly one of ``xy`` (map positions), ``z`` (latents) or ``index``."""
    given = [k for k in ("xy", "z", "index") if k in payload]
    if len(given) != 1 or (given[0] == "index" and not single):
        options = "xy, z or index" if single else "xy or z"
        raise InputError(f"{where}: give exactly one of {options}, got {', '.join(given) or 'none'}")
    key = given[0]
    if key == "index":
        i = _int(payload["index"], "index", where, lo=0, hi=len(session.latents) - 1)
        return session.latents[i][None].astype(np.float32)
    width = 2 if key == "xy" else session.config.latent_dim
    shape = (width,) if single else (None, width)
    a = _numbers(payload[key], key, where, shape)
    a = a[None] if single else a
    if not lo <= len(a) <= hi:
        raise InputError(f"{where}: {key} must hold between {lo} and {hi} points, got {len(a)}")
    return session.inverse(a) if key == "xy" else a.astype(np.float32)


def data_url(image) -> str:
    """One image as an 8-bit PNG ``data:`` URL."""
    return "data:image/png;base64," + base64.b64encode(_session.png(image)).decode("ascii")


def info(session: _session.Session) -> dict:
    """``GET /api/info``: the map, its labels and everything the page needs that does not change."""
    cfg = session.config
    lo, hi = session.latents.min(axis=0), session.latents.max(axis=0)
    pad = 0.25 * (hi - lo) + 1e-3
    return {
        "dataset": session.dataset,
        "method": session.method,
        "inverse": session.inverse_name,
        "kind": cfg.kind,
        "arch": cfg.arch,
        "num_points": int(len(session.points)),
        "points": session.points.astype(np.float64).tolist(),  # exact: a point sent back is a hit
        "labels": session.labels.tolist(),
        "label_names": list(session.label_names),
        "latent_dim": int(cfg.latent_dim),
        "image_shape": list(cfg.image_shape),
        "latent_range": np.stack([lo - pad, hi + pad], axis=1).tolist(),
        "class_means": _session.class_means(session),
        "edits": _session.edit_vectors(session),
        "factors": {k: np.asarray(v, np.float64).tolist() for k, v in session.factors.items()},
        "limits": {"decode": _session.MAX_BATCH, "path_points": MAX_PATH_POINTS, "strip": MAX_STRIP},
    }


def thumb(session: _session.Session, query: dict[str, list[str]]) -> bytes:
    """``GET /api/thumb?i=N``: test image ``N`` as PNG bytes."""
    where = _where("thumb")
    values = query.get("i", [])
    if len(values) != 1 or not values[0].isdigit() or len(values[0]) > 9:
        raise InputError(f"{where}: i must be one non-negative integer, got {values!r}")
    i = int(values[0])
    if i >= len(session.images):
        raise InputError(f"{where}: i={i} is out of range [0, {len(session.images) - 1}]")
    return _session.png(session.images[i])


def decode(session: _session.Session, payload) -> dict:
    """``POST /api/decode`` ``{"xy": [[x, y], ...]}`` or ``{"z": [[...], ...]}`` -> latents, PNG data URLs."""
    where = _where("decode")
    payload = _object(payload, where, {"xy", "z"})
    z = _latents(session, payload, where, lo=1, hi=_session.MAX_BATCH)
    images = session.decode(z)
    return {"z": z.tolist(), "images": [data_url(x) for x in images]}


@functools.partial(jax.jit, static_argnames=("num_points", "num_steps", "unroll"))
def _geodesic(model, z0, z1, *, num_points: int, num_steps: int, unroll: int):
    decode = functools.partial(models.decode, model)
    return move.geodesic(decode, z0, z1, num_points=num_points, num_steps=num_steps, unroll=unroll).points


@jax.jit
def _diagnostics(model, zs):
    return move.path_diagnostics(functools.partial(models.decode, model), zs)


def path_latents(session: _session.Session, waypoints, *, num_points: int, geodesic_steps: int) -> dict:
    """The lerp, slerp and geodesic paths through ``(k, d)`` waypoints, ``num_points`` per segment.

    Each path has ``(k - 1) * (num_points - 1) + 1`` latents and passes through every waypoint; for two
    waypoints they are `move.compare_paths`'s (the geodesic: `move.geodesic` on each segment).
    """
    k = len(waypoints)
    total = (k - 1) * (num_points - 1) + 1
    # convolutions in a rolled scan run ~30x slower on CPU (jax-ml/jax#12868): partly unrolled instead
    unroll = 8 if session.config.arch == "conv" else 1
    ends = np.asarray(waypoints, np.float32)
    out = {m: np.asarray(move.path(ends, num_points=total, method=m)) for m in ("lerp", "slerp")}
    if geodesic_steps == 0:
        out["geodesic"] = out["lerp"]
    else:
        parts = [
            np.asarray(
                _geodesic(
                    session.model,
                    ends[i],
                    ends[i + 1],
                    num_points=num_points,
                    num_steps=geodesic_steps,
                    unroll=unroll,
                )
            )
            for i in range(k - 1)
        ]
        out["geodesic"] = np.concatenate([parts[0]] + [p[1:] for p in parts[1:]])
    return out


def paths(session: _session.Session, payload) -> dict:
    """``POST /api/paths``: lerp, slerp and geodesic strips through 2+ points and `move.path_diagnostics`."""
    where = _where("paths")
    payload = _object(payload, where, {"xy", "z", "num_points", "geodesic_steps"})
    waypoints = _latents(session, payload, where, lo=2, hi=MAX_PATH_POINTS)
    n = _int(payload.get("num_points"), "num_points", where, lo=3, hi=MAX_SEGMENT_POINTS, default=9)
    steps = _int(
        payload.get("geodesic_steps"), "geodesic_steps", where, lo=0, hi=MAX_GEODESIC_STEPS, default=200
    )
    zs = path_latents(session, waypoints, num_points=n, geodesic_steps=steps)
    out = {"waypoints": waypoints.tolist(), "num_points": n}
    for name, z in zs.items():
        d = _diagnostics(session.model, z)
        out[name] = {
            "z": z.tolist(),
            "images": [data_url(x) for x in session.decode(z)],
            "diagnostics": {k: float(v) for k, v in d._asdict().items()},
        }
    return out


def _edit_vector(session: _session.Session, e, i: int, vectors: dict, where: str) -> tuple[np.ndarray, float]:
    if not isinstance(e, dict):
        raise InputError(f"{where}: edits[{i}] must be an object, got {type(e).__name__}")
    kind = e.get("kind")
    strength = _float(e.get("strength"), f"edits[{i}].strength", where, bound=1e3)
    if kind == "class":
        _object(e, where, {"kind", "source", "target", "strength"})
        c = len(session.label_names) - 1
        s = _int(e.get("source"), f"edits[{i}].source", where, lo=0, hi=c)
        t = _int(e.get("target"), f"edits[{i}].target", where, lo=0, hi=c)
        for name, cls in (("source", s), ("target", t)):
            if not np.any(session.labels == cls):
                raise InputError(f"{where}: edits[{i}].{name}: class {cls} has no example on the map")
        return np.asarray(move.class_vector(session.latents, session.labels, source=s, target=t)), strength
    if kind == "factor":
        _object(e, where, {"kind", "name", "strength"})
        name = e.get("name")
        if not isinstance(name, str) or name not in vectors:
            raise InputError(f"{where}: edits[{i}].name must be one of {sorted(vectors)}, got {name!r}")
        return np.asarray(vectors[name]["vector"], np.float32), strength
    raise InputError(f"{where}: edits[{i}].kind must be 'class' or 'factor', got {kind!r}")


def edit(session: _session.Session, payload) -> dict:
    """``POST /api/edit``: a point moved along class vectors and factor/attribute vectors, chained.

    ``{"z"|"xy"|"index": ..., "edits": [{"kind": "class", "source": a, "target": b, "strength": s},
    {"kind": "factor", "name": "scale", "strength": s}, ...], "orthogonalize": false}`` ->
    ``{"base": [latent before], "z": [edited latent], "images": [its PNG]}`` (`move.chain` of the vectors).
    """
    where = _where("edit")
    payload = _object(payload, where, {"xy", "z", "index", "edits", "orthogonalize"})
    z = base = _latents(session, payload, where, lo=1, hi=1, single=True)[0]
    edits = payload.get("edits", [])
    if not isinstance(edits, list) or len(edits) > MAX_EDITS:
        raise InputError(f"{where}: edits must be a list of at most {MAX_EDITS} edits")
    ortho = payload.get("orthogonalize", False)
    if not isinstance(ortho, bool):
        raise InputError(f"{where}: orthogonalize must be true or false, got {ortho!r}")
    if edits:
        vectors = (
            _session.edit_vectors(session)
            if any(e.get("kind") == "factor" for e in edits if isinstance(e, dict))
            else {}
        )
        pairs = [_edit_vector(session, e, i, vectors, where) for i, e in enumerate(edits)]
        vs = np.stack([p[0] for p in pairs]).astype(np.float32)
        ss = np.asarray([p[1] for p in pairs], np.float32)
        z = np.asarray(move.chain(z, vs, ss, orthogonalize=ortho), np.float32)
    return {"base": [base.tolist()], "z": [z.tolist()], "images": [data_url(session.decode(z[None])[0])]}


def neighbors(session: _session.Session, payload) -> dict:
    """``POST /api/neighbors`` ``{"z"|"xy"|"index": ..., "k": 8}``: the nearest test latents (Euclidean)."""
    where = _where("neighbors")
    payload = _object(payload, where, {"xy", "z", "index", "k"})
    z = _latents(session, payload, where, lo=1, hi=1, single=True)[0]
    k = _int(payload.get("k"), "k", where, lo=1, hi=min(MAX_NEIGHBORS, len(session.latents)), default=8)
    d = np.sqrt(np.sum((session.latents.astype(np.float64) - z) ** 2, axis=1))
    idx = np.argsort(d, kind="stable")[:k]
    return {
        "indices": idx.tolist(),
        "distances": d[idx].tolist(),
        "labels": session.labels[idx].tolist(),
        "points": session.points[idx].astype(np.float64).tolist(),
    }


def strip(session: _session.Session, payload) -> tuple[str, bytes]:
    """``POST /api/strip`` ``{"z": [[...], ...], "format": "png"|"gif", "scale": 4}``: a strip to download."""
    where = _where("strip")
    payload = _object(payload, where, {"z", "format", "scale"})
    z = _latents(session, payload, where, lo=1, hi=MAX_STRIP)
    fmt = payload.get("format", "png")
    if fmt not in ("png", "gif"):
        raise InputError(f"{where}: format must be 'png' or 'gif', got {fmt!r}")
    scale = _int(payload.get("scale"), "scale", where, lo=1, hi=8, default=4)
    frames = _session.to_uint8(session.decode(z))
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    frames = frames[..., 0] if frames.shape[-1] == 1 else frames
    buf = io.BytesIO()
    if fmt == "png":
        Image.fromarray(np.concatenate(list(frames), axis=1)).save(buf, format="PNG")
        return "image/png", buf.getvalue()
    pics = [Image.fromarray(f) for f in frames]
    pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:], duration=120, loop=0)
    return "image/gif", buf.getvalue()
