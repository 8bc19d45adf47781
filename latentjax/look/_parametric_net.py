"""The parametric maps' networks (``MLP``) and the fitted map (``ParametricMap``) with its arrays.

``parametric`` trains them; ``maps`` re-exports ``ParametricMap`` and saves it through
``_map_store`` as plain arrays (``to_arrays``) and JSON parameters, rebuilt by ``from_arrays``.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class MLP(nnx.Module):
    """A ReLU multilayer perceptron ``d_in -> widths... -> d_out`` with a linear output layer.

    umap-learn's ParametricUMAP encoder and decoder are this with ``widths=(100, 100, 100)``.

    Args:
      d_in: input width.
      d_out: output width.
      widths: hidden layer widths.
      rngs: ``nnx.Rngs`` for the initial weights (LeCun normal kernels, zero biases).

    Examples:
      >>> MLP(5, 2, widths=(8, 8), rngs=nnx.Rngs(0))(jnp.zeros((3, 5))).shape
      (3, 2)
    """

    def __init__(self, d_in: int, d_out: int, *, widths: tuple[int, ...], rngs: nnx.Rngs):
        sizes = (d_in, *widths, d_out)
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs, param_dtype=jnp.float32) for a, b in zip(sizes[:-1], sizes[1:])]
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


def widths_of(net: MLP) -> tuple[int, ...]:
    """The hidden widths of ``net`` (its layers' output widths but the last)."""
    return tuple(int(layer.kernel.shape[1]) for layer in net.layers[:-1])


class ParametricMap(NamedTuple):
    """A parametric t-SNE or UMAP map: an encoder to the map and, optionally, a decoder back.

    The networks see standardised inputs ``(x - shift) / scale``; ``parametric.transform`` and
    ``parametric.inverse_transform`` (and ``maps.transform``, ``maps.inverse_transform``) apply it.

    Attributes:
      method: ``"umap"`` or ``"tsne"``, the loss the encoder was trained on.
      encoder: the ``MLP`` ``d -> num_components``.
      decoder: the ``MLP`` ``num_components -> d`` trained jointly (reconstruction of the
        standardised inputs), or None.
      shift: ``(d,)`` the training inputs' mean.
      scale: scalar, their standard deviation over all entries.
      a: UMAP's kernel parameter (``umap.find_ab``); 1 for t-SNE.
      b: UMAP's kernel parameter; 1 for t-SNE.

    Examples:
      >>> enc = MLP(4, 2, widths=(8,), rngs=nnx.Rngs(0))
      >>> ParametricMap("umap", enc, None, np.zeros(4), np.float32(1.0), 1.58, 0.9).method
      'umap'
    """

    method: str
    encoder: MLP
    decoder: MLP | None
    shift: jax.Array
    scale: jax.Array
    a: float
    b: float


def to_arrays(fitted: ParametricMap) -> tuple[dict[str, np.ndarray], dict]:
    """``fitted`` as named numpy arrays and JSON parameters (what ``from_arrays`` reads back)."""
    arrays = {"shift": np.asarray(fitted.shift), "scale": np.asarray(fitted.scale)}
    params = {"method": fitted.method, "a": float(fitted.a), "b": float(fitted.b)}
    for name in ("encoder", "decoder"):
        net = getattr(fitted, name)
        params[f"{name}_widths"] = None if net is None else list(widths_of(net))
        if net is None:
            continue
        for i, layer in enumerate(net.layers):
            arrays[f"{name}.{i}.kernel"] = np.asarray(layer.kernel[...])
            arrays[f"{name}.{i}.bias"] = np.asarray(layer.bias[...])
    return arrays, params


def from_arrays(arrays: dict[str, np.ndarray], params: dict) -> ParametricMap:
    """The ``ParametricMap`` that ``to_arrays`` wrote (raises ``KeyError`` on a missing array)."""
    nets = {}
    for name in ("encoder", "decoder"):
        widths = params[f"{name}_widths"]
        if widths is None:
            nets[name] = None
            continue
        first, last = arrays[f"{name}.0.kernel"], arrays[f"{name}.{len(widths)}.kernel"]
        net = MLP(first.shape[0], last.shape[1], widths=tuple(widths), rngs=nnx.Rngs(0))
        for i, layer in enumerate(net.layers):
            layer.kernel[...] = jnp.asarray(arrays[f"{name}.{i}.kernel"], jnp.float32)
            layer.bias[...] = jnp.asarray(arrays[f"{name}.{i}.bias"], jnp.float32)
        nets[name] = net
    return ParametricMap(
        params["method"],
        nets["encoder"],
        nets["decoder"],
        jnp.asarray(arrays["shift"]),
        jnp.asarray(arrays["scale"]),
        float(params["a"]),
        float(params["b"]),
    )
