"""UMAP's layout with progress: the same steps as ``_umap_kernels.run``, in chunks of epochs.

Between chunks the host updates a tqdm bar (``progress=True``) or calls ``progress(step, info)``.
The chunk's bounds are traced, so the loop compiles once for every chunk length; without progress
``umap.optimize`` runs ``_umap_kernels.run`` and nothing here.
"""

import functools
import sys

import jax
import tqdm

from latentjax.errors import InputError
from latentjax.look import _umap_kernels

# Epochs per chunk: a bar update costs one host round trip (~0.1 ms), an epoch 1-50 ms.
CHUNK = 10


@functools.partial(jax.jit, static_argnames=("num_steps",))
def _chunk(yt, epoch, stop, key, sched, a, b, gamma, learning_rate, *, num_steps):
    def body(_, carry):
        return _umap_kernels.layout_step(*carry, key, sched, a, b, gamma, learning_rate, num_steps)

    return jax.lax.fori_loop(epoch, stop, body, (yt, epoch))


def callback(progress, *, where: str):
    """``progress`` checked: None when off, else a callable ``(step, info)`` (True: a tqdm bar)."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return _Bar()
    if not callable(progress):
        raise InputError(f"{where}: progress must be a bool or a callable(step, info), got {type(progress)}")
    return progress


class _Bar:
    """A tqdm bar over the epochs, opened at the first report and closed at the last."""

    def __init__(self):
        self.bar = None

    def __call__(self, step, info):
        if self.bar is None:
            self.bar = tqdm.tqdm(total=info["num_steps"], desc="look.umap", unit="epoch", file=sys.stderr)
        self.bar.update(step - self.bar.n)
        if step >= info["num_steps"]:
            self.bar.close()


def run(yt, epoch, key, sched, a, b, gamma, learning_rate, *, num_steps, report):
    """``_umap_kernels.run`` in chunks of ``CHUNK`` epochs, ``report(step, info)`` after each."""
    start = int(epoch)
    for stop in range(start + CHUNK, start + num_steps + CHUNK, CHUNK):
        stop = min(stop, start + num_steps)
        if _umap_kernels.native(yt, sched):  # the same epochs as _umap_kernels.run, in its kernel
            count = stop - int(epoch)
            hyper = (a, b, gamma, learning_rate)
            yt, epoch = _umap_kernels.native_epochs(
                yt, epoch, key, sched, *hyper, count=count, num_steps=num_steps
            )
        else:
            yt, epoch = _chunk(yt, epoch, stop, key, sched, a, b, gamma, learning_rate, num_steps=num_steps)
        jax.block_until_ready(yt)
        report(stop, {"num_steps": num_steps, "embedding": yt.T})
    return yt, epoch
