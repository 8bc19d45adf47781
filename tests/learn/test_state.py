"""The trainers' state: init, an abstract state without computation, the run key's streams."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from latentjax.learn import models, state

CFG = models.Config(arch="mlp", image_shape=(8, 8, 1), latent_dim=2, hidden=16)


def _data(k):
    return np.asarray(jax.random.key_data(k))


def test_init_splits_the_key_into_the_model_and_the_run(key):
    graphdef, st, tx = state.init(key, CFG, learning_rate=1e-3)
    init_key, run_key = jax.random.split(key)
    ref = models.create(init_key, CFG)
    model = jax.tree.leaves(nnx.merge(graphdef, st.params))
    assert all(np.array_equal(a, b) for a, b in zip(model, jax.tree.leaves(ref)))
    assert int(st.step) == 0 and st.step.dtype == jnp.int32
    np.testing.assert_array_equal(_data(st.key), _data(run_key))
    assert jax.tree.structure(st.opt_state) == jax.tree.structure(tx.init(st.params))


def test_abstract_state_matches_init_without_computing(key, monkeypatch):
    _, st, _ = state.init(key, CFG, learning_rate=1e-3)
    calls = []
    create = models.create
    monkeypatch.setattr(models, "create", lambda *a, **kw: calls.append(1) or create(*a, **kw))
    graphdef, abstract = state.abstract_state(CFG)
    assert calls == [1]  # traced once ...
    leaves = jax.tree.leaves(abstract)
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in leaves)  # ... and nothing computed
    assert jax.tree.structure(abstract) == jax.tree.structure(st)
    for a, b in zip(leaves, jax.tree.leaves(st)):
        assert (a.shape, a.dtype) == (b.shape, b.dtype)
    assert graphdef == state.init(key, CFG, learning_rate=1e-3)[0]


def test_the_run_keys_are_three_streams_of_the_run_key(key):
    _, st, _ = state.init(key, CFG, learning_rate=1e-3)
    base, order = jax.random.split(st.key)
    np.testing.assert_array_equal(
        _data(state.step_key(st._replace(step=jnp.int32(5)))), _data(jax.random.fold_in(base, 5))
    )
    np.testing.assert_array_equal(_data(state.order_key(st)), _data(order))
    streams = {tuple(_data(k)) for k in (base, order, state.eval_key(st))}
    assert len(streams) == 3
    later = st._replace(step=jnp.int32(100))
    np.testing.assert_array_equal(_data(state.eval_key(later)), _data(state.eval_key(st)))


def test_stack_and_take_are_inverse(key):
    states = [state.init(jax.random.key(s), CFG, learning_rate=1e-3)[1] for s in range(3)]
    stacked = state.stack(states)
    assert stacked.step.shape == (3,)
    for k, st in enumerate(states):
        back = state.take(stacked, k)
        for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(st)):
            if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
                a, b = jax.random.key_data(a), jax.random.key_data(b)
            np.testing.assert_array_equal(a, b)
