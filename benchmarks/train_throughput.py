"""Training throughput of latentjax's VAEs against the same models in PyTorch (eager and compiled).

Compares, in one run and alternating rounds, images per second of full training steps (forward,
backward, Adam) on random uint8 28x28 images:
  - ``mlp_vae_b128``, ``mlp_vae_b1024``: the MLP VAE 784-400-20 / 20-400-784, Bernoulli, Adam,
    trained as latentjax users get it: a whole segment of steps as one ``lax.scan``
    (``loop.make_scan``) with the data on the device;
  - ``conv_vae_b256``: the conv VAE (stride-2 3x3 convs, sub-pixel decoder) through a Python loop
    over the jitted step gathering batches on the device (``train.fit``'s CPU mode for conv);
  - ``mlp_vae_b128_pop8``: population mode, 8 MLP VAEs in one vmapped step
    (``population.make_step`` in ``loop.make_scan``), reported as models x images per second.
Achieved GFLOP/s use one count per case for every implementation: XLA's cost analysis of the
latentjax step (forward + backward + Adam). Compile time is reported separately (``compile_s``).

Run on a quiet machine (threads spin at barriers when the cores are shared); to compare on one core
``taskset -c 1 python benchmarks/train_throughput.py``. ``--quick`` is a format-only run for tests.

Usage:
  python benchmarks/train_throughput.py [--json PATH] [--quick] [--cases mlp_vae_b128,...]
      [--rounds 5] [--seconds 1.0] [--no-compile] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.learn import _xla, loop, models, population, state, train, tuning

# the clock of every timed round: wall time (default), or CPU time of the process (--clock cpu), which
# is robust to other jobs on a shared machine when the run is pinned to one core (taskset -c 1)
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCK["wall"]

CASES = ("mlp_vae_b128", "mlp_vae_b1024", "conv_vae_b256", "mlp_vae_b128_pop8")


def case_setup(case: str, quick: bool):
    """``(config, batch, population)`` of a case; ``--quick`` shrinks models and batches."""
    mlp = models.Config(arch="mlp", latent_dim=20, hidden=400, depth=1, activation="relu")
    conv = models.Config(arch="conv", latent_dim=20, hidden=400, channels=32, activation="relu")
    if quick:
        mlp = mlp._replace(hidden=32, latent_dim=4)
        conv = conv._replace(hidden=16, channels=4, latent_dim=4)
    table = {
        "mlp_vae_b128": (mlp, 128, 1),
        "mlp_vae_b1024": (mlp, 1024, 1),
        "conv_vae_b256": (conv, 256, 1),
        "mlp_vae_b128_pop8": (mlp, 128, 8),
    }
    config, batch, pop = table[case]
    if quick:
        batch, pop = max(8, batch // 32), min(pop, 2)
    return config, batch, pop


def step_flops(config, batch: int) -> float:
    """FLOPs of one training step (fwd + bwd + Adam) at ``batch``, from XLA's cost analysis."""
    graphdef, st, tx = state.init(jax.random.key(0), config, learning_rate=1e-3)
    images = jax.ShapeDtypeStruct((batch,) + tuple(config.image_shape), jnp.uint8)
    cost = jax.jit(train.make_step(graphdef, tx)).lower(st, images).cost_analysis()  # no compile needed
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", 0.0)) if cost else 0.0


class LatentJaxRunner:
    """One timed unit = ``steps`` training steps, the way ``train.fit`` runs this model."""

    def __init__(
        self,
        config,
        batch: int,
        members: int,
        steps: int,
        data: np.ndarray,
        *,
        options: dict | None | str = "latentjax",
        conv_kernels: str | None = None,
    ):
        self.steps, self.batch, self.members = steps, batch, members
        # as train.fit would: oneDNN conv kernels for conv models on CPU when available
        self.conv_kernels = conv_kernels or (tuning.default_conv_kernels(config) if members == 1 else "xla")
        # XLA compiler options: latentjax's own (``_xla.compiler_options()``), or None = XLA's defaults
        options = _xla.compiler_options() if options == "latentjax" else options
        jit = lambda f, **kw: jax.jit(f, compiler_options=options, **kw)  # noqa: E731
        n = len(data)
        rng = np.random.default_rng(0)
        self.data = jax.device_put(data)
        t0 = time.perf_counter()
        if members > 1:
            keys = [jax.random.key(s) for s in range(members)]
            graphdef, self.state, tx = population.init(keys, config, learning_rate=1e-3)
            idx = rng.integers(0, n, (steps, members, batch)).astype(np.int32)
            self.idx = jnp.asarray(idx)
            # as population.fit runs it: the scan not unrolled
            run = jit(loop.make_scan(population.make_step(graphdef, tx), unroll=1), donate_argnums=0)
            self.fn = run.lower(self.state, self.data, self.idx).compile()
            self.call = lambda: self.fn(self.state, self.data, self.idx)  # noqa: E731
        else:
            graphdef, self.state, tx = state.init(jax.random.key(0), config, learning_rate=1e-3)
            # as train.fit would: its default microbatches for this model and batch
            step = train.make_step(
                graphdef,
                tx,
                microbatches=tuning.default_microbatches(config, batch),
                conv_kernels=self.conv_kernels,
            )
            idx = rng.integers(0, n, (steps, batch)).astype(np.int32)
            if config.arch == "conv" and jax.default_backend() == "cpu":
                # train.fit's "loop" mode: convolutions inside a rolled scan are slow on XLA:CPU
                gather = jit(lambda st, d, i: step(st, d[i]), donate_argnums=0)
                self.fn = gather.lower(self.state, self.data, jnp.asarray(idx[0])).compile()
                rows = [jnp.asarray(r) for r in idx]

                def call():
                    st = self.state
                    for r in rows:
                        st, m = self.fn(st, self.data, r)
                    return st, m["loss"]

                self.call = call
            else:
                run = jit(loop.make_scan(step), donate_argnums=0)
                self.idx = jnp.asarray(idx)
                self.fn = run.lower(self.state, self.data, self.idx).compile()
                self.call = lambda: self.fn(self.state, self.data, self.idx)  # noqa: E731
        self.compile_s = time.perf_counter() - t0
        self.time_once()  # warm-up

    def time_once(self) -> float:
        """Seconds of one timed unit."""
        t0 = clock()
        self.state, losses = self.call()
        jax.block_until_ready((self.state, losses))
        return clock() - t0


class TorchRunner:
    """One timed unit = ``steps`` training steps of the PyTorch peer (eager or compiled)."""

    def __init__(self, config, batch: int, steps: int, data: np.ndarray, *, compile: bool):
        import torch
        import torch_peer

        self.torch = torch
        self.steps = steps
        h, w, c = config.image_shape
        self.data = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 3, 1, 2)))  # NCHW uint8
        rng = np.random.default_rng(0)
        self.idx = [torch.from_numpy(r) for r in rng.integers(0, len(data), (steps, batch))]
        _, self.step = torch_peer.make_step(config, compile=compile)
        t0 = time.perf_counter()
        self.step(self.data[self.idx[0]]).item()  # the compile happens here for torch.compile
        self.compile_s = time.perf_counter() - t0 if compile else None
        self.time_once()  # warm-up

    def time_once(self) -> float:
        """Seconds of one timed unit."""
        t0 = clock()
        for i in self.idx:
            loss = self.step(self.data[i])
        loss.item()  # eager CPU ops are synchronous; this just forces completion
        return clock() - t0


def device_string() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if jax.default_backend() != "cpu":
        return f"{jax.default_backend()}: {jax.devices()[0].device_kind}"
    return f"cpu: {cores} cores ({name})"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 2 timed steps (format check)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--rounds", type=int, default=5, help="alternating timed rounds per implementation")
    ap.add_argument("--seconds", type=float, default=1.0, help="target seconds per timed round")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (its compile takes ~20 s)")
    ap.add_argument("--no-torch", action="store_true", help="latentjax only")
    ap.add_argument(
        "--no-xla-default",
        action="store_true",
        help="skip the latentjax_xla_default rows (the step under XLA's default compiler options)",
    )
    ap.add_argument(
        "--clock",
        choices=tuple(CLOCK),
        default="wall",
        help="wall seconds, or process CPU seconds (use with taskset -c 1 on a shared machine)",
    )
    args = ap.parse_args(argv)
    global clock
    clock = CLOCK[args.clock]
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        ap.error(f"unknown cases {sorted(unknown)}; choose from {CASES}")
    quick = args.quick
    rounds = 1 if quick else args.rounds
    use_torch = not args.no_torch
    use_compile = use_torch and not (args.no_compile or quick)
    versions = {"jax": jax.__version__, "jaxlib": jax.lib.__version__, "python": platform.python_version()}
    if use_torch:
        import torch

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        torch.set_num_threads(
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
        versions["torch"] = torch.__version__
    rows = []
    for case in cases:
        config, batch, pop = case_setup(case, quick)
        data = np.random.default_rng(1).integers(
            0, 256, (4096 if not quick else 64,) + config.image_shape, dtype=np.uint8
        )
        flops = step_flops(config, batch)
        # steps per timed round: about --seconds at a rough first guess of speed, at least 2
        if quick:
            steps = 2
        else:
            per_step = LatentJaxRunner(config, batch, pop, 2, data).time_once() / 2
            steps = max(2, int(args.seconds / max(per_step, 1e-4)))
        runners = {"latentjax": LatentJaxRunner(config, batch, pop, steps, data)}
        if _xla.compiler_options() is not None and not args.no_xla_default:
            # the same step, plain JAX: XLA's default options and XLA's convolutions
            runners["latentjax_xla_default"] = LatentJaxRunner(
                config, batch, pop, steps, data, options=None, conv_kernels="xla"
            )
        if runners["latentjax"].conv_kernels != "xla":
            # latentjax's options but XLA's convolutions, to show what the oneDNN kernels buy
            runners["latentjax_xla_convs"] = LatentJaxRunner(
                config, batch, pop, steps, data, conv_kernels="xla"
            )
        if use_torch and pop == 1:
            runners["pytorch_eager"] = TorchRunner(config, batch, steps, data, compile=False)
            if use_compile:
                runners["pytorch_compile"] = TorchRunner(config, batch, steps, data, compile=True)
        times = {k: [] for k in runners}
        for _ in range(rounds):  # alternate, so a noisy neighbour hits every implementation alike
            for k, r in runners.items():
                times[k].append(r.time_once())
        for k, r in runners.items():
            sec = statistics.median(times[k]) / steps
            row = {
                "case": case,
                "impl": k,
                "batch": batch,
                "images_per_s": batch * pop / sec,
                "gflops_per_s": flops * pop / sec / 1e9,
                "step_ms": 1e3 * sec,
                "steps_per_round": steps,
                "rounds": rounds,
                "compile_s": r.compile_s,
                "conv_kernels": getattr(r, "conv_kernels", None),
            }
            if pop > 1:
                row.update({"population": pop, "models_images_per_s": batch * pop / sec})
            rows.append(row)
    ratios = {}
    for case in cases:
        by = {r["impl"]: r["images_per_s"] for r in rows if r["case"] == case}
        ratios[case] = {f"latentjax/{k}": by["latentjax"] / v for k, v in by.items() if k != "latentjax"}
    single = {r["case"]: r["images_per_s"] for r in rows if r["impl"] == "latentjax"}
    if "mlp_vae_b128_pop8" in single and "mlp_vae_b128" in single:
        ratios["mlp_vae_b128_pop8"]["population/single"] = (
            single["mlp_vae_b128_pop8"] / single["mlp_vae_b128"]
        )
    result = {
        "benchmark": "train_throughput",
        "device": device_string(),
        "versions": versions,
        "compiler_options": _xla.compiler_options(),
        "quick": quick,
        "clock": args.clock,
        "flops_source": "XLA cost analysis of the latentjax step (fwd+bwd+Adam)",
        "rows": rows,
        "ratios": ratios,
    }
    print(f"{'case':<20}{'impl':<22}{'images/s':>11}{'GFLOP/s':>9}{'ms/step':>9}{'compile s':>10}")
    for r in rows:
        comp = "" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        print(
            f"{r['case']:<20}{r['impl']:<22}{r['images_per_s']:>11.0f}{r['gflops_per_s']:>9.1f}"
            f"{r['step_ms']:>9.2f}{comp:>10}"
        )
    for case, rs in ratios.items():
        if rs:
            print(f"{case}: " + ", ".join(f"{k} = {v:.2f}x" for k, v in rs.items()))
    print(f"device: {result['device']}; versions: {versions}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
