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
    return _add_bias(_conv3x3(x.astype(dt), layer.kernel[...].astype(dt), stride), layer.bias[...])


def _conv3x3(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """The SAME 3x3 convolution of one image without bias: oneDNN inside ``_onednn.enabled()``."""
    if onednn.active() and x.dtype == jnp.float32 and kernel.dtype == jnp.float32:
        return onednn.conv(x, kernel, stride)
    return jax.lax.conv_general_dilated(
        x[None], kernel, (stride, stride), "SAME", dimension_numbers=onednn.DIMENSION_NUMBERS
    )[0]


def conv_strided(layer: nnx.Conv, x: jax.Array) -> jax.Array:
    """``layer(x)`` for a stride-2 SAME ``nnx.Conv`` of any kernel size, on one ``(h, w, c)`` image.

    The bias is added as in ``conv`` (``_add_bias``).

    Examples:
      >>> layer = nnx.Conv(1, 2, kernel_size=(4, 4), strides=(2, 2), rngs=nnx.Rngs(0))
      >>> conv_strided(layer, jnp.ones((8, 8, 1))).shape
      (4, 4, 2)
    """
    dt = layer.dtype or x.dtype
    y = jax.lax.conv_general_dilated(
        x.astype(dt)[None],
        layer.kernel[...].astype(dt),
        (2, 2),
        "SAME",
        dimension_numbers=onednn.DIMENSION_NUMBERS,
    )[0]
    return _add_bias(y, layer.bias[...])


# _PHASE_TAPS[a, i, t] = 1: output phase a of a 4-tap stride-2 SAME transposed convolution reads
# kernel tap t at input offset i - 1 (phase 0: taps 0, 2 at offsets -1, 0; phase 1: taps 1, 3 at 0, +1).
_PHASE_TAPS = np.zeros((2, 3, 4), np.float32)
_PHASE_TAPS[0, 0, 0] = _PHASE_TAPS[0, 1, 2] = _PHASE_TAPS[1, 1, 1] = _PHASE_TAPS[1, 2, 3] = 1.0


def conv_transpose_4x4(layer: nnx.ConvTranspose, x: jax.Array) -> jax.Array:
    """``layer(x)`` for a 4x4 stride-2 SAME ``nnx.ConvTranspose``, on one ``(h, w, c)`` map.

    Computed as a stride-1 3x3 convolution to ``4 co`` channels (each output phase's 2x2 taps of
    the kernel, ``_PHASE_TAPS``) followed by ``depth_to_space``: the same parameters and values, but
    no stride-2 transposed convolution, whose weight gradient is a slow path on XLA:CPU (see
    ``_networks.ConvDecoder``), and the 3x3 convolution goes to oneDNN inside ``_onednn.enabled()``.

    Args:
      layer: an ``nnx.ConvTranspose`` with a ``(4, 4, c, co)`` kernel, strides 2, SAME padding.
      x: one feature map ``(h, w, c)``.

    Returns:
      ``(2 h, 2 w, co)``.

    Examples:
      >>> layer = nnx.ConvTranspose(2, 3, kernel_size=(4, 4), strides=(2, 2), rngs=nnx.Rngs(0))
      >>> x = jax.random.normal(jax.random.key(1), (4, 4, 2))
      >>> bool(jnp.allclose(conv_transpose_4x4(layer, x), layer(x), atol=1e-5))
      True
    """
    dt = layer.dtype or x.dtype
    kernel = layer.kernel[...].astype(dt)
    ci, co = kernel.shape[2:]
    taps = jnp.asarray(_PHASE_TAPS, dt)
    w3 = jnp.einsum("aiu,bjv,uvcd->ijcabd", taps, taps, kernel).reshape(3, 3, ci, 4 * co)
    y = depth_to_space(_conv3x3(x.astype(dt), w3, 1))
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
