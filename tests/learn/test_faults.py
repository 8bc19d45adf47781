"""Run folders under faults: refused commands change nothing, --overwrite deletes only latentjax's files,
corrupt checkpoints are caught and skipped, metrics agree with the checkpoint resumed from, and (slow)
kill -9 at random points always resumes to the uninterrupted result bit for bit."""

import hashlib
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest

from latentjax.app import demo
from latentjax.errors import CheckpointError, InputError
from latentjax.learn import _manifest, checkpoint, models, runs, state, train

CFG = models.Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8)
FIT = dict(epochs=2, batch_size=16, checkpoint_every=2, keep=3, progress=False, mode="host")


def _images(n=64):
    return np.random.default_rng(0).integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)


def tree_hash(folder: pathlib.Path) -> str:
    """Every path, mode and byte under ``folder``: equal iff nothing was created, changed or removed."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        h.update(oct(p.stat().st_mode).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _fit(out, *, settings=None, resume=False, **kw):
    args = {**FIT, **kw}
    return train.fit(jax.random.key(0), CFG, _images(), out_dir=out, settings=settings, resume=resume, **args)


def _flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(checkpoint.keys_to_data(tree))])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run: 8 steps, checkpoints 4, 6, 8; its state at each kept step, read independently."""
    out = tmp_path_factory.mktemp("runs") / "run"
    res = _fit(out, settings={"dataset": "sprites", "limit": 64, "seed": 0})
    like = state.abstract_state(CFG)[1]
    mngr = checkpoint.Manager(out)
    saved = {s: _flat(mngr.restore(like, s)[0]) for s in mngr.all_steps()}
    mngr.close()
    assert sorted(saved) == [4, 6, 8] and np.array_equal(saved[8], _flat(res.state))
    return out, saved


@pytest.mark.parametrize(
    "change, name",
    [
        ({"settings": {"dataset": "mnist", "limit": 64, "seed": 0}}, "dataset"),
        ({"settings": {"dataset": "sprites", "limit": 32, "seed": 0}}, "limit"),
        ({"settings": {"dataset": "sprites", "limit": 64, "seed": 1}}, "seed"),
        ({"beta": 2.0}, "beta"),
        ({"learning_rate": 1e-2}, "learning_rate"),
        ({"batch_size": 8}, "batch_size"),
    ],
)
def test_resume_with_any_other_setting_is_refused_and_changes_nothing(tmp_path, finished, change, name):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    before = tree_hash(out)
    kw = {"settings": {"dataset": "sprites", "limit": 64, "seed": 0}, **change}
    with pytest.raises(CheckpointError, match=rf"other settings.*\b{name}\b"):
        _fit(out, resume=True, epochs=3, **kw)
    assert tree_hash(out) == before


def test_resume_of_another_model_without_config_json_is_refused_and_changes_nothing(tmp_path, finished):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    (out / "config.json").unlink()  # the checkpoint's meta still says what the run is
    before = tree_hash(out)
    other = CFG._replace(arch="conv", hidden=8, channels=4)
    with pytest.raises(CheckpointError, match="another model.*arch 'mlp' -> 'conv'"):
        train.fit(jax.random.key(0), other, _images(), out_dir=out, resume=True, **FIT)
    assert tree_hash(out) == before and not (out / "config.json").exists()
    # the right command still resumes, and config.json is back
    res = _fit(out, resume=True, epochs=3, settings={"dataset": "sprites", "limit": 64, "seed": 0})
    assert int(res.state.step) == 12 and runs.read_config(out).train["epochs"] == 3


def _corrupt(path: pathlib.Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "delete":
        path.unlink()
    else:  # bit rot: a 4 KB block (or the whole file when smaller) XOR-ed
        start = max(0, len(data) // 2 - 2048)
        for i in range(start, min(len(data), start + 4096)):
            data[i] ^= 0x5A
        path.write_bytes(bytes(data))


def _files_of(step_dir: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(step_dir)) for p in step_dir.rglob("*") if p.is_file())


def test_every_kind_of_file_orbax_writes_is_listed(finished):
    kinds = {
        pathlib.PurePath(f).name if "/d/" not in f else "d/<data>"
        for f in _files_of(finished[0] / "checkpoint" / "8")
    }
    assert {
        "_CHECKPOINT_METADATA",
        "commit_success.txt",
        "metadata",
        "_METADATA",
        "manifest.ocdbt",
        "d/<data>",
    } <= kinds


@pytest.mark.parametrize("how", ["truncate", "xor", "delete"])
def test_a_corrupt_latest_checkpoint_is_skipped_with_a_warning(tmp_path, finished, how):
    # Each file of the latest checkpoint damaged in turn: resuming restores either step 8 exactly (the
    # file was not needed: orbax's commit markers, an unused copy) or, with one warning naming it
    # corrupt, step 6 exactly; never anything else, never an exception or a traceback.
    src, saved = finished
    like = state.abstract_state(CFG)[1]
    for name in _files_of(src / "checkpoint" / "8"):
        out = tmp_path / f"{how}-{name.replace('/', '_')}"
        shutil.copytree(src, out)
        _corrupt(out / "checkpoint" / "8" / name, how)
        run = runs.RunDir(out, config=CFG, settings={}, resume=True, keep=3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            st = run.restore(like)
        run.close()
        step = int(st.step)
        assert np.array_equal(_flat(st), saved[step]), name
        if step == 8:
            assert not caught, name
        else:
            assert step == 6 and len(caught) == 1, name
            msg = str(caught[0].message)
            assert "checkpoint" in msg and "is corrupt" in msg and "\n" not in msg, msg
            assert runs.RunDir(out, config=CFG, settings={}, resume=True, keep=3).steps() == [4, 6]


def test_bit_rot_in_array_data_is_caught_by_the_checksum(tmp_path, finished):
    src, saved = finished
    like = state.abstract_state(CFG)[1]
    for name in _files_of(src / "checkpoint" / "8"):
        if "/d/" not in f"/{name}":
            continue
        for where in (0.25, 0.5, 0.75):  # a 4 KB block from there on (a small file: to its end)
            out = tmp_path / f"{name.replace('/', '_')}-{where}"
            shutil.copytree(src, out)
            path = out / "checkpoint" / "8" / name
            data = bytearray(path.read_bytes())
            start = int(len(data) * where)
            data[start : start + 4096] = bytes(b ^ 0x5A for b in data[start : start + 4096])
            path.write_bytes(bytes(data))
            mngr = checkpoint.Manager(out)
            try:
                st, _ = mngr.restore(like, 8)
                assert np.array_equal(_flat(st), saved[8])  # an unused file: the right arrays
            except CheckpointError as e:
                assert checkpoint.is_corrupt(e) and "\n" not in str(e)
            mngr.close()
    # A large incompressible array is stored raw: bit rot there reads without error, and only the
    # checksum sees that the arrays are not those saved.
    tree = {"w": np.random.default_rng(1).random(3000).astype(np.float32)}
    mngr = checkpoint.Manager(tmp_path / "big")
    mngr.save(1, tree, {})
    mngr.close()
    biggest = max((tmp_path / "big").rglob("d/*"), key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[len(data) // 4 : len(data) // 4 + 4096] = bytes(b ^ 0x5A for b in data[len(data) // 4 :][:4096])
    biggest.write_bytes(bytes(data))
    mngr = checkpoint.Manager(tmp_path / "big")
    with pytest.raises(CheckpointError, match="is corrupt: its arrays differ from those saved"):
        mngr.restore(jax.eval_shape(lambda: tree))
    mngr.close()


def test_resume_step_and_all_corrupt(tmp_path, finished):
    src, saved = finished
    out = tmp_path / "run"
    shutil.copytree(src, out)
    like = state.abstract_state(CFG)[1]
    st = runs.RunDir(out, config=CFG, settings={}, resume=4, keep=3).restore(like)
    assert int(st.step) == 4 and np.array_equal(_flat(st), saved[4])
    assert runs.RunDir(out, config=CFG, settings={}, resume=True, keep=3).steps() == [4]
    with pytest.raises(CheckpointError, match="no checkpoint of step 6"):
        runs.RunDir(out, config=CFG, settings={}, resume=6, keep=3).restore(like)
    for p in (out / "checkpoint" / "4").rglob("metadata"):
        _corrupt(p, "truncate")
    before = tree_hash(out)
    with pytest.raises(CheckpointError, match="every checkpoint .* is corrupt"):
        runs.RunDir(out, config=CFG, settings={}, resume=True, keep=3).restore(like)
    assert tree_hash(out) == before


def test_metrics_agree_with_the_checkpoint_resumed_from(tmp_path, finished):
    # killed after logging steps 2 and 4 but before saving 4: the records after the checkpoint go
    src, _ = finished
    out = tmp_path / "run"
    shutil.copytree(src, out)
    shutil.rmtree(out / "checkpoint" / "8")
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 10, "lo')  # a line cut short by the kill
    res = _fit(out, resume=True, settings={"dataset": "sprites", "limit": 64, "seed": 0})
    steps = [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8] and int(res.state.step) == 8
    np.testing.assert_array_equal(_flat(res.state), finished[1][8])


def test_a_kill_before_the_first_checkpoint_resumes_without_duplicated_steps(tmp_path):
    out = tmp_path / "run"
    ref = _fit(tmp_path / "ref")
    run = runs.RunDir(out, config=CFG, settings={}, resume=False, keep=3)
    run.log({"step": 2, "loss": 1.0})  # then killed: no checkpoint
    res = _fit(out, resume=True)
    steps = [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]
    np.testing.assert_array_equal(_flat(res.state), _flat(ref.state))


def test_a_run_without_checkpoint_restarts_in_place_with_new_settings(tmp_path):
    out = tmp_path / "run"
    run = runs.RunDir(out, config=CFG, settings={"learning_rate": 1.0}, resume=False, keep=3)
    run.log({"step": 2, "loss": float("nan")})  # it diverged before its first checkpoint
    run.close()
    (out / "thesis.pdf").write_text("mine")
    res = _fit(out, learning_rate=1e-4)  # no resume, other settings: allowed, nothing to lose
    assert runs.read_config(out).train["learning_rate"] == 1e-4 and int(res.state.step) == 8
    assert (out / "thesis.pdf").read_text() == "mine"
    with pytest.raises(InputError, match="already holds a run"):
        _fit(out, learning_rate=1e-4)


def test_foreign_files_named_like_a_run_are_never_touched(tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "metrics.jsonl").write_text("my own log\n")
    before = tree_hash(out)
    for resume in (False, True):
        with pytest.raises(InputError, match="metrics.jsonl, not written by latentjax"):
            _fit(out, resume=resume)
        assert tree_hash(out) == before


def test_demo_overwrite_deletes_only_what_latentjax_wrote(tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    for name, text in [("metrics.json", "{}"), ("report.html", "<p>mine"), ("thesis.pdf", "%PDF")]:
        (out / name).write_text(text)
    before = tree_hash(out)
    with pytest.raises(InputError, match="metrics.json.*not written by latentjax"):
        demo._check_out(out, overwrite=True)
    assert tree_hash(out) == before
    # a folder latentjax wrote, next to the user's files: only the manifest's entries go
    (out / "metrics.json").unlink()
    (out / "report.html").unlink()
    _manifest.claim(out, demo.DEMO_FILES)
    (out / "report.html").write_text("old report")
    (out / "figures").mkdir()
    (out / "figures" / "a.png").write_bytes(b"png")
    run = runs.RunDir(out, config=CFG, settings={}, resume=False, keep=1)
    run.log({"step": 1})
    run.close()
    demo._check_out(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["thesis.pdf"]
    assert (out / "thesis.pdf").read_text() == "%PDF"


# --- kill -9 at random points (slow) ------------------------------------------------------------

_TRAIN = [
    "train", "--dataset", "sprites", "--limit", "256", "--latent-dim", "2", "--hidden", "16",
    "--epochs", "6", "--batch-size", "32", "--checkpoint-every", "2", "--keep", "2", "--quiet",
    "--mode", "host",
]  # fmt: skip
_DRIVER = pathlib.Path(__file__).with_name("_fault_driver.py")


def _train(out, *extra, plan="none"):
    env = dict(os.environ, JAX_PLATFORMS="cpu", LATENTJAX_FAULT_PLAN=plan)
    cmd = [sys.executable, str(_DRIVER), *_TRAIN, "--out", str(out), *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_kill_9_at_random_points_always_resumes_bit_for_bit(tmp_path):
    # Each process of a chain is killed at a random point (inside a checkpoint save, in the middle of
    # a metrics line, or at a random time) and the next one resumes the folder: at least 20 kills
    # over as many folders as it takes, then each finishes; every folder ends with the
    # uninterrupted run's parameters and an honest metrics.jsonl, and no kill ever left a folder
    # the next command refused.
    ref = _train(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    want = _flat(runs.load_model(tmp_path / "ref")[0])
    rng = random.Random(0)
    kills = 0
    chain = 0
    while kills < 20 and chain < 8:  # a chain ends when a process finishes before its kill
        chain += 1
        out = tmp_path / f"victim{chain}"
        for trial in range(8):
            plan = rng.choice(["save", "metrics", "time"]) + f":{rng.randrange(1, 12)}:{rng.random():.3f}"
            r = _train(out, *(["--resume"] if trial else []), plan=plan)
            assert r.returncode in (0, -signal.SIGKILL), (plan, r.stderr[-2000:])
            kills += r.returncode == -signal.SIGKILL
            if r.returncode == 0:
                break
        done = _train(out, "--resume")
        assert done.returncode == 0, done.stderr[-2000:]
        np.testing.assert_array_equal(_flat(runs.load_model(out)[0]), want)
        steps = [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
        assert steps == sorted(set(steps)) and steps[-1] == 6 * 8
    assert kills >= 20
