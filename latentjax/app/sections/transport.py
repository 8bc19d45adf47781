"""Demo-report section: latent interpolation side by side with optimal transport."""

import time

import numpy as np

from latentjax import move, transport, viz
from latentjax.app import report
from latentjax.app.sections._captions import article
from latentjax.app.sections._labels import class_pair, label_name
from latentjax.app.sections._transport_measures import ripple, row_ripple
from latentjax.learn import models


def section(run, *, quick: bool) -> report.Section:
    """The transport section: latent and optimal-transport paths between two test images.

    Pixel, latent (lerp, slerp, geodesic) and OT (barycenter, displacement) paths, and the 4-image
    Wasserstein barycenter square.

    Args:
      run: a ``latentjax.demo.DemoRun``.
      quick: 7-point paths, a 4x4 square and capped iterations (a few seconds on 2 cores)
        instead of 9 points and a 5x5 square.

    Returns:
      A ``report.Section`` whose figures are written under ``run.figures``.
    """
    import jax
    import jax.numpy as jnp

    num = 7 if quick else 9
    side = 4 if quick else 5
    max_steps = 500 if quick else 2000
    labels = np.asarray(run.test_labels)
    _, _, i0, i1 = class_pair(labels)  # the latent section's pair
    x = models.to_float(run.test_images[[i0, i1]])  # (2, h, w, c) in [0, 1]
    gray = np.asarray(x).mean(axis=-1)  # OT needs one channel: transport the luminance
    t = np.linspace(0.0, 1.0, num, dtype=np.float32)
    model = run.model

    def decode(v):
        return models.decode(model, v)

    @jax.jit
    def latent_paths(x):
        z = jax.vmap(lambda im: models.encode(model, im).mean)(x)
        num_steps = 30 if quick else 200
        return move.compare_paths(decode, z[0], z[1], num_points=num, num_steps=num_steps, learning_rate=2e-2)

    report.step("latent paths")
    t0 = time.perf_counter()
    lat = jax.device_get(latent_paths(x))
    latent_s = time.perf_counter() - t0
    report.step("Wasserstein barycenter path and displacement interpolation")
    t0 = time.perf_counter()
    bary = transport.wasserstein_interpolate(gray, transport.path_weights(num), max_steps=max_steps)
    bary_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    disp = transport.displacement_interpolate(gray[0], gray[1], t)
    disp_s = time.perf_counter() - t0
    pixel = (1.0 - t)[:, None, None] * gray[0][None] + t[:, None, None] * gray[1][None]
    rows = {
        "pixel": pixel,
        **{f"latent {k}": np.asarray(p.decoded).mean(axis=-1) for k, p in lat._asdict().items()},
        "Wasserstein": np.asarray(bary.image),
        "displacement": np.asarray(disp.image),
    }
    la, lb = label_name(run.label_names, labels[i0]), label_name(run.label_names, labels[i1])
    fig1 = viz.transport_contrast(
        rows,
        run.figures / "transport_contrast.png",
        title=f"{la} -> {lb}",
        col_labels=[f"{v:.2f}" for v in t],
        axis_labels=("t (0: source, 1: target)", ""),
    )

    corners_idx = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)[:4]]
    corners_idx = (corners_idx + list(range(4)))[:4] if len(corners_idx) < 4 else corners_idx
    corner_names = [label_name(run.label_names, labels[i]) for i in corners_idx]
    corners = np.asarray(models.to_float(run.test_images[corners_idx])).mean(axis=-1)
    report.step(f"{side}x{side} barycenter square")
    t0 = time.perf_counter()
    square = transport.wasserstein_interpolate(corners, transport.square_weights(side), max_steps=max_steps)
    square_s = time.perf_counter() - t0
    fig2 = viz.barycenter_square(
        square.image,
        side,
        run.figures / "transport_square.png",
        title="Wasserstein barycenters of 4 test images (corners: the inputs)",
    )
    com = np.stack(
        [
            np.asarray(jnp.sum(jnp.asarray(h) * jnp.arange(h.shape[1])[None, :]) / jnp.sum(h))
            for h in bary.histogram
        ]
    )
    # The stripes, measured (the caption quotes these rounded values).
    r_in = round(float(np.mean([max(ripple(g, axis=0), ripple(g, axis=1)) for g in gray])), 3)
    r_bary, r_disp = round(row_ripple(rows["Wasserstein"]), 3), round(row_ripple(rows["displacement"]), 3)
    table = {
        "ripple inside the inputs": r_in,
        "ripple inside the Wasserstein frames": r_bary,
        "ripple inside the displacement frames": r_disp,
        "image size": f"{gray.shape[1]}x{gray.shape[2]}",
        "epsilon": round(transport.default_epsilon(gray.shape[1:]), 6),
        "barycenter path seconds": round(bary_s, 2),
        "barycenter max marginal error": float(np.max(np.asarray(bary.error))),
        "barycenter endpoint L1 (t=0)": round(
            float(np.abs(np.asarray(bary.histogram[0]) - gray[0] / gray[0].sum()).sum()), 4
        ),
        "displacement seconds": round(disp_s, 2),
        "latent paths seconds": round(latent_s, 2),
        "square seconds": round(square_s, 2),
        "barycenter column centre of mass, t=0 / 0.5 / 1": " / ".join(
            f"{com[i]:.2f}" for i in (0, num // 2, -1)
        ),
    }
    text = (
        "Latent interpolation walks through the model's code space; optimal transport needs no model and "
        "moves the image's mass across the pixel grid instead (ott-jax). Rows: pixel cross-fade, latent "
        "lerp/slerp/geodesic decoded, the debiased Wasserstein barycenter path (Janati et al. 2020, on "
        "ott's grid geometry) and McCann's displacement interpolation from the transport plan. OT images "
        "are shown each scaled to its maximum."
    )
    return report.Section(
        title="Optimal transport vs latent interpolation",
        text=text,
        figures=[
            report.Figure(
                str(fig1),
                f"Six paths from {article(la)} to {article(lb)} (the latent section's pair), one per row; "
                f"the barycenter path's t=0 frame is L1 {table['barycenter endpoint L1 (t=0)']:.3f} from the "
                "input (0 would be exact; entropic blur makes it larger). " + _stripes(r_in, r_bary, r_disp),
            ),
            report.Figure(
                str(fig2),
                f"{article(f'{side}x{side}').capitalize()} square of Wasserstein barycenters of four test "
                f"images (corners: {', '.join(corner_names)}); each row and column is labelled by the "
                "bilinear weight of the bottom and right corners.",
            ),
        ],
        table=table,
    )


def _stripes(r_in: float, r_bary: float, r_disp: float) -> str:
    """The caption's measured account of the stripes in the OT rows (ripple: `ripple`)."""
    head = (
        f"Inside the shapes the intermediate frames ripple {r_bary:.2f} (Wasserstein) and {r_disp:.2f} "
        f"(displacement) against {r_in:.2f} in the inputs (mean |second difference| over mean intensity)"
    )
    why = []
    if r_bary > 1.5 * r_in:
        why.append(
            "the barycenter's stripes come with the debiased Sinkhorn barycenter at this epsilon (POT's "
            "convolutional_barycenter2d_debiased, same epsilon and cost, gives the same; the plain "
            "barycenter trades them for blur; tests/transport/test_stripes.py)"
        )
    if r_disp > 1.5 * r_in:
        why.append(
            "the displacement frames move each pixel's mass as one point, which leaves gaps between the "
            "moved pixels where the shape grows (a comb or checkerboard)"
        )
    if r_disp <= 1.5 * r_in:  # the mechanism, stated as such: this pair shows no more than the inputs
        why.append(
            "no more than the inputs' own texture, though moving each pixel's mass as one point (the "
            "displacement frames) can leave gaps where the shape grows"
            if not why
            else "the displacement frames no more than the inputs"
        )
    return head + ": " + "; ".join(why) + "."
