"""Training flags of the console script reach the run: ``--precision`` and ``--keep``."""

import json

import numpy as np

from latentjax.app import cli
from latentjax.learn import checkpoint, runs

TRAIN = [
    "train",
    "--dataset",
    "sprites",
    "--limit",
    "256",
    "--latent-dim",
    "3",
    "--hidden",
    "32",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--checkpoint-every",
    "3",
    "--quiet",
]  # 8 steps an epoch: checkpoints at steps 3, 6, 9, 12, 15 and 16


def _losses(run_dir):
    return np.array([json.loads(ln)["loss"] for ln in (run_dir / "metrics.jsonl").read_text().splitlines()])


def test_precision_flag_sets_the_compute_dtype_and_bf16_trains(capsys, tmp_path):
    dtypes = {}
    for p in ("auto", "fp32", "bf16"):
        assert cli.main(TRAIN + ["--out", str(tmp_path / p), "--precision", p]) == 0
        dtypes[p] = json.loads((tmp_path / p / "config.json").read_text())["model"]["compute_dtype"]
    capsys.readouterr()
    assert dtypes == {"auto": "float32", "fp32": "float32", "bf16": "bfloat16"}  # auto: fp32 on CPU
    assert runs.load_model(tmp_path / "bf16")[1].compute_dtype == "bfloat16"
    fp32, bf16 = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    np.testing.assert_array_equal(_losses(tmp_path / "auto"), fp32)
    # bf16 compute with fp32 parameters: the same run to bf16 rounding (measured: within 3e-4), not
    # the fp32 run itself.
    assert np.isfinite(bf16).all() and len(bf16) == len(fp32)
    np.testing.assert_allclose(bf16, fp32, rtol=1e-2)
    assert np.any(bf16 != fp32)


def test_keep_prunes_old_checkpoints(capsys, tmp_path):
    for keep in (1, 2):
        out = tmp_path / f"keep{keep}"
        assert cli.main(TRAIN + ["--out", str(out), "--keep", str(keep)]) == 0
        assert checkpoint.Manager(out).all_steps() == [15, 16][2 - keep :]
        assert sorted(p.name for p in (out / "checkpoint").iterdir()) == ["15", "16"][2 - keep :]
    capsys.readouterr()
    # the kept last checkpoint is the finished model: it resumes as a finished run
    assert cli.main(TRAIN + ["--out", str(tmp_path / "keep1"), "--keep", "1", "--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 16
