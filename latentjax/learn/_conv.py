"""The conv models' 3x3 layers in the forms XLA:CPU trains fastest, and the oneDNN dispatch.

The layers are computed from ``nnx.Conv`` parameters; inside ``_onednn.enabled()`` (which
``train.make_step`` enters) float32 convolutions go to oneDNN. Each function computes exactly
what the plain ``nnx.Conv`` layer computes (same parameters, same checkpoints); the forms were
measured on the conv VAE step at batch 256 on 2 cores.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from latentjax.learn import _onednn as onednn


def depth_to_space(x: jax.Array, factor: int = 2) -> jax.Array:
    """The sub-pixel upsampling of Shi et al. 2016: ``(..., h, w, f*f*c) -> (..., f*h, f*w, c)``.

    Args:
      x: feature maps ``(..., h, w, factor**2 * c)``.
      factor: the upsampling factor.

    Returns:
      ``(..., factor * h, factor * w, c)``.

    Examples:
      >>> depth_to_space(jnp.zeros((4, 4, 12))).shape
      (8, 8, 3)
    """
    h, w, c4 = x.shape[-3:]
    c = c4 // (factor * factor)
    lead = x.shape[:-3]
    x = x.reshape(*lead, h, w, factor, factor, c)
    x = jnp.swapaxes(x, -4, -3)  # (h, f, w, f, c)
    return x.reshape(*lead, h * factor, w * factor, c)


def _add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    """``y + bias`` over the channel axis of one ``(h, w, c)`` feature map.

    The bias is broadcast by a dot with a ones column, so that its gradient is a dot too. The
    plain broadcast's gradient is a reduce over (batch, h, w) once vmapped, which XLA:CPU's
    tree-reduction rewrite turns into a slow reduce-window (41 of 213 ms in the conv VAE step).
    Linear in ``bias``, so forward- and reverse-mode both work.
    """
    h, w, c = y.shape
    ones = jnp.ones((h * w, 1), y.dtype)
    return y + jax.lax.dot_general(ones, bias.astype(y.dtype)[None], (((1,), (0,)), ((), ()))).reshape(
        h, w, c
    )


def conv(layer: nnx.Conv, x: jax.Array, stride: int = 1) -> jax.Array:
    """``layer(x)`` for a 3x3 ``nnx.Conv`` with SAME padding, on one ``(h, w, c)`` image.

    Inside ``_onednn.enabled()`` a float32 convolution runs through oneDNN's kernels.

    Args:
      layer: the ``nnx.Conv`` whose kernel ``(3, 3, c, co)`` and bias ``(co,)`` are used.
      x: one feature map ``(h, w, c)``.
      stride: 1, or 2 to downsample.

    Returns:
      ``(ceil(h / stride), ceil(w / stride), co)``, as ``layer`` computes it.

    Examples:
      >>> layer = nnx.Conv(2, 4, kernel_size=(3, 3), strides=(2, 2), rngs=nnx.Rngs(0))
      >>> conv(layer, jnp.ones((8, 8, 2)), 2).shape
      (4, 4, 4)
    """
    dt = layer.dtype or x.dtype
    x, kernel = x.astype(dt), layer.kernel[...].astype(dt)
    if onednn.active() and x.dtype == jnp.float32 and kernel.dtype == jnp.float32:
        y = onednn.conv(x, kernel, stride)
    else:
        y = jax.lax.conv_general_dilated(
            x[None], kernel, (stride, stride), "SAME", dimension_numbers=onednn.DIMENSION_NUMBERS
        )[0]
    return _add_bias(y, layer.bias[...])


def _tap_selector(channels: int, dtype) -> jax.Array:
    """The fixed one-hot ``(3, 3, 9 c, c)`` kernel that adds up 9 shifted taps.

    Output channel ``o`` at a pixel sums, over the taps ``(i, j)``, input channel ``9 o + 3 i + j``
    at the pixel shifted by ``(i - 1, j - 1)``.
    """
    sel = np.zeros((3, 3, 9 * channels, channels), np.float32)
    for o in range(channels):
        for i in range(3):
            for j in range(3):
                sel[i, j, 9 * o + 3 * i + j, o] = 1.0
    return jnp.asarray(sel, dtype)


def _conv_after_subpixel(layer: nnx.Conv, a: jax.Array) -> jax.Array:
    """``layer(depth_to_space(a))`` without building the upsampled ``(2h, 2w, c)`` feature map.

    For a conv whose outputs are few (the image channels). Each tap's contribution is a per-pixel
    dot, so it is taken on ``a``'s sub-pixel layout (``(h, w, 4 c)`` -> ``(h, w, 4, 9 out)``); only
    that small result is shuffled to full resolution, and a fixed one-hot 3x3 conv adds the 9
    shifted taps. On XLA:CPU this avoids the transposes of the ``(b, 2h, 2w, c)`` activations (and
    of their gradient) that the conv's weight gradient otherwise needs: the conv VAE step went from
    213 to ~175 ms.
    """
    dt = layer.dtype or a.dtype
    h, w, c4 = a.shape
    kernel = layer.kernel[...].astype(dt)
    kh, kw, cin, cout = kernel.shape
    taps = kernel.transpose(2, 3, 0, 1).reshape(cin, cout * kh * kw)  # column 9 o + 3 i + j
    z = a.astype(dt).reshape(h, w, 4, cin) @ taps  # (h, w, 4, 9 out): the sub-pixels' tap values
    z = depth_to_space(z.reshape(h, w, 4 * cout * kh * kw))  # (2h, 2w, 9 out)
    sel = _tap_selector(cout, dt)
    y = jax.lax.conv_general_dilated(z[None], sel, (1, 1), "SAME", dimension_numbers=onednn.DIMENSION_NUMBERS)
    return _add_bias(y[0], layer.bias[...])


def conv_upsampled(layer: nnx.Conv, a: jax.Array) -> jax.Array:
    """``layer(depth_to_space(a))``: the decoder's last conv, on the upsampled map.

    XLA:CPU computes it on ``a``'s sub-pixel layout (``_conv_after_subpixel``); oneDNN's kernels
    are fast on the upsampled map itself, so inside ``_onednn.enabled()`` it is built.

    Args:
      layer: a 3x3 ``nnx.Conv`` with ``c`` input channels.
      a: one feature map ``(h, w, 4 c)``.

    Returns:
      ``(2 h, 2 w, co)``.

    Examples:
      >>> layer = nnx.Conv(2, 3, kernel_size=(3, 3), rngs=nnx.Rngs(0))
      >>> conv_upsampled(layer, jnp.ones((4, 4, 8))).shape
      (8, 8, 3)
    """
    if onednn.active():
        return conv(layer, depth_to_space(a))
    return _conv_after_subpixel(layer, a)
