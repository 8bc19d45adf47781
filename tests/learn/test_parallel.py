"""Data parallel (sharded jit, pmap), multi-host, population and mixed-precision training.

References: the single-device ``train.make_step`` / ``train.fit`` (equal up to summation order),
per ``../shared/PERF_NOTES.md``: loss trajectories with Adam, parameters with SGD.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from latentjax.errors import LatentJaxError, TrainingDiverged
from latentjax.learn import checkpoint, models, parallel, population, runs, train

CFG = models.Config(latent_dim=4, hidden=32, activation="relu")
CONV = models.Config(arch="conv", image_shape=(8, 8, 1), latent_dim=3, hidden=16, channels=4)


def _images(n, shape=(28, 28, 1), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n,) + shape, dtype=np.uint8)


def _sgd_state(config, key=jax.random.key(0)):
    """A model with SGD, whose update is linear in the gradient: parameters must agree closely."""
    graphdef, state, _ = train.init(key, config, learning_rate=1e-3)
    tx = optax.sgd(1e-4)
    return graphdef, state._replace(opt_state=tx.init(state.params)), tx


def _max_diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _run_single(graphdef, state, tx, batches):
    step = jax.jit(train.make_step(graphdef, tx))
    losses = []
    for b in batches:
        state, m = step(state, b)
        losses.append(float(m["loss"]))
    return state, np.array(losses)


@pytest.mark.parametrize("config", [CFG, pytest.param(CONV, marks=pytest.mark.slow)], ids=["mlp", "conv"])
def test_sharded_and_pmap_steps_equal_single_device(config):
    assert len(jax.devices()) == 4
    graphdef, state, tx = _sgd_state(config)
    batches = [_images(16, config.image_shape, seed=s) for s in range(3)]
    ref_state, ref = _run_single(graphdef, state, tx, batches)

    mesh = parallel.make_mesh(4)
    step = parallel.make_sharded_step(graphdef, tx, mesh)
    st, sharded = parallel.replicate(state, mesh), []
    for b in batches:
        st, m = step(st, parallel.shard_batch(b, mesh, global_batch=16))
        sharded.append(float(m["loss"]))
    assert st.params["decoder"]["out"]["kernel"][...].sharding.is_fully_replicated
    np.testing.assert_allclose(sharded, ref, rtol=1e-6)
    assert _max_diff(st.params, ref_state.params) < 1e-6

    pstep = parallel.make_pmap_step(graphdef, tx, num_devices=4)
    pst, pm = parallel.replicate_for_pmap(state, 4), []
    for b in batches:
        pst, m = pstep(pst, b.reshape((4, 4) + b.shape[1:]))
        assert np.ptp(np.asarray(m["loss"])) == 0  # pmean: every device holds the global loss
        pm.append(float(m["loss"][0]))
    np.testing.assert_allclose(pm, ref, rtol=1e-6)
    np.testing.assert_allclose(pm, sharded, rtol=1e-6)
    assert _max_diff(parallel.unreplicate(pst).params, ref_state.params) < 1e-6


def test_sharded_step_compiles_once():
    graphdef, state, tx = train.init(jax.random.key(0), CFG, learning_rate=1e-3)
    mesh = parallel.make_mesh("all")
    step = parallel.make_sharded_step(graphdef, tx, mesh)
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: (
            compiles.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
        )
    )
    st = parallel.replicate(state, mesh)
    for s in range(4):
        st, _ = step(st, parallel.shard_batch(_images(8, seed=s), mesh, global_batch=8))
    assert int(st.step) == 4 and len(compiles) == 1


@pytest.mark.parametrize("par,mode", [("jit", "scan"), ("jit", "loop"), ("pmap", "loop")])
def test_fit_data_parallel_equals_fit(par, mode):
    images, held_out = _images(96), _images(40, seed=9)
    ref = train.fit(
        jax.random.key(3),
        CFG,
        images,
        epochs=2,
        batch_size=32,
        progress=False,
        mode="scan",
        eval_images=held_out,
    )
    res = parallel.fit_data_parallel(
        jax.random.key(3),
        CFG,
        images,
        epochs=2,
        batch_size=32,
        devices=4,
        parallel=par,
        mode=mode,
        eval_images=held_out,
    )
    np.testing.assert_allclose([h["loss"] for h in res.history], [h["loss"] for h in ref.history], rtol=1e-5)
    # the same per-epoch evaluation as train.fit logs
    for key in ("eval_elbo", "eval_recon_mse"):
        np.testing.assert_allclose([h[key] for h in res.history], [h[key] for h in ref.history], rtol=1e-4)
    assert int(res.state.step) == int(ref.state.step) == 6
    # Adam amplifies summation-order noise, so parameters agree to ~1e-5 (not bit for bit).
    assert _max_diff(res.state.params, ref.state.params) < 1e-4


def test_bad_device_counts_raise():
    with pytest.raises(LatentJaxError, match="divisible"):
        parallel.fit_data_parallel(jax.random.key(0), CFG, _images(40), epochs=1, batch_size=10, devices=4)
    with pytest.raises(LatentJaxError, match="devices"):
        parallel.make_mesh(99)
    with pytest.raises(LatentJaxError, match="devices"):
        parallel.select_devices("most")
    with pytest.raises(LatentJaxError, match="parallel"):
        parallel.fit_data_parallel(jax.random.key(0), CFG, _images(40), epochs=1, batch_size=8, parallel="dp")
    with pytest.raises(LatentJaxError, match="coordinator"):
        parallel.initialize_distributed("localhost", num_processes=2, process_id=0)
    with pytest.raises(LatentJaxError, match="process-id"):
        parallel.initialize_distributed("127.0.0.1:1", num_processes=2, process_id=2)


_WORKER = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_num_cpu_devices", 2)
    from latentjax.learn import parallel
    parallel.initialize_distributed(sys.argv[1], num_processes=2, process_id=int(sys.argv[2]), timeout_s=60,
                                    local_only=True)
    import numpy as np
    from latentjax.learn import models
    cfg = models.Config(latent_dim=4, hidden=32, activation="relu")
    images = np.random.default_rng(0).integers(0, 256, (96, 28, 28, 1), dtype=np.uint8)
    kw = dict(batch_size=32, mode=sys.argv[4], out_dir=sys.argv[5])
    # one epoch, then resumed for a second: process 0 writes and restores, process 1 receives its state
    first = parallel.fit_data_parallel(jax.random.key(3), cfg, images, epochs=1, **kw)
    r = parallel.fit_data_parallel(jax.random.key(3), cfg, images, epochs=2, resume=True, **kw)
    json.dump({"losses": [h["loss"] for h in first.history + r.history], "devices": r.history[0]["devices"],
               "processes": jax.process_count(),
               "params": [np.asarray(x).tolist() for x in jax.tree.leaves(r.state.params)]}, open(sys.argv[3], "w"))
""")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["loop", "scan"])
def test_two_process_run_equals_single_process(tmp_path, mode):
    with socket.socket() as s:  # a free loopback port for the coordinator
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[2])}
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                f"127.0.0.1:{port}",
                str(i),
                str(tmp_path / f"p{i}.json"),
                mode,
                str(tmp_path / "run"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=240)[0].decode() for p in procs]
    finally:
        for p in procs:  # a process whose peer died aborts on its own; never leave one behind
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-2000:]
    got = [json.loads((tmp_path / f"p{i}.json").read_text()) for i in range(2)]
    assert got[0]["processes"] == 2 and got[0]["devices"] == 4
    assert got[0]["losses"] == got[1]["losses"]
    ref = train.fit(jax.random.key(3), CFG, _images(96), epochs=2, batch_size=32, progress=False, mode="scan")
    np.testing.assert_allclose(got[0]["losses"], [h["loss"] for h in ref.history], rtol=1e-5)
    for a, b in zip(got[0]["params"], jax.tree.leaves(ref.state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)
    # process 0 alone wrote the run; its last checkpoint is the returned model
    model, _ = checkpoint.load_model(tmp_path / "run")
    for a, b in zip(got[0]["params"], jax.tree.leaves(nnx.state(model))):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b))
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3, 6]


def test_population_equals_separate_runs():
    images = _images(96)
    seeds, betas = parallel.population_grid(size=2, beta_grid=[1.0, 4.0])
    assert (seeds, betas) == ((0, 1, 0, 1), (1.0, 1.0, 4.0, 4.0))
    seeds, betas = seeds[:3], betas[:3]  # two seeds at one beta, two betas at one seed
    graphdef, pop, hist = parallel.fit_population(
        CFG, images, seeds=seeds, betas=betas, epochs=2, batch_size=32
    )
    assert pop.states.step.tolist() == [6] * 3
    for k, (seed, beta) in enumerate(zip(seeds, betas)):
        ref = train.fit(
            jax.random.key(seed), CFG, images, epochs=2, batch_size=32, beta=beta, progress=False, mode="scan"
        )
        np.testing.assert_allclose(
            [h["losses"][k] for h in hist], [h["loss"] for h in ref.history], rtol=1e-6
        )
        assert _max_diff(parallel.member_state(pop, k).params, ref.state.params) < 1e-6
        x = models.to_float(images[:4])
        np.testing.assert_allclose(
            jax.vmap(models.reconstruct, in_axes=(None, 0))(parallel.member(graphdef, pop, k), x),
            jax.vmap(models.reconstruct, in_axes=(None, 0))(ref.model, x),
            atol=1e-5,
        )


def test_population_loop_mode_and_one_compilation_for_any_betas():
    images = _images(16)
    graphdef, pop, tx = parallel.init_population(CFG, seeds=[5, 6], betas=[0.5, 2.0])
    step = jax.jit(parallel.make_population_step(graphdef, tx))
    batch = jnp.stack([images[:8], images[8:]])
    st, m = step(pop.states, pop.betas, batch)
    st, m2 = step(st, jnp.array([1.0, 3.0]), batch)
    assert step._cache_size() == 1 and m2["loss"].shape == (2,)
    for k, (seed, beta) in enumerate([(5, 0.5), (6, 2.0)]):
        g, s, t = train.init(jax.random.key(seed), CFG, learning_rate=1e-3)
        _, ref = jax.jit(train.make_step(g, t, beta=beta))(s, images[8 * k : 8 * k + 8])
        np.testing.assert_allclose(m["loss"][k], ref["loss"], rtol=1e-6)
    _, pop2, hist = parallel.fit_population(
        CFG, images, seeds=[5], betas=1.0, epochs=1, batch_size=8, mode="loop"
    )
    ref = train.fit(jax.random.key(5), CFG, images, epochs=1, batch_size=8, progress=False, mode="loop")
    np.testing.assert_allclose(hist[0]["losses"][0], ref.history[0]["loss"], rtol=1e-6)
    with pytest.raises(LatentJaxError, match="beta-grid"):
        parallel.init_population(CFG, seeds=[0, 1], betas=[1.0, 2.0, 3.0])


def test_bf16_compute_keeps_fp32_params_and_tracks_fp32_loss():
    assert parallel.compute_dtype("auto", backend="cpu") == "float32"
    assert parallel.compute_dtype("auto", backend="gpu") == "bfloat16"
    with pytest.raises(LatentJaxError, match="precision"):
        parallel.compute_dtype("fp16")
    images = _images(32)
    losses = {}
    for dt in ("float32", "bfloat16"):
        cfg = CFG._replace(compute_dtype=dt)
        graphdef, state, tx = train.init(jax.random.key(0), cfg, learning_rate=1e-3)
        step = train.make_step(graphdef, tx)
        jaxpr = str(jax.make_jaxpr(step)(state, images))
        new, m = jax.jit(step)(state, images)
        losses[dt] = float(m["loss"])
        assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(new.params))
        assert all(
            x.dtype == jnp.float32
            for x in jax.tree.leaves(new.opt_state)
            if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
        )
        # the matmuls (forward and backward) run in the compute dtype
        assert ("bf16[" in jaxpr and "dot_general" in jaxpr) == (dt == "bfloat16")
    np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=2e-2)


class _Killed(Exception):
    """Stands for a SIGKILL right after a checkpoint was written."""


def _kill_after_save(monkeypatch, step):
    """The first save of ``step`` (for a population: member 0's) is the last thing the run does."""
    save = runs.RunDir.save

    def save_then_die(self, state):
        save(self, state)
        if int(state.step) == step:
            raise _Killed

    monkeypatch.setattr(runs.RunDir, "save", save_then_die)


def _logged(run_dir):
    return [
        (r["step"], r["loss"]) for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    ]


def _raw_leaves(tree):
    return jax.tree.leaves(
        jax.tree.map(
            lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x, tree
        )
    )


def _leaves_equal(a, b):
    la, lb = _raw_leaves(a), _raw_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


@pytest.mark.parametrize("par,mode", [("jit", "scan"), ("jit", "loop"), ("pmap", "loop")])
def test_data_parallel_resume_is_bitwise_exact(tmp_path, monkeypatch, par, mode):
    images = _images(96)  # 3 steps an epoch; checkpoints every 2 steps: segments 0-2, 2-3, 3-4, 4-6
    kw = {
        "epochs": 2,
        "batch_size": 32,
        "devices": 4,
        "parallel": par,
        "mode": mode,
        "checkpoint_every": 2,
        "keep": 5,
    }
    ref = parallel.fit_data_parallel(jax.random.key(3), CFG, images, out_dir=tmp_path / "ref", **kw)
    _kill_after_save(monkeypatch, 4)  # mid-epoch 2
    with pytest.raises(_Killed):
        parallel.fit_data_parallel(jax.random.key(3), CFG, images, out_dir=tmp_path / "run", **kw)
    monkeypatch.undo()
    with pytest.raises(LatentJaxError, match="already holds a run"):
        parallel.fit_data_parallel(jax.random.key(3), CFG, images, out_dir=tmp_path / "run", **kw)
    res = parallel.fit_data_parallel(
        jax.random.key(3), CFG, images, out_dir=tmp_path / "run", resume=True, **kw
    )
    assert [h["step"] for h in res.history] == [6]
    assert _leaves_equal(res.state, ref.state)
    assert _logged(tmp_path / "run") == _logged(tmp_path / "ref")
    assert checkpoint.Manager(tmp_path / "run").all_steps() == [2, 4, 6]


def test_data_parallel_checkpoint_is_a_single_device_run(tmp_path):
    images = _images(96)
    res = parallel.fit_data_parallel(
        jax.random.key(3), CFG, images, epochs=1, batch_size=32, devices=4, out_dir=tmp_path / "run"
    )
    model, cfg = checkpoint.load_model(tmp_path / "run")
    assert cfg == CFG and _leaves_equal(nnx.state(model), nnx.state(res.model))
    # train.fit continues it on one device: the two-epoch single-device run up to summation order
    ref = train.fit(jax.random.key(3), CFG, images, epochs=2, batch_size=32, progress=False, mode="scan")
    cont = train.fit(
        jax.random.key(3),
        CFG,
        images,
        epochs=2,
        batch_size=32,
        progress=False,
        mode="scan",
        out_dir=tmp_path / "run",
        resume=True,
    )
    assert [h["step"] for h in cont.history] == [6]
    np.testing.assert_allclose(cont.history[0]["loss"], ref.history[1]["loss"], rtol=1e-5)
    assert _max_diff(cont.state.params, ref.state.params) < 1e-4


def test_population_resume_is_bitwise_exact(tmp_path, monkeypatch):
    images = _images(96)
    kw = {
        "seeds": [0, 1],
        "betas": [1.0, 4.0],
        "epochs": 2,
        "batch_size": 32,
        "checkpoint_every": 2,
        "keep": 5,
    }
    _, ref, _ = population.fit(CFG, images, out_dir=tmp_path / "ref", **kw)
    # killed between the two members' saves of step 4: member 0 holds steps 2 and 4, member 1 only 2
    _kill_after_save(monkeypatch, 4)
    with pytest.raises(_Killed):
        population.fit(CFG, images, out_dir=tmp_path / "run", **kw)
    monkeypatch.undo()
    names = [population.member_name(k, s, b) for k, (s, b) in enumerate(zip(kw["seeds"], kw["betas"]))]
    assert [checkpoint.Manager(tmp_path / "run" / m).all_steps() for m in names] == [[2, 4], [2]]
    with pytest.raises(LatentJaxError, match="another population"):
        population.fit(CFG, images, out_dir=tmp_path / "run", resume=True, **{**kw, "seeds": [0, 2]})
    _, pop, hist = population.fit(CFG, images, out_dir=tmp_path / "run", resume=True, **kw)
    assert [h["step"] for h in hist] == [3, 4, 6]  # from the common step 2
    assert _leaves_equal(pop.states, ref.states)
    for k, m in enumerate(names):
        assert _logged(tmp_path / "run" / m) == _logged(tmp_path / "ref" / m)
        model, _ = checkpoint.load_model(tmp_path / "run" / m)
        assert _leaves_equal(nnx.state(model), parallel.member_state(pop, k).params)


def test_population_nan_names_the_member_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    images = np.minimum(_images(96), 254)
    images[50] = 255  # member 1 (beta 4) diverges on the batch holding this image
    orig = train.loss_fn

    def poisoned(params, graphdef, k, batch, *, beta=1.0):
        return jnp.where(
            (jnp.max(batch) == 255) & (beta > 2), jnp.nan, orig(params, graphdef, k, batch, beta=beta)
        )

    monkeypatch.setattr(train, "loss_fn", poisoned)
    with pytest.raises(TrainingDiverged, match=r"population members \[1\].*last good checkpoint") as err:
        population.fit(
            CFG,
            images,
            seeds=[0, 0],
            betas=[1.0, 4.0],
            epochs=2,
            batch_size=32,
            checkpoint_every=1,
            out_dir=tmp_path / "pop",
        )
    bad = int(str(err.value).split("at step ")[1].split()[0])
    for m in ("member00_seed0_beta1", "member01_seed0_beta4"):
        assert checkpoint.Manager(tmp_path / "pop" / m).latest_step() == bad
