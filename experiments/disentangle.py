"""VAE, beta-VAE, beta-TCVAE and FactorVAE on dSprites-faithful data, scored by six disentanglement metrics.

The data are `data.DSprites` (the 737,280 images of dSprites' factor grid, generated); the models
the conv VAE of the disentanglement literature (`models.burgess_config`: 64x64, 10 latents,
Bernoulli pixels), trained with Adam at batch 64 as disentanglement_lib, with one objective each:
the ELBO (VAE), the ELBO with beta = 4 (beta-VAE, Higgins et al. 2017), beta-TCVAE (TC weight 6,
minibatch-weighted sampling, Chen et al. 2018) and FactorVAE (gamma 35, Kim & Mnih 2018), each for
``--seeds`` seeds (as one `population.fit` per model with ``--population``, the default off CPU).
Every model is scored by `look.disentanglement` (MIG, FactorVAE score, beta-VAE score, SAP, DCI,
modularity/explicitness) on draws from the whole grid (the same draws for every model), and the
table (`table.md`, `result.json`) sets MIG and the FactorVAE score beside the published values;
`traversals_<model>.png` decodes each latent of seed 0 (rows sorted by their KL) around one image.

Command (accelerator; the papers' 300k steps at batch 64, disentanglement_lib's 10,000/5,000 points):
    python experiments/disentangle.py --steps 300000 --seeds 5 --out runs/disentangle
Expected result (InfoGAN-CR Table 1, best reported): MIG 0.10 (VAE) < 0.15 (FactorVAE; 0.43 in
InfoGAN-CR's re-run at gamma 40) < 0.21 (beta-VAE) < 0.45 (beta-TCVAE); FactorVAE score 0.62-0.63
for all but FactorVAE (0.82). Locatello et al. 2019: wide seed-to-seed spread (violin plots).
Device: a GPU (the models train as populations there).
CPU (reduced scale: 5,000 steps, 82 minutes on 2 cores; the README's table):
    python experiments/disentangle.py --steps 5000 --seeds 2 --learning-rate 1e-3 --vote-points 1000 \
        --out experiments/results/disentangle
`--quick`: a small MLP (and discriminator) on 64 images, 2 steps, tiny metric draws (format check only).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import pathlib
import sys
import time

import jax
import numpy as np
from PIL import Image

from latentjax import data, move, viz
from latentjax.learn import models, objectives, population, state, train
from latentjax.look import disentanglement as dis

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # experiments/_common.py
import _common
import _disentangle_table as table


def objective_of(name: str, args: argparse.Namespace) -> tuple[objectives.Objective, float]:
    """The objective of a model and its KL weight (a population's ``betas``)."""
    return {
        "VAE": (objectives.Objective("elbo"), 1.0),
        "beta-VAE": (objectives.Objective("elbo"), args.beta),
        "beta-TCVAE": (objectives.Objective("beta_tcvae", tc_weight=args.tc_weight), 1.0),
        "FactorVAE": (
            objectives.Objective(
                "factor_vae", gamma=args.gamma, disc_hidden=args.disc_hidden, disc_depth=args.disc_depth
            ),
            1.0,
        ),
    }[name]


MODELS = ("VAE", "beta-VAE", "beta-TCVAE", "FactorVAE")


def parse_args(argv=None) -> argparse.Namespace:
    p = _common.parser(__doc__, name="disentangle", data_sets=None)
    p.add_argument("--data-dir", default=None, help="unused: the dSprites-faithful images are generated")
    p.add_argument("--steps", type=int, default=300_000, help="training steps per model (papers: 300,000)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per model (seed, seed+1, ...)")
    p.add_argument("--num-images", type=int, default=None, help="a random subset of the grid to train on")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-4, help="Adam's (disentanglement_lib: 1e-4)")
    p.add_argument("--beta", type=float, default=4.0, help="beta-VAE's KL weight")
    p.add_argument("--tc-weight", type=float, default=6.0, help="beta-TCVAE's TC weight")
    p.add_argument("--gamma", type=float, default=35.0, help="FactorVAE's TC weight")
    p.add_argument("--disc-hidden", type=int, default=1000, help="FactorVAE discriminator width (1000)")
    p.add_argument("--disc-depth", type=int, default=6, help="its hidden layers (6, as the paper)")
    p.add_argument(
        "--eval-points", type=int, default=10_000, help="MIG/SAP/DCI/modularity points (test: half)"
    )
    p.add_argument(
        "--vote-points", type=int, default=10_000, help="beta-VAE/FactorVAE score points (eval: half)"
    )
    p.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS)
    )
    p.add_argument("--metrics", default=",".join(table.METRICS), help="comma-separated subset of the metrics")
    p.add_argument("--population", choices=("auto", "on", "off"), default="auto", help="auto: on off CPU")
    p.add_argument("--save-codes", action="store_true", help="write OUT/codes.npz (seed 0's MIG draw)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.seeds, args.num_images = 2, min(args.seeds, 2), 256
        args.eval_points, args.vote_points, args.batch_size = 400, 8, 32
        args.disc_hidden, args.disc_depth = 64, 2
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    for flag, given, known in (("--models", args.models, MODELS), ("--metrics", args.metrics, table.METRICS)):
        if set(given) - set(known) or not given:
            p.error(f"{flag}: unknown {sorted(set(given) - set(known))}; choose from {known}")
    return args


def config(args: argparse.Namespace) -> models.Config:
    """The literature's conv VAE, or (``--quick``) a small MLP on the same 64x64 images."""
    if args.quick:
        return models.Config(image_shape=(64, 64, 1), latent_dim=10, hidden=32, activation="relu")
    return models.burgess_config()


def training_images(ds: data.DSprites, args: argparse.Namespace) -> tuple[np.ndarray, int]:
    """``(images, epochs)``: a seeded random subset of the grid and the epochs that give ``--steps``.

    With ``steps * batch_size`` images or more, one epoch over the first ``steps * batch_size``
    (every step sees new images, as the papers' sampling with replacement nearly does); with fewer,
    whole epochs (the steps rounded up to them).
    """
    n = len(ds) if args.num_images is None else min(args.num_images, len(ds))
    want = args.steps * args.batch_size
    order = np.random.default_rng(args.seed).permutation(len(ds))[: min(n, want)]
    epochs = 1 if n >= want else math.ceil(args.steps / (n // args.batch_size))
    return ds.images(np.sort(order)), epochs


def metrics(
    key: jax.Array,
    ds,
    represent,
    *,
    eval_points: int,
    vote_points: int,
    batch_size: int = 64,
    which: tuple[str, ...] = table.METRICS,
):
    """The metrics ``which`` of ``represent`` (images -> codes) on ``ds``, as `look.disentanglement.scores`.

    ``eval_points`` training and ``eval_points // 2`` test points for MIG, SAP, DCI and
    modularity/explicitness (one draw); ``vote_points`` and ``vote_points // 2`` batches of
    ``batch_size`` images for the beta-VAE and FactorVAE scores (whose variances use ``eval_points``
    images). Returns ``(scores, codes, factors)``: the MIG draw's codes and factors beside the scores.
    """
    k_tr, k_te, k_beta, k_factor = jax.random.split(key, 4)
    f_tr = np.asarray(ds.sample_factors(k_tr, eval_points))
    f_te = np.asarray(ds.sample_factors(k_te, max(eval_points // 2, 1)))

    def codes_of(f):
        return np.asarray(represent(ds.sample_observations_from_factors(k_tr, f)), np.float64)

    c_tr = _common.batched(codes_of, f_tr, batch_size=2048)
    c_te = _common.batched(codes_of, f_te, batch_size=2048)
    sizes = dict(batch_size=batch_size, num_train=vote_points, num_eval=max(vote_points // 2, 1))
    scores = {}
    if "mig" in which:
        scores["mig"] = dis.mig(c_tr, f_tr).score
    if "factor_vae" in which:
        fv = dis.factor_vae_score(k_factor, ds, represent, num_variance_estimate=eval_points, **sizes)
        scores["factor_vae"] = fv.eval_accuracy
    if "beta_vae" in which:
        scores["beta_vae"] = dis.beta_vae_score(k_beta, ds, represent, **sizes).eval_accuracy
    if "sap" in which:
        scores["sap"] = dis.sap(c_tr, f_tr, c_te, f_te).score
    if {"dci_disentanglement", "dci_completeness", "dci_informativeness"} & set(which):
        d = dis.dci(c_tr, f_tr, c_te, f_te)
        scores |= {
            "dci_disentanglement": d.disentanglement,
            "dci_completeness": d.completeness,
            "dci_informativeness": d.informativeness_test,
        }
    if {"modularity", "explicitness"} & set(which):
        me = dis.modularity_explicitness(c_tr, f_tr, c_te, f_te)
        scores |= {"modularity": me.modularity, "explicitness": me.explicitness_test}
    return {k: float(v) for k, v in scores.items() if k in which}, c_tr, f_tr


def train_model(name: str, cfg: models.Config, images: np.ndarray, epochs: int, args, use_population: bool):
    """Every seed of one model: ``(list of models, seconds, final losses)``."""
    spec, beta = objective_of(name, args)
    seeds = [args.seed + i for i in range(args.seeds)]
    common = dict(
        epochs=epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        objective=spec,
        checkpoint_every=max(1, (epochs * (len(images) // args.batch_size)) // 10),
    )
    t0 = time.perf_counter()
    if use_population:
        res = population.fit(
            [jax.random.key(s) for s in seeds], cfg, images, betas=beta, seeds=seeds, **common
        )
        members = [state.take(res.model, k) for k in range(len(seeds))]
        losses = [[float(v) for v in h["losses"]] for h in res.history]
    else:
        members, losses = [], []
        for s in seeds:
            res = train.fit(jax.random.key(s), cfg, images, beta=beta, **common)
            members.append(res.model)
            losses.append([float(h["loss"]) for h in res.history])
    return members, time.perf_counter() - t0, losses


def traversal_figure(model, name: str, ds: data.DSprites, path: pathlib.Path, *, key: jax.Array):
    """Each latent of ``model`` traversed over [-2, 2] around one image, rows sorted by mean KL."""
    f, x = ds.sample(key, 512)
    q = jax.vmap(lambda xi: models.encode(model, xi))(models.to_float(x))
    mean, log_var = np.asarray(q.mean), np.asarray(q.log_var)
    kl = np.mean(0.5 * (mean**2 + np.exp(log_var) - 1.0 - log_var), axis=0)  # (d,) nats per latent
    rows = np.argsort(-kl)
    values = np.linspace(-2.0, 2.0, 9)
    z0 = mean[0]
    decode = jax.jit(jax.vmap(lambda z: models.decode(model, z)))
    grid = np.stack([np.asarray(decode(move.traverse(z0, int(d), values))) for d in rows])
    viz.traversal_grid(
        grid,
        values,
        path,
        row_labels=[f"z{d} KL {kl[d]:.2f}" for d in rows],
        title=f"{name}, seed 0: latent traversals (rows by KL)",
    )
    Image.open(path).convert("L").quantize(16).save(path, optimize=True)  # 16 greys: small PNGs
    return {f"z{d}": round(float(kl[d]), 4) for d in rows}


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = _common.out_dir(args)
    t_start = time.perf_counter()
    ds = data.DSprites()
    cfg = config(args)
    images, epochs = training_images(ds, args)
    use_population = args.population == "on" or (args.population == "auto" and jax.default_backend() != "cpu")
    eval_key, fig_key = jax.random.split(jax.random.key(args.seed + 1000))
    per_seed, runs, codes = {}, {}, {}
    for name in args.models:
        members, train_s, losses = train_model(name, cfg, images, epochs, args, use_population)
        t0 = time.perf_counter()
        rows = []
        for k, m in enumerate(members):
            represent = functools.partial(models.encode_images, m)
            s, c, f = metrics(
                eval_key,
                ds,
                represent,
                eval_points=args.eval_points,
                vote_points=args.vote_points,
                which=args.metrics,
            )
            rows.append(s)
            if k == 0:
                codes[name] = (c, f)
        eval_s = time.perf_counter() - t0
        ev = [train.evaluate(m, jax.random.key(7), images[:512]) for m in members]
        slug = name.lower().replace("-", "_")
        kl = traversal_figure(members[0], name, ds, out / f"traversals_{slug}.png", key=fig_key)
        per_seed[name] = rows
        spec, beta = objective_of(name, args)
        runs[name] = {
            "objective": {
                "name": spec.name,
                "beta": beta,
                **objectives.options(objectives.prepare(spec, cfg, num_images=len(images), where=name)),
            },
            "train_seconds": round(train_s, 1),
            "metric_seconds": round(eval_s, 1),
            "losses": losses,
            "train_elbo": [e["elbo"] for e in ev],
            "train_recon_mse": [e["recon_mse"] for e in ev],
            "latent_kl_seed0": kl,
            "scores": rows,
        }
        print(
            f"{name}: train {train_s:.0f} s, metrics {eval_s:.0f} s, MIG {[round(r['mig'], 3) for r in rows]}"
        )
    summary = table.summarise(per_seed)
    steps = epochs * (len(images) // args.batch_size)
    note = "CPU, reduced" if jax.default_backend() == "cpu" else jax.default_backend()
    md = table.markdown(summary, steps=steps, seeds=args.seeds, note=note)
    (out / "table.md").write_text(md)
    if args.save_codes:
        arrays = {f"codes_{k}": c for k, (c, _) in codes.items()}
        np.savez(out / "codes.npz", factors=next(iter(codes.values()))[1], **arrays)
    result = {
        "steps": steps,
        "epochs": epochs,
        "num_images": int(len(images)),
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seeds": args.seeds,
        "population": use_population,
        "eval_points": args.eval_points,
        "metrics": list(args.metrics),
        "vote_points": args.vote_points,
        "config": cfg.to_json(),
        "summary": summary,
        "ordering_mig": table.ordering(summary, "mig"),
        "ordering_factor_vae": table.ordering(summary, "factor_vae"),
        "published": {
            "mig_infogan_cr": table.PUBLISHED_MIG,
            "infogan_cr_table1": table.PUBLISHED,
            "factor_vae_rerun_infogan_cr": table.FACTOR_VAE_RERUN,
            "locatello_setup": table.LOCATELLO_SETUP,
        },
        "models": runs,
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    path = _common.write_result(result, args)
    print(md)
    print(f"wrote {path} in {result['total_seconds']:.0f} s")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
