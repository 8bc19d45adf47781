"""Devices, meshes and processes: device specs, placement on a mesh, argument errors."""

import jax
import numpy as np
import pytest

from latentjax.errors import InputError
from latentjax.learn import checkpoint, distributed, models, state


def test_select_devices_and_mesh():
    assert len(jax.devices()) == 4
    assert distributed.select_devices("all") == jax.devices() == distributed.select_devices(None)
    assert distributed.select_devices("2") == jax.devices()[:2]
    assert dict(distributed.make_mesh(3).shape) == {"data": 3}
    with pytest.raises(InputError, match="devices"):
        distributed.make_mesh(99)
    with pytest.raises(InputError, match="devices='most'"):
        distributed.select_devices("most")


def test_replicate_and_shard_batch_keep_values_and_keys():
    mesh = distributed.make_mesh(4)
    _, st, _ = state.init(jax.random.key(0), models.Config(latent_dim=2, hidden=8), learning_rate=1e-3)
    placed = distributed.replicate(st, mesh)
    assert placed.key.dtype == st.key.dtype and placed.step.sharding.is_fully_replicated
    for a, b in zip(
        jax.tree.leaves(checkpoint.keys_to_data(placed)), jax.tree.leaves(checkpoint.keys_to_data(st))
    ):
        np.testing.assert_array_equal(a, b)
    back = jax.tree.map(distributed.to_host_local, placed)
    assert back.step.sharding.device_set == {jax.local_devices()[0]}
    batch = distributed.shard_batch(np.arange(16.0).reshape(8, 2), mesh, global_batch=8)
    assert batch.sharding.spec == jax.sharding.PartitionSpec("data", None)
    np.testing.assert_array_equal(batch, np.arange(16.0).reshape(8, 2))
    assert distributed.local_rows(mesh, 8) == slice(0, 8)
    with pytest.raises(InputError, match="batch_size=10 is not divisible by the 4 devices"):
        distributed.local_rows(mesh, 10)
    assert distributed.replicate_for_pmap(np.zeros(3), 2).shape == (2, 3)


def test_initialize_checks_its_arguments():
    with pytest.raises(InputError, match="coordinator"):
        distributed.initialize("localhost", num_processes=2, process_id=0)
    with pytest.raises(InputError, match="process_id"):
        distributed.initialize("127.0.0.1:1", num_processes=2, process_id=2)
    with pytest.raises(InputError, match="num_processes"):
        distributed.initialize("127.0.0.1:1", num_processes=0)
