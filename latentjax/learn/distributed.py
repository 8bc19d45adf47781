"""Devices, meshes and processes: where training arrays live.

Which devices to use (``select_devices``), the one-axis ``("data",)`` mesh over them, placing a
state on it (``replicate``, or stacked copies for ``pmap``) and a batch across it
(``local_rows``, ``shard_batch``, the same call on one process or many), gathering a state back
(``to_host_local``), and joining a multi-process run (``initialize``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from latentjax.errors import InputError
from latentjax.learn import checkpoint

AXIS = "data"


def select_devices(spec: int | str | None = "all") -> list:
    """The devices to train on: ``"all"`` / None (every device of every process) or a count.

    A count ``N`` takes the first ``N`` global devices; with several processes it must cover
    whole processes, since each process feeds its own devices.

    Args:
      spec: ``"all"``, None or a positive count (an int or its string).

    Returns:
      A list of ``jax.Device``.

    Raises:
      InputError: not a count, more devices than exist, or not whole processes.

    Examples:
      >>> len(select_devices(1))
      1
    """
    every = jax.devices()
    if spec is None or spec == "all":
        return every
    where = "distributed.select_devices"
    try:
        n = int(spec)
    except (TypeError, ValueError):
        raise InputError(f"{where}: devices={spec!r} must be a positive count or 'all'") from None
    if not 1 <= n <= len(every):
        raise InputError(
            f"{where}: devices={n} asked for, but {len(every)} devices exist ({jax.default_backend()})"
        )
    if jax.process_count() > 1 and n % jax.process_count():
        raise InputError(f"{where}: devices={n} must be a multiple of the {jax.process_count()} processes")
    return every[:n]


def make_mesh(devs: Sequence | int | str | None = "all") -> jax.sharding.Mesh:
    """A one-axis ``("data",)`` mesh over ``devs`` (a device list, a count, or ``"all"``).

    Auto axis types: the step is ordinary single-batch code and XLA propagates the batch sharding
    through it (Explicit axes, the ``make_mesh`` default since JAX 0.8, would ask every op of the
    model to be sharding-typed).

    Args:
      devs: devices, or a ``select_devices`` spec.

    Returns:
      The mesh.

    Examples:
      >>> dict(make_mesh(1).shape)
      {'data': 1}
    """
    if devs is None or isinstance(devs, (int, str)):
        devs = select_devices(devs)
    return jax.make_mesh((len(devs),), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,), devices=list(devs))


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
    """Places a pytree (a ``TrainState``) fully replicated on the mesh.

    Every process passes the same values (they derive from the same key); typed keys travel as
    their raw data (``checkpoint.keys_to_data``).

    Args:
      tree: a host-local pytree.
      mesh: the mesh.

    Returns:
      The pytree of global arrays, replicated.

    Examples:
      >>> replicate({"w": np.ones(2)}, make_mesh(2))["w"].sharding.is_fully_replicated
      True
    """
    sharding = NamedSharding(mesh, P())
    placed = jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
        checkpoint.keys_to_data(tree),
    )
    return checkpoint.data_to_keys(placed, tree)


def _check_divisible(global_batch: int, mesh: jax.sharding.Mesh) -> None:
    n = mesh.devices.size
    if global_batch % n:
        raise InputError(f"distributed: batch_size={global_batch} is not divisible by the {n} devices")


def local_rows(mesh: jax.sharding.Mesh, global_batch: int) -> slice:
    """This process's rows of a global batch: its devices' contiguous block of the mesh.

    Args:
      mesh: the mesh.
      global_batch: the batch size over every device.

    Returns:
      A slice of the global batch's rows.

    Raises:
      InputError: the batch does not divide over the devices, or this process's devices are not
        contiguous in the mesh.

    Examples:
      >>> local_rows(make_mesh(2), 8)
      slice(0, 8, None)
    """
    _check_divisible(global_batch, mesh)
    per_device = global_batch // mesh.devices.size
    mine = [i for i, d in enumerate(mesh.devices.flat) if d.process_index == jax.process_index()]
    if mine != list(range(mine[0], mine[-1] + 1)):
        raise InputError("distributed.local_rows: each process's devices must be contiguous in the mesh")
    return slice(mine[0] * per_device, (mine[-1] + 1) * per_device)


def shard_batch(local: Any, mesh: jax.sharding.Mesh, *, global_batch: int, axis: int = 0) -> jax.Array:
    """A global array sharded along ``axis`` from this process's rows (``local_rows``) of it.

    With one process ``local`` is the whole batch. Uses ``jax.make_array_from_process_local_data``,
    so the same call works after ``jax.distributed.initialize``.

    Args:
      local: this process's rows.
      mesh: the mesh.
      global_batch: the batch size over every device.
      axis: the batch axis.

    Returns:
      The global array, sharded on ``"data"`` along ``axis``.

    Examples:
      >>> shard_batch(np.zeros((8, 3)), make_mesh(2), global_batch=8).shape
      (8, 3)
    """
    local = np.asarray(local)
    spec = [None] * local.ndim
    spec[axis] = AXIS
    shape = list(local.shape)
    shape[axis] = global_batch
    return jax.make_array_from_process_local_data(NamedSharding(mesh, P(*spec)), local, tuple(shape))


def replicate_for_pmap(tree: Any, num_devices: int) -> Any:
    """Stacks ``num_devices`` copies of a pytree along a new leading axis (the pmap layout).

    Args:
      tree: a pytree.
      num_devices: copies.

    Returns:
      The stacked pytree (``state.take(stacked, 0)`` is a copy).

    Examples:
      >>> replicate_for_pmap(jnp.zeros(3), 2).shape
      (2, 3)
    """
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_devices,) + jnp.shape(x)), tree)


def initialize(
    coordinator: str | None = None,
    *,
    num_processes: int | None = None,
    process_id: int | None = None,
    timeout_s: int = 300,
    local_only: bool = False,
) -> None:
    """Joins a multi-process run through ``jax.distributed.initialize`` (gloo collectives on CPU).

    Arguments left None come from the environment: ``JAX_COORDINATOR_ADDRESS``,
    ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, else JAX's cluster auto-detection (SLURM, Open MPI,
    Cloud TPU, ...). Call it before any other JAX call. A process whose peers never arrive is
    aborted by the runtime after ``timeout_s`` (it does not raise).

    Args:
      coordinator: ``HOST:PORT`` of process 0's coordinator service.
      num_processes: processes of the run.
      process_id: this process's index.
      timeout_s: seconds to wait for the peers.
      local_only: bind the coordinator to ``coordinator``'s own address (e.g. 127.0.0.1) instead of
        every interface: for single-machine tests.

    Returns:
      None; afterwards ``jax.devices()`` lists every process's devices.

    Raises:
      InputError: a malformed ``coordinator``, ``num_processes`` or ``process_id``.

    Examples:
      On each of two machines (``$I`` is 0 or 1; the CLI's ``--coordinator``):

      >>> initialize("10.0.0.1:1234", num_processes=2, process_id=I)  # doctest: +SKIP
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is None and os.environ.get("JAX_NUM_PROCESSES"):
        num_processes = int(os.environ["JAX_NUM_PROCESSES"])
    if process_id is None and os.environ.get("JAX_PROCESS_ID"):
        process_id = int(os.environ["JAX_PROCESS_ID"])
    where = "distributed.initialize"
    if coordinator is not None and ":" not in coordinator:
        raise InputError(f"{where}: coordinator={coordinator!r} must be HOST:PORT")
    if num_processes is not None and num_processes < 1:
        raise InputError(f"{where}: num_processes={num_processes} must be >= 1")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise InputError(f"{where}: process_id={process_id} must be in [0, {num_processes})")
    kwargs = {"initialization_timeout": int(timeout_s)}
    if local_only and coordinator is not None:
        kwargs["coordinator_bind_address"] = coordinator
    jax.distributed.initialize(coordinator, num_processes, process_id, **kwargs)


def to_host_local(x: Any) -> Any:
    """A replicated global array as a plain single-device array of this process.

    Args:
      x: an array (replicated over a mesh, possibly spanning processes).

    Returns:
      A copy on this process's first device.

    Examples:
      >>> to_host_local(replicate(np.ones(2), make_mesh(2))).sharding.is_fully_replicated
      True
    """
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_shards[0].data
    return jax.device_put(x, jax.local_devices()[0])
