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

import gc  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drops JAX's compiled programs after each module (test file or doctest module).

    Every XLA:CPU executable keeps about a dozen memory mappings of JIT code alive while it is
    cached, and the suite compiles thousands of them: one process passed the kernel's default
    ``vm.max_map_count`` (65,530) about two thirds of the way through, where LLVM aborts the next
    compilation (CI: exit 134 in ``backend_compile_and_load``). Clearing the caches between modules
    unmaps them; a module recompiles only what it uses.
    """
    yield
    jax.clear_caches()
    gc.collect()
