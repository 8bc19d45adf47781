"""Helpers the training tests share (on ``sys.path`` through pytest's ``pythonpath``)."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.learn import checkpoint, runs


def random_images(n, shape=(28, 28, 1), seed=0):
    """``n`` uniform random uint8 images."""
    return np.random.default_rng(seed).integers(0, 256, (n,) + shape, dtype=np.uint8)


def leaves_equal(a, b):
    """Two pytrees (typed keys included) are equal leaf for leaf, bit for bit."""
    la, lb = jax.tree.leaves(checkpoint.keys_to_data(a)), jax.tree.leaves(checkpoint.keys_to_data(b))
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def max_diff(a, b):
    """The largest absolute difference between two pytrees' leaves."""
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


class Killed(Exception):  # noqa: N818
    """Stands for a SIGKILL right after a checkpoint was written."""


def kill_after_save(monkeypatch, step):
    """The first save of ``step`` (for a population: member 0's) is the last thing the run does."""
    save = runs.RunDir.save

    def save_then_die(self, st):
        save(self, st)
        if int(st.step) == step:
            raise Killed

    monkeypatch.setattr(runs.RunDir, "save", save_then_die)


def logged(run_dir):
    """``(step, loss)`` of every line of a run's ``metrics.jsonl``."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["loss"]) for r in map(json.loads, lines)]
