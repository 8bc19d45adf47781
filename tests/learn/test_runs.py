"""Run folders: one config reader, load_model, no overwrite, divergence, exact kill-and-resume."""

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
from trainhelp import leaves_equal

from latentjax import data
from latentjax.errors import CheckpointError, InputError, LatentJaxError, TrainingDiverged
from latentjax.learn import checkpoint, models, runs, state, train

CFG = models.Config(arch="mlp", image_shape=(16, 16, 1), latent_dim=3, hidden=32)


@pytest.fixture(scope="module")
def sprites16():
    images, factors = data.sprites(num_images=1024, size=16, seed=0)
    return images


def test_read_config_and_load_model(tmp_path, sprites16, key):
    out = tmp_path / "run"
    res = train.fit(
        key, CFG, sprites16[:128], epochs=1, batch_size=64, out_dir=out, settings={"dataset": "x"}
    )
    cfg = runs.read_config(out)
    assert cfg.model == CFG and cfg.train["dataset"] == "x" and cfg.train["batch_size"] == 64
    assert runs.read_config(out / "checkpoint") == cfg
    model, loaded = runs.load_model(out)
    assert loaded == CFG and leaves_equal(model, res.model)
    (out / "config.json").unlink()  # the checkpoint's meta says the same
    assert runs.read_config(out) == cfg
    (out / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a latentjax run config"):
        runs.read_config(out)
    with pytest.raises(CheckpointError, match="no latentjax run"):
        runs.load_model(tmp_path / "nothing-here")
    assert not (tmp_path / "nothing-here").exists()


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path, sprites16, key, monkeypatch):
    images = sprites16[:256].copy()
    images[images == 255] = 254
    images[200] = 255  # the batch holding this image returns a NaN loss
    orig = train.loss_fn

    def poisoned(params, k, batch, *, graphdef, beta=1.0, **objective):
        loss = orig(params, k, batch, graphdef=graphdef, beta=beta, **objective)
        return jnp.where(jnp.max(batch) == 255, jnp.nan, loss)

    monkeypatch.setattr(train, "loss_fn", poisoned)
    with pytest.raises(TrainingDiverged, match="last good checkpoint.*learning_rate") as err:
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
    model, _ = runs.load_model(tmp_path / "run")
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(model))


def test_out_dir_with_a_run_is_not_overwritten(tmp_path, sprites16, key):
    out = tmp_path / "run"
    train.fit(key, CFG, sprites16, epochs=1, batch_size=64, progress=False, out_dir=out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(InputError, match="already holds a run.*pass resume=True .* another out_dir"):
        train.fit(key, CFG, sprites16, epochs=1, batch_size=64, progress=False, out_dir=out)
    other = CFG._replace(latent_dim=5)
    with pytest.raises(CheckpointError, match="another model"):
        train.fit(key, other, sprites16, epochs=2, batch_size=64, progress=False, out_dir=out, resume=True)
    with pytest.raises(CheckpointError, match="other settings"):
        train.fit(key, CFG, sprites16, epochs=2, batch_size=32, progress=False, out_dir=out, resume=True)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


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
    a, _ = runs.load_model(tmp_path / "ref")
    b, _ = runs.load_model(tmp_path / "victim")
    assert leaves_equal(a, b)
    lines = (tmp_path / "victim" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(ln)["step"] for ln in lines]
    assert steps == sorted(set(steps))  # the replayed steps were not logged twice


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

    st = state.init(jax.random.key(0), CFG, learning_rate=1e-3)[1]
    expected = (
        (PermissionError, "read-only") if process == 0 else (LatentJaxError, "process 0 could not open")
    )
    with pytest.raises(expected[0], match=expected[1]):
        runs.open_run(opener, st, resume=False)
    assert len(sent) == 1 and (process == 1 or int(sent[0][0]) == 1)
    assert sent[0][1].key.dtype == jnp.uint32  # keys travel as raw data


def test_run_segments_end_at_epochs_and_checkpoints():
    rows_seen = []

    def segment(st, rows):
        rows_seen.append(len(rows))
        return st + len(rows), np.ones(len(rows))

    def order(epoch):
        return np.zeros((5, 2), np.int32)

    st, hist = runs.run_segments(
        3, segment, order, start=3, total=12, steps_per_epoch=5, every=4, images_per_step=2
    )
    assert st == 12 and [r["step"] for r in hist] == [4, 5, 8, 10, 12] and rows_seen == [1, 1, 3, 2, 2]
