"""The loop every trainer runs: its data order is data.batches', a scan's unroll changes no bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax import data
from latentjax.errors import DataError, InputError
from latentjax.learn import checkpoint, loop, models, state, train

CFG = models.Config(arch="mlp", image_shape=(8, 8, 1), latent_dim=2, hidden=16)


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["scan", "loop", "host"])
def test_trainer_batches_are_data_batches(monkeypatch, key, mode):
    # The rows train.fit gathers in epoch e are the batches data.batches yields for
    # fold_in(order_key, e), with order_key = split(run key)[1] (state.order_key).
    images = _images(103)
    seen = []
    device_segment = loop.device_segment

    def recording(step, imgs, mode, **kw):
        segment = device_segment(step, imgs, mode, **kw)

        def record(st, rows):
            seen.extend(np.asarray(rows))
            return segment(st, rows)

        return record

    monkeypatch.setattr(loop, "device_segment", recording)
    res = train.fit(key, CFG, images, epochs=3, batch_size=10, mode=mode)
    order_key = state.order_key(res.state)
    assert jax.numpy.array_equal(
        jax.random.key_data(order_key), jax.random.key_data(jax.random.split(jax.random.split(key)[1])[1])
    )
    expected = [
        b
        for epoch in range(3)
        for b in data.batches(jax.random.fold_in(order_key, epoch), images, batch_size=10)
    ]
    assert len(seen) == len(expected) == 30
    for rows, batch in zip(seen, expected):
        np.testing.assert_array_equal(images[rows], batch)
    assert not np.array_equal(seen[0], seen[10])  # a new order each epoch


def test_scan_unroll_changes_no_bit(key):
    graphdef, st, tx = state.init(key, CFG, learning_rate=1e-3)
    step = train.make_step(graphdef, tx)
    idx = jnp.arange(7 * 8).reshape(7, 8) % 40
    out = [jax.jit(loop.make_scan(step, unroll=u))(st, jnp.asarray(_images(40)), idx) for u in (1, 2)]
    leaves = [jax.tree.leaves(checkpoint.keys_to_data(o)) for o in out]
    assert all(np.array_equal(a, b) for a, b in zip(*leaves))


def test_prepare_checks_the_job():
    job = loop.prepare(CFG, _images(25), epochs=2, batch_size=8, eval_images=_images(3))
    assert (job.steps_per_epoch, job.every, job.epochs) == (3, 3, 2)
    assert loop.prepare(CFG, _images(25), epochs=1, batch_size=8, checkpoint_every=2).every == 2
    with pytest.raises(DataError, match="larger than the 25 train_images"):
        loop.prepare(CFG, _images(25), epochs=1, batch_size=26)
    with pytest.raises(InputError, match="epochs must be >= 1"):
        loop.prepare(CFG, _images(25), epochs=0, batch_size=8)
    with pytest.raises(InputError, match="latent_dim"):
        loop.prepare(CFG._replace(latent_dim=0), _images(25), epochs=1, batch_size=8)


def test_run_returns_one_result_shape(key):
    job = loop.prepare(CFG, _images(16), epochs=2, batch_size=8)
    graphdef, st, tx = state.init(key, CFG, learning_rate=1e-3)
    segment = loop.device_segment(train.make_step(graphdef, tx), job.images, "loop")
    res = loop.run(
        job,
        graphdef,
        st,
        segment,
        settings={},
        out_dir=None,
        resume=False,
        keep=1,
        progress=False,
        tags={"mode": "x"},
    )
    assert isinstance(res, loop.FitResult)
    assert [r["step"] for r in res.history] == [2, 4] and res.history[0]["mode"] == "x"
    assert isinstance(res.model, models.AutoEncoder) and int(res.state.step) == 4
