"""Training: compile-once step, equal paths, divergence handling, exact kill-and-resume."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax import data
from latentjax.app import demo
from latentjax.errors import CheckpointError, DataError, LatentJaxError, TrainingDiverged
from latentjax.learn import checkpoint, models, runs, train

CFG = models.Config(arch="mlp", image_shape=(16, 16, 1), latent_dim=3, hidden=32)


@pytest.fixture(scope="module")
def sprites16():
    images, factors = data.sprites(num_images=1024, size=16, seed=0)
    return images


def _leaves_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def test_step_compiles_once(sprites16, key):
    graphdef, state, tx = train.init(key, CFG, learning_rate=1e-3)
    traces = []

    def counted(state, images):
        traces.append(1)
        return train.make_step(graphdef, tx)(state, images)

    step = jax.jit(counted, donate_argnums=0)
    for i in range(12):
        state, m = step(state, sprites16[i * 64 : (i + 1) * 64])
    assert len(traces) == 1
    assert step._cache_size() == 1
    assert int(state.step) == 12 and np.isfinite(float(m["loss"]))


def test_fit_learns_and_paths_agree(sprites16, key):
    runs = {
        mode: train.fit(key, CFG, sprites16, epochs=3, batch_size=64, progress=False, mode=mode)
        for mode in ("scan", "loop", "host")
    }
    hist = runs["scan"].history
    assert hist[-1]["loss"] < hist[0]["loss"]
    # The scan, on-device loop and host-fed paths run the same steps on the same batches.
    for mode in ("loop", "host"):
        assert _leaves_equal(runs[mode].state.params, runs["scan"].state.params), mode


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_compiler_options_match_xla_defaults(arch, sprites16, key):
    # latentjax compiles its steps with YNNPACK dots on CPU (train.compiler_options); the losses of
    # 20 Adam steps must equal those of XLA's default compilation to float32 rounding.
    cfg = CFG._replace(arch=arch, channels=4) if arch == "conv" else CFG
    graphdef, state, tx = train.init(key, cfg, learning_rate=1e-3)
    run = train.make_run(train.make_step(graphdef, tx))
    idx = jnp.arange(20 * 32).reshape(20, 32) % len(sprites16)
    losses = {}
    for name, opts in (("latentjax", train.compiler_options()), ("xla_default", None)):
        _, losses[name] = jax.jit(run, compiler_options=opts)(state, jnp.asarray(sprites16), idx)
    assert train.compiler_options("cpu") is not None and train.compiler_options("gpu") is None
    np.testing.assert_allclose(losses["latentjax"], losses["xla_default"], rtol=2e-5)
    assert losses["latentjax"][-1] < losses["latentjax"][0]


def test_compiler_options_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("LATENTJAX_XLA_YNN", "0")
    assert train.compiler_options("cpu") is None
    monkeypatch.setenv("LATENTJAX_XLA_YNN", "1")
    assert train.compiler_options("cpu") == {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    }


def test_epoch_order_is_a_permutation_and_matches_data_permutation(key):
    order = train.epoch_order(key, 3, 103, 10)
    assert order.shape == (10, 10)
    assert len(np.unique(order)) == 100
    assert not np.array_equal(order, train.epoch_order(key, 4, 103, 10))


def test_evaluate_matches_a_loop(sprites16, key):
    model = models.create(key, CFG)
    ev = train.evaluate(model, key, sprites16[:130], batch_size=50)
    x = models.to_float(sprites16[:130])
    rec = jax.vmap(models.reconstruct, in_axes=(None, 0))(model, x)
    np.testing.assert_allclose(ev["recon_mse"], float(jnp.mean((rec - x) ** 2)), rtol=1e-5)


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path, sprites16, key, monkeypatch):
    images = sprites16[:256].copy()
    images[images == 255] = 254
    images[200] = 255  # the batch holding this image returns a NaN loss
    orig = train.loss_fn

    def poisoned(params, graphdef, k, batch, *, beta=1.0):
        loss = orig(params, graphdef, k, batch, beta=beta)
        return jnp.where(jnp.max(batch) == 255, jnp.nan, loss)

    monkeypatch.setattr(train, "loss_fn", poisoned)
    with pytest.raises(TrainingDiverged, match="last good checkpoint") as err:
        train.fit(
            key,
            CFG,
            images,
            epochs=3,
            batch_size=32,
            progress=False,
            out_dir=tmp_path / "run",
            checkpoint_every=1,
            mode="loop",
        )
    bad_step = int(str(err.value).split("at step ")[1].split()[0])
    mngr = checkpoint.Manager(tmp_path / "run")
    assert mngr.latest_step() == bad_step  # every step before the NaN one was saved
    monkeypatch.setattr(train, "loss_fn", orig)
    model, _ = checkpoint.load_model(tmp_path / "run")
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(model))


def test_out_dir_with_a_run_is_not_overwritten(tmp_path, sprites16, key):
    out = tmp_path / "run"
    train.fit(key, CFG, sprites16, epochs=1, batch_size=64, progress=False, out_dir=out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(LatentJaxError, match="already holds a run"):
        train.fit(key, CFG, sprites16, epochs=1, batch_size=64, progress=False, out_dir=out)
    other = CFG._replace(latent_dim=5)
    with pytest.raises(LatentJaxError, match="another model"):
        train.fit(key, other, sprites16, epochs=2, batch_size=64, progress=False, out_dir=out, resume=True)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_checkpoint_of_another_model_is_rejected(tmp_path, sprites16, key):
    out = tmp_path / "run"
    train.fit(key, CFG, sprites16, epochs=1, batch_size=64, progress=False, out_dir=out)
    mngr = checkpoint.Manager(out)
    _, state, _ = train.init(key, CFG._replace(hidden=16), learning_rate=1e-3)
    with pytest.raises(CheckpointError, match="does not match"):
        mngr.restore(state)
    with pytest.raises(CheckpointError):
        checkpoint.load_model(tmp_path / "nothing-here")


def test_bad_images_raise(key):
    with pytest.raises(DataError, match="NaN"):
        train.validate_images(np.full((2, 16, 16, 1), np.nan, np.float32), CFG)
    with pytest.raises(DataError, match="shape"):
        train.validate_images(np.zeros((2, 8, 8, 1), np.uint8), CFG)
    with pytest.raises(DataError, match=r"\(n, h, w, c\)"):
        train.validate_images(np.zeros((16, 16), np.uint8), CFG)


def _cli(*args, **kw):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.Popen(
        [sys.executable, "-m", "latentjax.app.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_kill_and_resume_is_bitwise_exact(tmp_path):
    common = [
        "train",
        "--dataset",
        "sprites",
        "--limit",
        "1024",
        "--latent-dim",
        "3",
        "--hidden",
        "32",
        "--epochs",
        "40",
        "--batch-size",
        "32",
        "--checkpoint-every",
        "25",
        "--keep",
        "2",
        "--quiet",
    ]
    ref = _cli(*common, "--out", str(tmp_path / "ref"))
    victim = _cli(*common, "--out", str(tmp_path / "victim"))
    ckpt = tmp_path / "victim" / "checkpoint"
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None:
        if ckpt.exists() and any(p.name.isdigit() for p in ckpt.iterdir()):
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = checkpoint.Manager(tmp_path / "victim").latest_step()
    assert killed_at is not None and killed_at < 40 * 32
    resumed = _cli(*common, "--out", str(tmp_path / "victim"), "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    a, _ = checkpoint.load_model(tmp_path / "ref")
    b, _ = checkpoint.load_model(tmp_path / "victim")
    assert _leaves_equal(a, b)
    steps = [json.loads(l)["step"] for l in (tmp_path / "victim" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # the replayed steps were not logged twice


@pytest.mark.slow
def test_vae_beats_pca_on_fashion_mnist(data_dir, key):
    ds = data.load("fashion_mnist", data_dir=data_dir, limit=10000)
    cfg = models.Config(arch="mlp", image_shape=(28, 28, 1), latent_dim=16, hidden=400, likelihood="gaussian")
    model = train.fit(key, cfg, ds.train_images, epochs=5, batch_size=128, progress=False).model
    test = ds.test_images[:2000]
    vae = train.evaluate(model, key, test)["recon_mse"]
    pca = demo.pca_recon_mse(ds.train_images, test, num_components=16)
    assert vae < pca, (vae, pca)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_microbatches_equal_one_pass(arch, sprites16, key):
    # make_step(microbatches=k) sums the gradients of k slices, each example keeping its key:
    # the same 10-step trajectory as the one-pass step, to float32 rounding.
    cfg = CFG._replace(arch=arch, channels=4) if arch == "conv" else CFG
    graphdef, state, tx = train.init(key, cfg, learning_rate=1e-3)
    idx = jnp.arange(10 * 32).reshape(10, 32) % len(sprites16)
    data_ = jnp.asarray(sprites16)
    out = {}
    for k in (1, 2, 4):
        out[k] = train.jit(train.make_run(train.make_step(graphdef, tx, microbatches=k)))(state, data_, idx)
    for k in (2, 4):
        np.testing.assert_allclose(out[k][1], out[1][1], rtol=1e-5)
        for a, b in zip(jax.tree.leaves(out[k][0].params), jax.tree.leaves(out[1][0].params)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(LatentJaxError, match="does not split into 3"):
        train.make_step(graphdef, tx, microbatches=3)(state, sprites16[:32])
    with pytest.raises(LatentJaxError, match="microbatches must be >= 1"):
        train.make_step(graphdef, tx, microbatches=0)


def test_default_microbatches():
    conv = CFG._replace(arch="conv")
    assert train.default_microbatches(conv, 256, "cpu") == 2
    assert train.default_microbatches(conv, 128, "cpu") == 1
    assert train.default_microbatches(conv, 257, "cpu") == 1
    assert train.default_microbatches(conv, 256, "gpu") == 1
    assert train.default_microbatches(CFG, 1024, "cpu") == 1


@pytest.mark.parametrize("process", [0, 1])
def test_open_run_failure_on_process_0_reaches_every_process(monkeypatch, process):
    # Any error while process 0 opens the run (not only a LatentJaxError) is broadcast, so the
    # other processes stop at once instead of waiting for process 0 at the first collective.
    from jax.experimental import multihost_utils

    sent = []

    def broadcast(x):
        sent.append(x)
        return (np.int32(1), x[1]) if process else x

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: process)
    monkeypatch.setattr(multihost_utils, "broadcast_one_to_all", broadcast)

    def opener():
        raise PermissionError("run folder is read-only")

    state = train.init(jax.random.key(0), CFG, learning_rate=1e-3)[1]
    expected = (
        (PermissionError, "read-only") if process == 0 else (LatentJaxError, "process 0 could not open")
    )
    with pytest.raises(expected[0], match=expected[1]):
        runs.open_run(opener, state, resume=False)
    assert len(sent) == 1 and (process == 1 or int(sent[0][0]) == 1)
