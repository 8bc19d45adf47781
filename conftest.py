"""Strict set-up for the tests and the doctests: several CPU devices, rank promotion raises.

The doctests of ``latentjax/`` run under it too (``--doctest-modules``); ``tests/conftest.py`` holds
the tests' fixtures.
"""

import os

# Must happen before JAX initialises its backends.
os.environ.setdefault("XLA_FLAGS", "")
import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 4)
jax.config.update("jax_numpy_rank_promotion", "raise")
