"""A procedural generator of furniture: chairs, tables and sofas with exact SDFs.

Each shape is a union of boxes, rounded boxes and cylinders (a ``primitives.Shape``).

Frame: y is up; every shape is centred and scaled so that max |coord| = 0.9 (inside [-1, 1]^3).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from latentjax.errors import InputError
from latentjax.shapes.primitives import BOX, CYLINDER, MAX_PARTS, ROUNDED_BOX, Shape

CLASSES = ("chair", "table", "sofa")


def _parts(rng, label):
    """Part list ``[(kind, center, size, radius)]`` of one random chair, table or sofa (metres)."""
    u = rng.uniform
    parts = []
    if label == 0:  # chair
        w, d = u(0.40, 0.55), u(0.38, 0.52)
        seat_h, seat_t = u(0.40, 0.50), u(0.03, 0.08)
        back_h = u(0.30, 0.55)
        rounded = u() < 0.5
        parts.append(
            (
                ROUNDED_BOX if rounded else BOX,
                (0, seat_h - seat_t / 2, 0),
                (w / 2, seat_t / 2, d / 2),
                min(0.02, seat_t / 2.5) if rounded else 0.0,
            )
        )
        bt = u(0.025, 0.07)
        tilt_z = -d / 2 + bt / 2
        parts.append((BOX, (0, seat_h + back_h / 2, tilt_z), (w / 2, back_h / 2, bt / 2), 0.0))
        leg_h = seat_h - seat_t
        if u() < 0.2:  # swivel chair: pedestal and base disc
            parts.append((CYLINDER, (0, leg_h / 2 + 0.02, 0), (u(0.03, 0.05), leg_h / 2 - 0.02, 0), 0.0))
            parts.append((CYLINDER, (0, 0.02, 0), (u(0.2, 0.28), 0.02, 0), 0.0))
        else:
            r = u(0.015, 0.035)
            cyl = u() < 0.5
            for sx in (-1, 1):
                for sz in (-1, 1):
                    c = (sx * (w / 2 - r), leg_h / 2, sz * (d / 2 - r))
                    parts.append(
                        (CYLINDER, c, (r, leg_h / 2, 0), 0.0) if cyl else (BOX, c, (r, leg_h / 2, r), 0.0)
                    )
        if u() < 0.4:  # arms: a rest and a support on each side
            ah, at = u(0.18, 0.26), u(0.025, 0.05)
            for sx in (-1, 1):
                x = sx * (w / 2 - at / 2)
                parts.append((BOX, (x, seat_h + ah, 0), (at / 2, 0.02, d / 2), 0.0))
                parts.append((BOX, (x, seat_h + ah / 2, d / 2 - at), (at / 2, ah / 2, at / 2), 0.0))
    elif label == 1:  # table
        w, d = u(0.7, 1.6), u(0.6, 1.0)
        h, top_t = u(0.55, 0.8), u(0.03, 0.08)
        round_top = u() < 0.3
        if round_top:
            rad = u(0.4, 0.7)
            parts.append((CYLINDER, (0, h - top_t / 2, 0), (rad, top_t / 2, 0), 0.0))
            w = d = rad * 1.4
        else:
            rounded = u() < 0.5
            parts.append(
                (
                    ROUNDED_BOX if rounded else BOX,
                    (0, h - top_t / 2, 0),
                    (w / 2, top_t / 2, d / 2),
                    top_t / 2.5 if rounded else 0.0,
                )
            )
        leg_h = h - top_t
        if round_top or u() < 0.2:  # pedestal table
            parts.append((CYLINDER, (0, leg_h / 2, 0), (u(0.04, 0.09), leg_h / 2, 0), 0.0))
            parts.append((CYLINDER, (0, 0.02, 0), (u(0.2, 0.35), 0.02, 0), 0.0))
        else:
            r = u(0.025, 0.05)
            inset = u(0.0, 0.08)
            cyl = u() < 0.5
            for sx in (-1, 1):
                for sz in (-1, 1):
                    c = (sx * (w / 2 - r - inset), leg_h / 2, sz * (d / 2 - r - inset))
                    parts.append(
                        (CYLINDER, c, (r, leg_h / 2, 0), 0.0) if cyl else (BOX, c, (r, leg_h / 2, r), 0.0)
                    )
            if u() < 0.4:  # lower shelf
                parts.append(
                    (BOX, (0, leg_h * u(0.2, 0.35), 0), (w / 2 - r - inset, 0.015, d / 2 - r - inset), 0.0)
                )
    else:  # sofa
        w, d = u(1.4, 2.2), u(0.75, 1.0)
        leg = u(0.0, 0.12)
        base_h = u(0.2, 0.3)
        rr = u(0.02, 0.06)
        parts.append((ROUNDED_BOX, (0, leg + base_h / 2, 0), (w / 2, base_h / 2, d / 2), rr))
        back_h, back_t = u(0.35, 0.55), u(0.15, 0.25)
        parts.append(
            (
                ROUNDED_BOX,
                (0, leg + base_h + back_h / 2 - 0.05, -d / 2 + back_t / 2),
                (w / 2, back_h / 2 + 0.05, back_t / 2),
                rr,
            )
        )
        arm_w, arm_h = u(0.12, 0.25), u(0.15, 0.3)
        for sx in (-1, 1):
            parts.append(
                (
                    ROUNDED_BOX,
                    (sx * (w / 2 - arm_w / 2), leg + base_h + arm_h / 2 - 0.05, 0),
                    (arm_w / 2, arm_h / 2 + 0.05, d / 2),
                    rr,
                )
            )
        cush = int(rng.integers(0, 4))  # seat cushions
        inner = w - 2 * arm_w
        for i in range(cush):
            cx = -inner / 2 + inner * (i + 0.5) / cush
            parts.append(
                (
                    ROUNDED_BOX,
                    (cx, leg + base_h + 0.04, back_t / 2),
                    (inner / cush / 2 - 0.01, 0.05, (d - back_t) / 2),
                    0.04,
                )
            )
        if leg > 0.02:
            r = u(0.02, 0.035)
            for sx in (-1, 1):
                for sz in (-1, 1):
                    parts.append(
                        (CYLINDER, (sx * (w / 2 - 0.08), leg / 2, sz * (d / 2 - 0.08)), (r, leg / 2, 0), 0.0)
                    )
    return parts[:MAX_PARTS]


def _to_shape(parts, extent=0.9):
    """Fixed-size arrays of one shape, centred and scaled so that max |coord| = ``extent``."""
    p = len(parts)
    kind = np.zeros(MAX_PARTS, np.int32)
    center = np.zeros((MAX_PARTS, 3), np.float32)
    size = np.full((MAX_PARTS, 3), 1e-3, np.float32)
    radius = np.zeros(MAX_PARTS, np.float32)
    mask = np.zeros(MAX_PARTS, bool)
    for i, (k, c, s, r) in enumerate(parts):
        kind[i], center[i], size[i], radius[i], mask[i] = k, c, s, r, True
    # Bounding box of the parts: a cylinder extends by its radius in x and z.
    ext = np.where((kind == CYLINDER)[:, None], size[:, [0, 1, 0]], size)[:p]
    lo, hi = (center[:p] - ext).min(0), (center[:p] + ext).max(0)
    mid = (lo + hi) / 2
    scale = extent / np.max(hi - mid)
    # Scaling a union of exact SDFs by its parameters keeps every part exact.
    center[:p] = (center[:p] - mid) * scale
    size[:p] *= scale
    radius[:p] *= scale
    return kind, center, size, radius, mask


def generate(
    *, num_per_class: int, seed: int = 0, classes: Sequence[str] = CLASSES
) -> tuple[Shape, np.ndarray]:
    """A reproducible set of procedural chairs, tables and sofas (generated on the host by NumPy).

    Args:
        num_per_class: shapes per class.
        seed: seeds the NumPy generator; the same seed gives the same shapes.
        classes: subset of ``CLASSES`` to generate.

    Returns:
        ``(shapes, labels)``: a batched ``Shape`` (leading axis = shape) and int labels
        (index into ``CLASSES``), ordered class by class.

    Raises:
        InputError: for an unknown class, ``num_per_class < 1`` or a negative seed.

    Examples:
        >>> shapes, labels = generate(num_per_class=4, seed=0)
        >>> shapes.center.shape, labels.tolist()[:5]
        ((12, 12, 3), [0, 0, 0, 0, 1])
    """
    unknown = set(classes) - set(CLASSES)
    if unknown:
        raise InputError(f"furniture.generate: unknown classes {sorted(unknown)}; choose from {CLASSES}")
    if num_per_class < 1:
        raise InputError(f"furniture.generate: num_per_class must be >= 1, got {num_per_class}")
    if int(seed) != seed or seed < 0:
        raise InputError(f"furniture.generate: seed must be a non-negative int, got {seed!r}")
    # Entropy (0, seed) is the key data of jax.random.key(seed), which generate took before it took a
    # seed: the shapes of every seed stayed the same.
    rng = np.random.default_rng([0, int(seed)])
    rows, labels = [], []
    for name in classes:
        label = CLASSES.index(name)
        for _ in range(num_per_class):
            rows.append(_to_shape(_parts(rng, label)))
            labels.append(label)
    arrays = [jnp.asarray(np.stack(a)) for a in zip(*rows)]
    return Shape(*arrays), np.asarray(labels)
