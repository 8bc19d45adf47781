"""The console script: bad input exits 2 with one line (the demo's run: tests/app/test_demo.py)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from latentjax.app import cli


def _run(capsys, *argv):
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_unknown_dataset_exits_2(capsys, tmp_path):
    code, err = _run(capsys, "train", "--dataset", "cifar99", "--out", str(tmp_path / "r"))
    assert code == 2 and len(err) == 1 and "cifar99" in err[0]
    assert not (tmp_path / "r").exists()


def test_missing_data_names_both_options(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTJAX_CACHE_DIR", str(tmp_path / "cache"))  # not the user's real cache
    code, err = _run(
        capsys,
        "train",
        "--dataset",
        "fashion_mnist",
        "--data-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 2 and len(err) == 1
    assert "tfds" in err[0].lower() and "idx" in err[0].lower()


def test_resume_with_another_architecture_exits_2(capsys, tmp_path):
    out = str(tmp_path / "r")
    base = [
        "train",
        "--dataset",
        "sprites",
        "--limit",
        "256",
        "--latent-dim",
        "3",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--out",
        out,
        "--quiet",
    ]
    assert cli.main(base) == 0
    capsys.readouterr()
    code, err = _run(capsys, *base[:-3], "--arch", "conv", "--out", out, "--quiet", "--resume")
    assert code == 2 and len(err) == 1 and "another model" in err[0]
    code, err = _run(capsys, *base)
    assert code == 2 and "already holds a run" in err[0]


def test_corrupt_idx_exits_2(capsys, tmp_path):
    d = tmp_path / "fashion_mnist"
    d.mkdir()
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (d / name).write_bytes(b"not an idx file")
    code, err = _run(
        capsys,
        "train",
        "--dataset",
        "fashion_mnist",
        "--data-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 2 and len(err) == 1 and "idx" in err[0].lower()


SMALL_TRAIN = [
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
    "2",
    "--batch-size",
    "64",
    "--quiet",
]


def _final_loss(run_dir):
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["loss"]


def test_population_and_data_parallel_cli_runs_are_loadable(capsys, tmp_path):
    from latentjax.learn import runs

    assert cli.main(SMALL_TRAIN + ["--out", str(tmp_path / "single")]) == 0
    assert cli.main(SMALL_TRAIN + ["--out", str(tmp_path / "dp"), "--devices", "all"]) == 0
    assert (
        cli.main(SMALL_TRAIN + ["--out", str(tmp_path / "pm"), "--devices", "2", "--parallel", "pmap"]) == 0
    )
    assert (
        cli.main(SMALL_TRAIN + ["--out", str(tmp_path / "pop"), "--population", "2", "--beta-grid", "1,4"])
        == 0
    )
    capsys.readouterr()
    ref = _final_loss(tmp_path / "single")
    for d in ("dp", "pm"):
        assert abs(_final_loss(tmp_path / d) - ref) < 1e-4 * abs(ref), d
        runs.load_model(tmp_path / d)
    members = sorted(p for p in (tmp_path / "pop").iterdir() if p.is_dir())
    assert json.loads((tmp_path / "pop" / "population.json").read_text()) == {
        "seeds": [0, 1, 0, 1],
        "betas": [1.0, 1.0, 4.0, 4.0],
    }
    assert [m.name for m in members] == [
        "member00_seed0_beta1",
        "member01_seed1_beta1",
        "member02_seed0_beta4",
        "member03_seed1_beta4",
    ]
    assert abs(_final_loss(members[0]) - ref) < 1e-4 * abs(ref)  # seed 0, beta 1 is the single run
    for m in members:
        runs.load_model(m)
    code, err = _run(capsys, *SMALL_TRAIN, "--out", str(tmp_path / "dp"), "--devices", "all")
    assert code == 2 and "already holds a run" in err[0]
    code, err = _run(capsys, *SMALL_TRAIN, "--out", str(tmp_path / "pop"), "--population", "2")
    assert code == 2 and "not empty" in err[0]


def _metrics(run_dir):
    return [
        (r["step"], r["loss"]) for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    ]


@pytest.mark.parametrize("scale", [["--devices", "2"], ["--population", "2"]], ids=["devices", "population"])
def test_data_parallel_and_population_cli_runs_resume(capsys, tmp_path, scale):
    from latentjax.learn import runs

    base = [
        "train",
        "--dataset",
        "sprites",
        "--limit",
        "256",
        "--latent-dim",
        "3",
        "--hidden",
        "32",
        "--batch-size",
        "64",
        "--checkpoint-every",
        "3",
        "--quiet",
        *scale,
    ]

    def train(out, epochs, *extra):
        return cli.main([*base, "--epochs", str(epochs), "--out", str(out), *extra])

    assert train(tmp_path / "ref", 2) == 0
    assert train(tmp_path / "run", 1) == 0
    assert train(tmp_path / "run", 2, "--resume") == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["step"] == 8  # 256 images, batch 64: 4 steps an epoch
    pairs = (
        [("ref", "run")]
        if scale[0] == "--devices"
        else [(f"ref/{m}", f"run/{m}") for m in ("member00_seed0_beta1", "member01_seed1_beta1")]
    )
    for ref, run in pairs:
        assert _metrics(tmp_path / run) == _metrics(tmp_path / ref)  # bit-equal losses, each step once
        a, _ = runs.load_model(tmp_path / ref)
        b, _ = runs.load_model(tmp_path / run)
        assert all((x == y).all() for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.slow
def test_two_process_cli_run_equals_single_process(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "latentjax.app.cli",
                *SMALL_TRAIN,
                "--out",
                str(tmp_path / "mh"),
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert codes == [0, 0], [p.stderr.read()[-2000:] for p in procs]
    single = subprocess.run(
        [sys.executable, "-m", "latentjax.app.cli", *SMALL_TRAIN, "--out", str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    ref = _final_loss(tmp_path / "one")
    assert abs(_final_loss(tmp_path / "mh") - ref) < 1e-4 * abs(ref)


def test_embed_command_writes_viewer_and_projector(capsys, tmp_path):
    run = tmp_path / "run"
    assert cli.main(SMALL_TRAIN + ["--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "emb"
    assert (
        cli.main(["embed", "--checkpoint", str(run), "--method", "pca", "--out", str(out), "--n", "300"]) == 0
    )
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["method"] == "pca" and res["n"] == 300 and res["latent_dim"] == 3
    # the reported value is sklearn's trustworthiness@10 of the saved embedding, and beats a random
    # 2-D embedding of the same latents (measured: 0.996 against 0.52)
    from sklearn.manifold import trustworthiness

    saved = np.load(out / "embedding.npz")
    z, y = saved["latents"].astype(np.float64), saved["embedding"].astype(np.float64)
    assert res["trustworthiness"] == pytest.approx(trustworthiness(z, y, n_neighbors=10), abs=1e-4)
    rand = trustworthiness(z, np.random.default_rng(0).normal(size=(len(z), 2)), n_neighbors=10)
    assert res["trustworthiness"] > rand + 0.3, (res["trustworthiness"], rand)
    for f in ("scatter.png", "viewer.html", "projector/projector_config.pbtxt"):
        assert (out / f).exists(), f
    code, err = _run(
        capsys,
        "embed",
        "--checkpoint",
        str(tmp_path / "nothing"),
        "--method",
        "pca",
        "--out",
        str(tmp_path / "e2"),
    )
    assert code == 2 and len(err) == 1


def test_microbatches_flag(capsys, tmp_path):
    # --microbatches reaches train.fit (recorded in config.json); the scaled paths refuse it and
    # --mode host (they have no host-fed mode) with exit code 2, before writing anything.
    assert cli.main(SMALL_TRAIN + ["--out", str(tmp_path / "mb"), "--microbatches", "2"]) == 0
    assert json.loads((tmp_path / "mb" / "config.json").read_text())["train"]["microbatches"] == 2
    assert (
        cli.main(SMALL_TRAIN + ["--out", str(tmp_path / "dp"), "--devices", "all", "--microbatches", "2"])
        == 2
    )
    assert "--microbatches applies to single-device training" in capsys.readouterr().err
    assert (
        cli.main(SMALL_TRAIN + ["--out", str(tmp_path / "pop"), "--population", "2", "--mode", "host"]) == 2
    )
    assert "--mode host applies to single-device training" in capsys.readouterr().err
    assert (
        cli.main(
            SMALL_TRAIN + ["--out", str(tmp_path / "dp"), "--devices", "all", "--conv-kernels", "onednn"]
        )
        == 2
    )
    assert "--conv-kernels onednn applies to single-device training" in capsys.readouterr().err
    assert not (tmp_path / "dp").exists() and not (tmp_path / "pop").exists()
    assert cli.main(SMALL_TRAIN + ["--out", str(tmp_path / "xk"), "--conv-kernels", "xla"]) == 0
    assert json.loads((tmp_path / "xk" / "config.json").read_text())["train"]["conv_kernels"] == "xla"


def test_library_errors_name_the_flags(capsys, tmp_path):
    # the library names Python arguments (devices=, out_dir, resume=True); the CLI shows its flags
    base = [
        "train",
        "--dataset",
        "sprites",
        "--limit",
        "256",
        "--latent-dim",
        "3",
        "--hidden",
        "16",
        "--quiet",
    ]
    code, err = _run(capsys, *base, "--out", str(tmp_path / "r"), "--devices", "99")
    assert code == 2 and len(err) == 1 and "--devices 99 asked for" in err[0] and "devices=" not in err[0]
    assert cli.main([*base, "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    code, err = _run(capsys, *base, "--epochs", "1", "--out", str(tmp_path / "r"))
    assert code == 2 and "pass --resume to continue it or choose another --out" in err[0]
    assert cli._with_flags("try a smaller learning_rate") == "try a smaller --lr"
    assert cli._with_flags("the batch of 4 devices; size 3") == "the batch of 4 devices; size 3"


# --- issue 20: flags checked, defaults shown, OS errors and interrupts in one line --------------

_TINY = ["train", "--dataset", "sprites", "--limit", "64", "--latent-dim", "2", "--hidden", "8"]
_TINY += ["--epochs", "1", "--batch-size", "16", "--quiet"]


@pytest.mark.parametrize(
    "flag, value",
    [("--beta", "nan"), ("--beta", "-1"), ("--lr", "0"), ("--lr", "inf"), ("--epochs", "0"),
     ("--seed", "-1"), ("--batch-size", "x"), ("--beta-grid", "1,nan"), ("--resume-step", "0")],
)  # fmt: skip
def test_every_numeric_flag_is_checked_in_one_line(capsys, tmp_path, flag, value):
    with pytest.raises(SystemExit) as e:
        cli.main([*_TINY, "--out", str(tmp_path / "r"), flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and f"argument {flag}" in err[0]
    assert not (tmp_path / "r").exists()


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "--lr LR (default: 0.001)",
        "--beta BETA KL weight of a VAE (default: 1.0)",
        "(default: 128)",
    ):
        assert text in out


def test_os_errors_are_one_line_naming_path_and_cause(capsys, tmp_path, monkeypatch):
    import errno

    from latentjax.learn import _manifest

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(_manifest, "write_atomic", full)
    code, err = _run(capsys, *_TINY, "--out", str(tmp_path / "r"))
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0] and str(tmp_path) in err[0]
    monkeypatch.undo()
    (tmp_path / "file").write_text("x")
    code, err = _run(capsys, *_TINY, "--out", str(tmp_path / "file"))
    assert code == 2 and len(err) == 1 and "is a file, not a folder" in err[0]

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "data"))

    from latentjax import data

    monkeypatch.setattr(data, "load", denied)
    code, err = _run(capsys, *_TINY, "--out", str(tmp_path / "r2"))
    assert code == 2 and err == [
        f"latentjax train: error: permission denied: {tmp_path / 'data'}: Permission denied"
    ]


def test_interrupt_says_which_step_was_saved(capsys, tmp_path, monkeypatch):
    out = tmp_path / "r"
    assert cli.main([*_TINY, "--out", str(out)]) == 0

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    from latentjax.learn import train

    monkeypatch.setattr(train, "fit", interrupted)
    code, err = _run(capsys, *_TINY, "--out", str(out), "--resume")
    assert code == 130 and len(err) == 1 and "step 4" in err[0] and "--resume" in err[0]
