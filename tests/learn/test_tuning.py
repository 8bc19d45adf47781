"""The trainers' measured defaults: the mode rule, microbatches, conv kernels."""

import pytest

from latentjax.errors import InputError
from latentjax.learn import _onednn as onednn
from latentjax.learn import models, tuning

CFG = models.Config(arch="mlp", image_shape=(16, 16, 1), latent_dim=3, hidden=32)


def test_default_microbatches():
    conv = CFG._replace(arch="conv")
    assert tuning.default_microbatches(conv, 256, "cpu") == 2
    assert tuning.default_microbatches(conv, 128, "cpu") == 1
    assert tuning.default_microbatches(conv, 257, "cpu") == 1
    assert tuning.default_microbatches(conv, 256, "gpu") == 1
    assert tuning.default_microbatches(CFG, 1024, "cpu") == 1


def test_default_conv_kernels():
    conv = models.Config(arch="conv")
    assert tuning.default_conv_kernels(conv, "gpu") == "xla"
    assert tuning.default_conv_kernels(models.Config(arch="mlp"), "cpu") == "xla"
    assert tuning.default_conv_kernels(conv._replace(compute_dtype="bfloat16"), "cpu") == "xla"
    assert tuning.default_conv_kernels(conv, "cpu") == ("onednn" if onednn.available() else "xla")


def test_choose_mode():
    conv = CFG._replace(arch="conv")
    assert tuning.choose_mode("auto", CFG) == "scan"
    assert tuning.choose_mode("auto", conv) == "loop"  # the tests run on CPU
    assert tuning.choose_mode("auto", CFG, nbytes=10, device_bytes_limit=5) == "host"
    assert tuning.choose_mode("auto", CFG, nbytes=10, device_bytes_limit=50) == "scan"
    assert tuning.choose_mode("loop", CFG) == "loop"
    with pytest.raises(InputError, match="mode must be one of"):
        tuning.choose_mode("host", CFG)  # no host mode without a device_bytes_limit
    with pytest.raises(InputError, match="mode must be one of"):
        tuning.choose_mode("fast", CFG, device_bytes_limit=5)
