"""A model's description: ``Config`` (stored beside every checkpoint) and its compute precision.

Re-exported by ``latentjax.learn.models``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from latentjax.errors import InputError

KINDS = ("vae", "ae")
ARCHS = ("mlp", "conv")
CONV_NETS = ("subpixel", "burgess")
LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATIONS = {
    "relu": jax.nn.relu,
    "swish": jax.nn.swish,
    "elu": jax.nn.elu,
    "gelu": jax.nn.gelu,
    "tanh": jax.numpy.tanh,
}
PRECISIONS = ("auto", "fp32", "bf16")


class Config(NamedTuple):
    """Everything needed to rebuild a model; stored beside every checkpoint.

    Attributes:
      kind: ``"vae"`` (Gaussian posterior, KL to N(0, I)) or ``"ae"`` (deterministic code).
      arch: ``"mlp"`` or ``"conv"``.
      image_shape: ``(h, w, c)`` of one image.
      latent_dim: size of the latent code.
      likelihood: ``"bernoulli"`` (continuous Bernoulli-style cross-entropy on [0, 1] pixels)
        or ``"gaussian"`` (Normal with the mean through a sigmoid and one learned scale,
        the "sigma-VAE" of Rybkin et al. 2021).
      hidden: width of the MLP hidden layers (and of the conv models' dense layer).
      depth: number of hidden layers of the MLP encoder and decoder.
      channels: channels of the first conv layer (doubled at each downsampling).
      activation: one of ``relu``, ``swish``, ``elu``, ``gelu``, ``tanh``. Smooth activations give
        smooth decoder metrics (geodesics); ``relu`` matches the classic MLP VAE, ``tanh`` the
        IWAE paper's (Burda et al. 2016).
      compute_dtype: ``"float32"`` or ``"bfloat16"`` (parameters stay float32).
      conv_net: the conv model's layers: ``"subpixel"`` (stride-2 3x3 convolutions, channels
        doubling; a sub-pixel decoder) or ``"burgess"``, the 64x64 network of the disentanglement
        literature (Burgess et al. 2018, appendix A.1; disentanglement_lib's ``conv_encoder`` and
        ``deconv_decoder``): four 4x4 stride-2 convolutions of ``channels``, ``channels``,
        ``2 channels``, ``2 channels`` and a dense layer of ``hidden``; the decoder mirrored with
        4x4 stride-2 transposed convolutions. h and w divisible by 16. The literature's settings
        are ``burgess_config()``: 64x64x1, channels 32, hidden 256, ReLU, latent 10, Bernoulli.

    Examples:
      >>> Config(arch="conv", latent_dim=8).validate().image_shape
      (28, 28, 1)
    """

    kind: str = "vae"
    arch: str = "mlp"
    image_shape: tuple[int, int, int] = (28, 28, 1)
    latent_dim: int = 16
    likelihood: str = "bernoulli"
    hidden: int = 400
    depth: int = 1
    channels: int = 32
    activation: str = "swish"
    compute_dtype: str = "float32"
    conv_net: str = "subpixel"

    def to_json(self) -> dict:
        """The config as a JSON-able dict (``image_shape`` a list), as ``config.json`` stores it.

        Returns:
          A dict of the fields.

        Examples:
          >>> Config().to_json()["image_shape"]
          [28, 28, 1]
        """
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._asdict().items()}

    @classmethod
    def from_json(cls, d: dict) -> Config:
        """The config of a ``to_json`` dict (missing fields take their defaults).

        Args:
          d: a dict of fields.

        Returns:
          The ``Config``.

        Raises:
          InputError: ``d`` has a field ``Config`` does not know.

        Examples:
          >>> Config.from_json({"latent_dim": 2, "image_shape": [8, 8, 1]}).image_shape
          (8, 8, 1)
        """
        unknown = set(d) - set(cls._fields)
        if unknown:
            raise InputError(f"models.Config: unknown model config fields {sorted(unknown)}")
        d = dict(d)
        if "image_shape" in d:
            d["image_shape"] = tuple(int(v) for v in d["image_shape"])
        return cls(**d)

    def validate(self) -> Config:
        """Checks every field.

        Returns:
          The config itself.

        Raises:
          InputError: a field is out of its range (the message names it).

        Examples:
          >>> Config(latent_dim=0).validate()
          Traceback (most recent call last):
          ...
          latentjax.errors.InputError: models.Config: latent_dim must be >= 1, got 0
        """
        where = "models.Config"
        if self.kind not in KINDS:
            raise InputError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.arch not in ARCHS:
            raise InputError(f"{where}: arch must be one of {ARCHS}, got {self.arch!r}")
        if self.likelihood not in LIKELIHOODS:
            raise InputError(f"{where}: likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.activation not in ACTIVATIONS:
            raise InputError(
                f"{where}: activation must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}"
            )
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise InputError(f"{where}: image_shape must be (h, w, c), got {self.image_shape}")
        if self.latent_dim < 1:
            raise InputError(f"{where}: latent_dim must be >= 1, got {self.latent_dim}")
        if self.conv_net not in CONV_NETS:
            raise InputError(f"{where}: conv_net must be one of {CONV_NETS}, got {self.conv_net!r}")
        if self.conv_net == "burgess" and (
            self.arch != "conv" or self.image_shape[0] % 16 or self.image_shape[1] % 16
        ):
            raise InputError(
                f"{where}: conv_net='burgess' needs arch='conv' and h and w divisible by 16, "
                f"got arch={self.arch!r} and {self.image_shape}"
            )
        if self.arch == "conv" and (self.image_shape[0] % 4 or self.image_shape[1] % 4):
            raise InputError(f"{where}: the conv model needs h and w divisible by 4, got {self.image_shape}")
        return self


def burgess_config(**changes) -> Config:
    """The conv VAE of the disentanglement literature for 64x64 binary images (dSprites).

    Burgess et al. 2018 (appendix A.1), Locatello et al. 2019 (disentanglement_lib): the
    ``"burgess"`` conv network, 32-32-64-64 channels, a dense layer of 256, ReLU, 10 latents, a
    Bernoulli likelihood.

    Args:
      changes: fields to change (e.g. ``latent_dim``).

    Returns:
      The ``Config``.

    Examples:
      >>> burgess_config().image_shape, burgess_config(latent_dim=6).latent_dim
      ((64, 64, 1), 6)
    """
    base = Config(
        arch="conv",
        conv_net="burgess",
        image_shape=(64, 64, 1),
        latent_dim=10,
        likelihood="bernoulli",
        hidden=256,
        channels=32,
        activation="relu",
    )
    return base._replace(**changes).validate()


def compute_dtype(precision: str = "auto", *, backend: str | None = None) -> str:
    """The ``Config.compute_dtype`` of a precision (``latentjax train --precision``).

    ``"fp32"``; ``"bf16"`` (bf16 matmuls and convolutions; float32 parameters, optimizer state and
    loss); or ``"auto"``: bf16 on GPU/TPU, fp32 on CPU (where bf16 has no fast kernels and only
    adds rounding).

    Args:
      precision: ``"auto"``, ``"fp32"`` or ``"bf16"``.
      backend: the backend ``"auto"`` decides for (default: JAX's default backend).

    Returns:
      ``"float32"`` or ``"bfloat16"``.

    Raises:
      InputError: an unknown ``precision``.

    Examples:
      >>> compute_dtype("auto", backend="gpu")
      'bfloat16'
    """
    if precision not in PRECISIONS:
        raise InputError(f"models.compute_dtype: precision={precision!r}; choose one of {PRECISIONS}")
    if precision == "auto":
        precision = "fp32" if (backend or jax.default_backend()) == "cpu" else "bf16"
    return {"fp32": "float32", "bf16": "bfloat16"}[precision]
