"""Checkpoints: any pytree with its JSON meta, typed keys as raw data, abstract restore targets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.errors import CheckpointError
from latentjax.learn import checkpoint, models, state, train

CFG = models.Config(arch="mlp", image_shape=(16, 16, 1), latent_dim=3, hidden=32)


def _tree(seed=0):
    return {"w": jnp.arange(6.0).reshape(2, 3) + seed, "n": jnp.int32(seed), "key": jax.random.key(seed)}


def _same(a, b):
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(
            jax.tree.leaves(checkpoint.keys_to_data(a)), jax.tree.leaves(checkpoint.keys_to_data(b))
        )
    )


def test_keys_round_trip_through_raw_data():
    tree = _tree(3)
    raw = checkpoint.keys_to_data(tree)
    assert raw["key"].dtype == jnp.uint32 and raw["w"] is tree["w"]
    back = checkpoint.data_to_keys(raw, tree)
    assert back["key"].dtype == tree["key"].dtype and _same(back, tree)
    # an abstract tree tells the key type as well
    assert checkpoint.data_to_keys(raw, jax.eval_shape(lambda: tree))["key"].dtype == tree["key"].dtype


def test_save_restore_any_pytree_with_meta(tmp_path):
    mngr = checkpoint.Manager(tmp_path / "run", keep=2)
    for step in (1, 2, 3):
        mngr.save(step, _tree(step), {"step": step, "note": "hi"})
    assert mngr.all_steps() == [2, 3] and mngr.latest_step() == 3
    restored, meta = mngr.restore(_tree())
    assert _same(restored, _tree(3)) and meta == {"step": 3, "note": "hi"}
    restored, meta = mngr.restore(jax.eval_shape(_tree), step=2)  # an abstract target
    assert _same(restored, _tree(2)) and mngr.meta(2)["step"] == 2
    mngr.delete(3)
    assert mngr.all_steps() == [2]
    mngr.close()
    assert checkpoint.checkpoint_dir(tmp_path / "run") == (tmp_path / "run" / "checkpoint").absolute()
    assert checkpoint.checkpoint_dir(tmp_path / "run" / "checkpoint") == checkpoint.checkpoint_dir(
        tmp_path / "run"
    )


def test_restore_errors(tmp_path):
    mngr = checkpoint.Manager(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        mngr.restore(_tree())
    with pytest.raises(CheckpointError, match="no checkpoint"):
        mngr.meta()
    mngr.save(1, _tree(), {})
    with pytest.raises(CheckpointError, match="does not match"):
        mngr.restore({**_tree(), "w": jnp.zeros((4, 3))})


def test_checkpoint_of_another_model_is_rejected(tmp_path, key):
    images = np.random.default_rng(0).integers(0, 256, (128, 16, 16, 1), dtype=np.uint8)
    out = tmp_path / "run"
    train.fit(key, CFG, images, epochs=1, batch_size=64, progress=False, out_dir=out)
    mngr = checkpoint.Manager(out)
    _, st, _ = state.init(key, CFG._replace(hidden=16), learning_rate=1e-3)
    with pytest.raises(CheckpointError, match="does not match"):
        mngr.restore(st)
    with pytest.raises(CheckpointError, match="does not match"):
        mngr.restore(state.abstract_state(CFG._replace(hidden=16))[1])
