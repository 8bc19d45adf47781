"""Data parallel (sharded jit, pmap) and multi-host training.

References: the single-device ``train.make_step`` / ``train.fit``, equal up to summation order:
compare loss trajectories with Adam (it amplifies summation-order noise in parameters), parameters
with SGD.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest
from flax import nnx
from trainhelp import Killed, kill_after_save, leaves_equal, logged, max_diff, random_images

from latentjax.errors import InputError, LatentJaxError
from latentjax.learn import checkpoint, distributed, models, parallel, runs, state, train

CFG = models.Config(latent_dim=4, hidden=32, activation="relu")
CONV = models.Config(arch="conv", image_shape=(8, 8, 1), latent_dim=3, hidden=16, channels=4)


def _sgd_state(config, key=jax.random.key(0)):
    """A model with SGD, whose update is linear in the gradient: parameters must agree closely."""
    graphdef, st, _ = state.init(key, config, learning_rate=1e-3)
    tx = optax.sgd(1e-4)
    return graphdef, st._replace(opt_state=tx.init(st.params)), tx


def _run_single(graphdef, st, tx, batches):
    step = jax.jit(train.make_step(graphdef, tx))
    losses = []
    for b in batches:
        st, m = step(st, b)
        losses.append(float(m["loss"]))
    return st, np.array(losses)


@pytest.mark.parametrize("config", [CFG, pytest.param(CONV, marks=pytest.mark.slow)], ids=["mlp", "conv"])
def test_sharded_and_pmap_steps_equal_single_device(config):
    assert len(jax.devices()) == 4
    graphdef, st0, tx = _sgd_state(config)
    batches = [random_images(16, config.image_shape, seed=s) for s in range(3)]
    ref_state, ref = _run_single(graphdef, st0, tx, batches)

    mesh = distributed.make_mesh(4)
    step = parallel.make_sharded_step(graphdef, tx, mesh)
    st, sharded = distributed.replicate(st0, mesh), []
    for b in batches:
        st, m = step(st, distributed.shard_batch(b, mesh, global_batch=16))
        sharded.append(float(m["loss"]))
    assert st.params["decoder"]["out"]["kernel"][...].sharding.is_fully_replicated
    np.testing.assert_allclose(sharded, ref, rtol=1e-6)
    assert max_diff(st.params, ref_state.params) < 1e-6

    pstep = parallel.make_pmap_step(graphdef, tx, num_devices=4)
    pst, pm = distributed.replicate_for_pmap(st0, 4), []
    for b in batches:
        pst, m = pstep(pst, b.reshape((4, 4) + b.shape[1:]))
        assert np.ptp(np.asarray(m["loss"])) == 0  # pmean: every device holds the global loss
        pm.append(float(m["loss"][0]))
    np.testing.assert_allclose(pm, ref, rtol=1e-6)
    np.testing.assert_allclose(pm, sharded, rtol=1e-6)
    assert max_diff(state.take(pst, 0).params, ref_state.params) < 1e-6


def test_sharded_step_compiles_once():
    graphdef, st0, tx = state.init(jax.random.key(0), CFG, learning_rate=1e-3)
    mesh = distributed.make_mesh("all")
    step = parallel.make_sharded_step(graphdef, tx, mesh)
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: (
            compiles.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
        )
    )
    st = distributed.replicate(st0, mesh)
    for s in range(4):
        st, _ = step(st, distributed.shard_batch(random_images(8, seed=s), mesh, global_batch=8))
    assert int(st.step) == 4 and len(compiles) == 1


@pytest.mark.parametrize("par,mode", [("jit", "scan"), ("jit", "loop"), ("pmap", "loop")])
def test_fit_data_parallel_equals_fit(par, mode):
    images, held_out = random_images(96), random_images(40, seed=9)
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
    assert max_diff(res.state.params, ref.state.params) < 1e-4


def test_bad_device_counts_raise():
    with pytest.raises(InputError, match="divisible"):
        parallel.fit_data_parallel(
            jax.random.key(0), CFG, random_images(40), epochs=1, batch_size=10, devices=4
        )
    with pytest.raises(InputError, match="parallel="):
        parallel.fit_data_parallel(
            jax.random.key(0), CFG, random_images(40), epochs=1, batch_size=8, parallel="dp"
        )
    with pytest.raises(InputError, match="mode must be one of"):
        parallel.fit_data_parallel(
            jax.random.key(0), CFG, random_images(40), epochs=1, batch_size=8, mode="host"
        )


_WORKER = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_num_cpu_devices", 2)
    from latentjax.learn import distributed, parallel
    distributed.initialize(sys.argv[1], num_processes=2, process_id=int(sys.argv[2]), timeout_s=60,
                           local_only=True)
    import numpy as np
    from latentjax.learn import models
    cfg = models.Config(latent_dim=4, hidden=32, activation="relu")
    images = np.random.default_rng(0).integers(0, 256, (96, 28, 28, 1), dtype=np.uint8)
    kw = dict(batch_size=32, mode=sys.argv[4], out_dir=sys.argv[5])
    # one epoch, then resumed for a second: process 0 writes and restores, process 1 receives its state
    first = parallel.fit_data_parallel(jax.random.key(3), cfg, images, epochs=1, **kw)
    r = parallel.fit_data_parallel(jax.random.key(3), cfg, images, epochs=2, resume=True, **kw)
    params = [np.asarray(x).tolist() for x in jax.tree.leaves(r.state.params)]
    json.dump({"losses": [h["loss"] for h in first.history + r.history], "devices": r.history[0]["devices"],
               "processes": jax.process_count(), "params": params}, open(sys.argv[3], "w"))
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
    ref = train.fit(
        jax.random.key(3), CFG, random_images(96), epochs=2, batch_size=32, progress=False, mode="scan"
    )
    np.testing.assert_allclose(got[0]["losses"], [h["loss"] for h in ref.history], rtol=1e-5)
    for a, b in zip(got[0]["params"], jax.tree.leaves(ref.state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)
    # process 0 alone wrote the run; its last checkpoint is the returned model
    model, _ = runs.load_model(tmp_path / "run")
    for a, b in zip(got[0]["params"], jax.tree.leaves(nnx.state(model))):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b))
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3, 6]


@pytest.mark.parametrize("par,mode", [("jit", "scan"), ("jit", "loop"), ("pmap", "loop")])
def test_data_parallel_resume_is_bitwise_exact(tmp_path, monkeypatch, par, mode):
    images = random_images(96)  # 3 steps an epoch; checkpoints every 2 steps: segments 0-2, 2-3, 3-4, 4-6
    kw = {
        "epochs": 2,
        "batch_size": 32,
        "devices": 4,
        "parallel": par,
        "mode": mode,
        "checkpoint_every": 2,
        "keep": 2,
    }
    ref = parallel.fit_data_parallel(jax.random.key(3), CFG, images, out_dir=tmp_path / "ref", **kw)
    kill_after_save(monkeypatch, 4)  # mid-epoch 2
    with pytest.raises(Killed):
        parallel.fit_data_parallel(jax.random.key(3), CFG, images, out_dir=tmp_path / "run", **kw)
    monkeypatch.undo()
    with pytest.raises(LatentJaxError, match="already holds a run"):
        parallel.fit_data_parallel(jax.random.key(3), CFG, images, out_dir=tmp_path / "run", **kw)
    res = parallel.fit_data_parallel(
        jax.random.key(3), CFG, images, out_dir=tmp_path / "run", resume=True, **kw
    )
    assert [h["step"] for h in res.history] == [6]
    assert leaves_equal(res.state, ref.state)
    assert logged(tmp_path / "run") == logged(tmp_path / "ref")
    # keep=2 pruned the older checkpoints (saved at 2, 4 and 6) in both runs
    assert checkpoint.Manager(tmp_path / "run").all_steps() == [4, 6]
    assert checkpoint.Manager(tmp_path / "ref").all_steps() == [4, 6]


def test_data_parallel_checkpoint_is_a_single_device_run(tmp_path):
    images = random_images(96)
    res = parallel.fit_data_parallel(
        jax.random.key(3), CFG, images, epochs=1, batch_size=32, devices=4, out_dir=tmp_path / "run"
    )
    model, cfg = runs.load_model(tmp_path / "run")
    assert cfg == CFG and leaves_equal(nnx.state(model), nnx.state(res.model))
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
    assert max_diff(cont.state.params, ref.state.params) < 1e-4
