"""``latentjax train``: its flags and its run (one device, data parallel, or a population)."""

from __future__ import annotations

import json
import os

from latentjax.app import _cli_checks as _checks


def add(sub) -> None:
    """Adds the ``train`` subcommand to ``sub`` (an argparse subparsers object)."""
    t = sub.add_parser("train", help="train an autoencoder or VAE")
    t.add_argument("--dataset", required=True, help="fashion_mnist, mnist, sprites, smile_faces, genki4k")
    t.add_argument("--data-dir", default=None, help="data directory (default: $LATENTJAX_DATA_DIR)")
    t.add_argument("--download", action="store_true", help="fetch (Fashion-)MNIST to the cache if missing")
    t.add_argument("--model", choices=("ae", "vae"), default="vae")
    t.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    t.add_argument(
        "--conv-net",
        choices=("subpixel", "burgess"),
        default="subpixel",
        help="conv layers: latentjax's (subpixel) or the 64x64 net of the disentanglement literature "
        "(burgess: 4x4 stride-2 convs 32-32-64-64; use with --hidden 256 --activation relu)",
    )
    t.add_argument(
        "--likelihood",
        choices=("bernoulli", "gaussian"),
        default=None,
        help="default: bernoulli for gray images, gaussian for colour",
    )
    t.add_argument("--latent-dim", type=_checks.positive_int, default=16)
    t.add_argument("--hidden", type=_checks.positive_int, default=400)
    t.add_argument("--depth", type=_checks.positive_int, default=1)
    t.add_argument("--activation", default="swish", choices=("relu", "swish", "elu", "gelu", "tanh"))
    t.add_argument("--epochs", type=_checks.positive_int, default=10)
    t.add_argument("--batch-size", type=_checks.positive_int, default=128)
    t.add_argument("--lr", type=_checks.positive_float, default=1e-3)
    t.add_argument("--beta", type=_checks.nonnegative_float, default=1.0, help="KL weight of a VAE")
    t.add_argument(
        "--objective",
        choices=("elbo", "iwae", "beta_tcvae", "factor_vae", "annealed_vae"),
        default="elbo",
        help="the ELBO (with --beta), the importance-weighted bound of Burda et al., beta-TCVAE "
        "(Chen et al.), FactorVAE (Kim & Mnih) or the annealed-capacity beta-VAE (Burgess et al.)",
    )
    d = t.add_argument_group("disentangling objectives (learn.objectives.Objective)")
    d.add_argument(
        "--tc-weight", type=_checks.nonnegative_float, default=6.0, help="beta-TCVAE's TC weight (beta)"
    )
    d.add_argument(
        "--gamma",
        type=_checks.nonnegative_float,
        default=None,
        help="FactorVAE's TC weight (default 35) or the annealed VAE's capacity weight (default 1000)",
    )
    d.add_argument(
        "--capacity-max", type=_checks.nonnegative_float, default=25.0, help="annealed VAE's C_max (nats)"
    )
    d.add_argument(
        "--capacity-steps",
        type=_checks.positive_int,
        default=100_000,
        help="steps over which the annealed VAE's capacity rises from 0 to C_max",
    )
    d.add_argument(
        "--disc-hidden", type=_checks.positive_int, default=1000, help="FactorVAE discriminator's width"
    )
    d.add_argument(
        "--disc-depth", type=_checks.positive_int, default=6, help="FactorVAE discriminator's hidden layers"
    )
    t.add_argument(
        "--num-samples",
        type=_checks.positive_int,
        default=1,
        metavar="K",
        help="latents per image: IWAE's k; the ELBO averages K one-sample ELBOs (default 1)",
    )
    t.add_argument(
        "--binarize",
        choices=("none", "fixed", "dynamic"),
        default="none",
        help="Bernoulli-binarise the images: once (fixed) or afresh at every visit (dynamic)",
    )
    t.add_argument("--seed", type=_checks.nonnegative_int, default=0)
    t.add_argument(
        "--limit", type=_checks.positive_int, default=None, help="use only the first N train/test images"
    )
    t.add_argument("--out", required=True, help="run folder: config.json, metrics.jsonl, checkpoint/")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest intact checkpoint (a corrupt one is skipped)",
    )
    t.add_argument(
        "--resume-step",
        type=_checks.positive_int,
        default=None,
        metavar="N",
        help="continue the run in --out from its checkpoint of step N (implies --resume)",
    )
    t.add_argument(
        "--checkpoint-every", type=_checks.positive_int, default=None, help="steps (default: one epoch)"
    )
    t.add_argument("--keep", type=_checks.positive_int, default=3, help="checkpoints to keep")
    t.add_argument("--mode", choices=("auto", "scan", "loop", "host"), default="auto")
    t.add_argument(
        "--microbatches",
        type=_checks.positive_int,
        default=None,
        help="compute each batch's gradient in N equal slices (default: tuning.default_microbatches)",
    )
    t.add_argument(
        "--conv-kernels",
        choices=("xla", "onednn"),
        default=None,
        help="conv layers' kernels (default: tuning.default_conv_kernels: oneDNN on CPU when available)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    g = t.add_argument_group("scale (see README: sharding is the recommended path)")
    g.add_argument("--devices", default=None, help="data-parallel over N devices or 'all' (jit + sharding)")
    g.add_argument("--parallel", choices=("jit", "pmap"), default="jit")
    g.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (multi-host, jax.distributed)")
    g.add_argument("--num-processes", type=_checks.positive_int, default=None)
    g.add_argument("--process-id", type=_checks.nonnegative_int, default=None)
    g.add_argument(
        "--population",
        type=_checks.positive_int,
        default=None,
        help="train K models at once (vmap), seeds seed..seed+K-1 crossed with --beta-grid",
    )
    g.add_argument(
        "--beta-grid",
        type=_checks.float_list,
        default=None,
        help="comma-separated KL weights for the population, e.g. 0.5,1,4",
    )
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="bf16 compute with fp32 parameters; auto = bf16 on GPU/TPU, fp32 on CPU",
    )


def run(args) -> int:
    """Runs ``latentjax train``; returns the exit code."""
    if args.coordinator or args.num_processes or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        from latentjax.learn import distributed

        distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id)
    import jax

    from latentjax import data
    from latentjax.errors import LatentJaxError
    from latentjax.learn import models, train

    ds = data.load(
        args.dataset, data_dir=args.data_dir, limit=args.limit, seed=args.seed, download=args.download
    )
    shape = tuple(ds.train_images.shape[1:])
    likelihood = args.likelihood or ("bernoulli" if shape[-1] == 1 else "gaussian")
    cfg = models.Config(
        kind=args.model,
        arch=args.arch,
        image_shape=shape,
        latent_dim=args.latent_dim,
        likelihood=likelihood,
        hidden=args.hidden,
        depth=args.depth,
        activation=args.activation,
        compute_dtype=models.compute_dtype(args.precision),
        conv_net=args.conv_net,
    )
    settings = {"seed": args.seed, "dataset": args.dataset, "limit": args.limit}
    scaled = (
        args.population
        or args.beta_grid
        or args.devices
        or args.parallel == "pmap"
        or jax.process_count() > 1
    )
    if scaled and (args.microbatches is not None or args.mode == "host" or args.conv_kernels == "onednn"):
        flag = (
            "--microbatches"
            if args.microbatches is not None
            else "--mode host"
            if args.mode == "host"
            else "--conv-kernels onednn"
        )
        raise LatentJaxError(
            f"{flag} applies to single-device training, not to --devices, --parallel pmap, "
            "multi-process or --population runs"
        )
    if args.population or args.beta_grid:
        return _train_population(args, cfg, ds, settings)
    if args.devices or args.parallel == "pmap" or jax.process_count() > 1:
        return _train_data_parallel(args, cfg, ds, settings)
    result = train.fit(
        jax.random.key(args.seed),
        cfg,
        ds.train_images,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        beta=args.beta,
        **_objective(args),
        out_dir=args.out,
        checkpoint_every=args.checkpoint_every,
        keep=args.keep,
        resume=_resume(args),
        progress=not args.quiet,
        eval_images=ds.test_images[:2000],
        mode=args.mode,
        microbatches=args.microbatches,
        conv_kernels=args.conv_kernels,
        settings=settings,
    )
    last = result.history[-1] if result.history else {"step": int(result.state.step)}
    print(json.dumps({"out": args.out, **last}))
    return 0


def _objective(args) -> dict:
    """The trainers' keywords of ``--objective`` (+ hyperparameters), ``--num-samples``, ``--binarize``."""
    from latentjax.learn import objectives

    spec = objectives.Objective(
        args.objective,
        gamma=args.gamma,
        capacity_max=args.capacity_max,
        capacity_steps=args.capacity_steps,
        tc_weight=args.tc_weight,
        disc_hidden=args.disc_hidden,
        disc_depth=args.disc_depth,
    )
    return {"objective": spec, "num_samples": args.num_samples, "binarize": args.binarize}


def _resume(args) -> bool | int:
    """``--resume`` (True: the newest intact checkpoint) or ``--resume-step N`` (that step)."""
    return args.resume_step if args.resume_step is not None else args.resume


def _train_data_parallel(args, cfg, ds, settings) -> int:
    import jax

    from latentjax.learn import parallel

    res = parallel.fit_data_parallel(
        jax.random.key(args.seed),
        cfg,
        ds.train_images,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        beta=args.beta,
        **_objective(args),
        devices=args.devices or "all",
        parallel=args.parallel,
        mode=args.mode,
        out_dir=args.out,
        checkpoint_every=args.checkpoint_every,
        keep=args.keep,
        resume=_resume(args),
        progress=not args.quiet,
        eval_images=ds.test_images[:2000],
        settings=settings,
    )
    last = res.history[-1] if res.history else {"step": int(res.state.step)}
    print(json.dumps({"out": args.out, "process": jax.process_index(), **last}))
    return 0


def _train_population(args, cfg, ds, settings) -> int:
    import pathlib

    import jax

    from latentjax.learn import population

    seeds, betas = population.grid(size=args.population, seed=args.seed, beta_grid=args.beta_grid)
    res = population.fit(
        [jax.random.key(s) for s in seeds],
        cfg,
        ds.train_images,
        betas=betas,
        seeds=seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        **_objective(args),
        mode=args.mode,
        out_dir=args.out,
        checkpoint_every=args.checkpoint_every,
        keep=args.keep,
        resume=_resume(args),
        progress=not args.quiet,
        settings=settings,
    )
    history = res.history
    losses = history[-1]["losses"] if history else [None] * len(seeds)
    members = [
        {
            "out": str(pathlib.Path(args.out) / population.member_name(k, seed, beta)),
            "seed": int(seed),
            "beta": float(beta),
            "loss": losses[k],
        }
        for k, (seed, beta) in enumerate(zip(seeds, betas))
    ]
    print(
        json.dumps(
            {
                "out": args.out,
                "step": int(res.state.step[0]),
                "members": members,
                "model_images_per_s": history[-1]["images_per_s"] if history else None,
            }
        )
    )
    return 0
