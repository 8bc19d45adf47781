"""The figures of `deepsdf_furniture.py`: the t-SNE map of the codes, the path GIFs, reconstructions.

Imported by the script as ``_deepsdf_figures`` (the experiments' folder is on ``sys.path``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from latentjax import move, viz
from latentjax.look import pca, tsne
from latentjax.shapes import deepsdf, furniture, meshes, primitives, render


def embed_codes(key, codes, cfg):
    """2-D map of the codes: t-SNE (latentjax.look.tsne) or, for tiny runs, PCA."""
    codes = np.asarray(codes)
    if cfg["tsne_iter"] > 0:
        return np.asarray(
            tsne.embed(key, codes, perplexity=min(30.0, (len(codes) - 1) / 3), num_steps=cfg["tsne_iter"])
        )
    return np.asarray(pca.transform(pca.fit(codes, num_components=2), codes))


def place_on_map(codes, xy, zs, k=5):
    """Map positions of path codes: inverse-distance average of the k nearest training codes.

    (t-SNE has no out-of-sample transform.)
    """
    d = np.linalg.norm(np.asarray(zs)[:, None] - np.asarray(codes)[None], axis=-1)
    idx = np.argsort(d, axis=1)[:, :k]
    w = 1.0 / (np.take_along_axis(d, idx, 1) + 1e-9)
    return (w[..., None] * xy[idx]).sum(1) / w.sum(1, keepdims=True)


def write_figures(model, key, codes, train_labels, test_shapes, test_labels, rec_codes, rec_meshes, cfg, out):
    """The code map, the path GIFs, the reconstructions strip and a few meshes; their paths."""
    nte = cfg["num_test_per_class"]
    xy = embed_codes(key, codes, cfg)
    cnp = np.asarray(codes)
    ends = []
    for c in range(3):
        m = cnp[train_labels == c]
        ends.append(m[np.argmin(np.linalg.norm(m - m.mean(0), axis=1))])
    ends = jnp.asarray(np.stack(ends))
    render_fn = jax.jit(
        lambda z: render.render(
            lambda x: deepsdf.decode(model, z, x),
            width=cfg["render_size"],
            height=cfg["render_size"],
            step_scale=0.9,
            num_steps=64,
        )[0]
    )
    figures = {}
    for method in ("lerp", "slerp"):
        zs = move.path(ends, num_points=cfg["path_frames"], method=method)
        frames = np.stack([np.asarray(render_fn(z)) for z in zs])
        pxy = place_on_map(cnp, xy, np.asarray(zs))
        figures[f"path_{method}"] = str(
            viz.shape_path_gif(
                frames,
                xy,
                train_labels,
                out / f"path_{method}.gif",
                path_xy=pxy,
                label_names=furniture.CLASSES,
                title=f"shape codes (chair -> table -> sofa, {method})",
            )
        )
    figures["code_map"] = str(
        viz.shape_code_map(
            xy,
            train_labels,
            out / "code_map.png",
            label_names=furniture.CLASSES,
            title="t-SNE of shape codes",
        )
    )
    show = [c * nte + j for c in range(3) for j in range(min(2, nte))]  # two test shapes per class
    render_true = jax.jit(
        lambda s: render.render(
            lambda x: primitives.sdf(s, x), width=cfg["render_size"], height=cfg["render_size"]
        )[0]
    )
    gt_imgs = [np.asarray(render_true(primitives.take(test_shapes, i))) for i in show]
    rec_imgs = [np.asarray(render_fn(rec_codes[i])) for i in show]
    figures["reconstructions"] = str(
        viz.shape_strip(
            np.stack(gt_imgs + rec_imgs),
            out / "reconstructions.png",
            rows=2,
            titles=[f"true {furniture.CLASSES[int(test_labels[i])]}" for i in show]
            + ["reconstructed"] * len(show),
        )
    )
    for i in show[:3]:
        if rec_meshes[i] is not None:
            meshes.write_obj(*rec_meshes[i], out / f"recon_{i}.obj")
            meshes.write_ply(*rec_meshes[i], out / f"recon_{i}.ply")
    return figures
