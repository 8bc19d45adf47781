"""The PyTorch peers of latentjax's MLP and conv VAEs, layer for layer.

Imported by ``train_throughput.py`` only; needs ``pip install -e '.[bench]'``. Same layer shapes,
activation, Bernoulli (sigmoid cross-entropy) likelihood, closed-form KL, one reparameterised
sample per example, mean negative ELBO over the batch and Adam, as ``latentjax.learn.models`` /
``latentjax.learn.train``. Convolutions use PyTorch's NCHW layout with ``channels_last`` memory
(its faster CPU path: the conv VAE at 1.8k instead of 1.5k images per CPU-second).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {"relu": nn.ReLU, "swish": nn.SiLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh}


def _num_downsamples(h: int, w: int) -> int:
    """As ``latentjax.learn._networks._num_downsamples``."""
    n = 2
    while (
        min(h, w) // 2 ** (n + 1) >= 4
        and max(h, w) // 2**n > 8
        and h % 2 ** (n + 1) == 0
        and w % 2 ** (n + 1) == 0
    ):
        n += 1
    return n


class VAE(nn.Module):
    """``forward(x_uint8, eps) -> mean negative ELBO``; ``x`` is ``(b, c, h, w)`` uint8."""

    def __init__(self, config):
        super().__init__()
        h, w, c = config.image_shape
        act = ACTIVATIONS[config.activation]
        d = config.latent_dim
        self.latent_dim = d
        self.beta = 1.0
        if config.arch == "mlp":
            dims = [h * w * c] + [config.hidden] * config.depth
            enc = [m for a, b in zip(dims[:-1], dims[1:]) for m in (nn.Linear(a, b), act())]
            self.encoder = nn.Sequential(nn.Flatten(), *enc, nn.Linear(dims[-1], 2 * d))
            ddims = [d] + [config.hidden] * config.depth
            dec = [m for a, b in zip(ddims[:-1], ddims[1:]) for m in (nn.Linear(a, b), act())]
            self.decoder = nn.Sequential(*dec, nn.Linear(ddims[-1], h * w * c), nn.Unflatten(1, (c, h, w)))
        else:
            n = _num_downsamples(h, w)
            chans = [c] + [config.channels * 2**i for i in range(n)]
            enc = [
                m
                for a, b in zip(chans[:-1], chans[1:])
                for m in (nn.Conv2d(a, b, 3, stride=2, padding=1), act())
            ]
            flat = (h // 2**n) * (w // 2**n) * chans[-1]
            self.encoder = nn.Sequential(
                *enc, nn.Flatten(), nn.Linear(flat, config.hidden), act(), nn.Linear(config.hidden, 2 * d)
            )
            up = chans[1:][::-1]  # e.g. 64, 32
            outs = up[1:] + [up[-1]]
            start = (up[0], h // 2**n, w // 2**n)
            dec = [
                nn.Linear(d, config.hidden),
                act(),
                nn.Linear(config.hidden, math.prod(start)),
                act(),
                nn.Unflatten(1, start),
            ]
            for a, b in zip(up, outs):  # sub-pixel upsampling: conv to 4x channels, then depth-to-space
                dec += [nn.Conv2d(a, 4 * b, 3, padding=1), nn.PixelShuffle(2), act()]
            self.decoder = nn.Sequential(*dec, nn.Conv2d(outs[-1], c, 3, padding=1))

    def forward(self, images: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The batch's mean negative ELBO, with the reparameterisation noise ``eps`` given."""
        x = images.float() / 255.0
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        z = mean + torch.exp(0.5 * log_var) * eps
        logits = self.decoder(z)
        log_px = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (torch.exp(log_var) + mean**2 - 1.0 - log_var).sum(1)
        return -(log_px - self.beta * kl).mean()


def make_step(config, *, learning_rate: float = 1e-3, compile: bool = False, seed: int = 0):
    """``(model, step)``: ``step(images_uint8_nchw) -> loss`` does one Adam update."""
    torch.manual_seed(seed)
    model = VAE(config)
    if config.arch == "conv":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = torch.compile(model) if compile else model
    d = config.latent_dim

    def step(images: torch.Tensor) -> torch.Tensor:
        if config.arch == "conv":
            images = images.contiguous(memory_format=torch.channels_last)
        eps = torch.randn(images.shape[0], d)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(images, eps)
        loss.backward()
        opt.step()
        return loss

    return model, step
