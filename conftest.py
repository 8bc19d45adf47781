"""Strict set-up for the tests and the doctests: several CPU devices, rank promotion raises.

The doctests of ``latentjax/`` run under it too (``--doctest-modules``); ``tests/conftest.py`` holds
the tests' fixtures.
"""

import os
import shutil
import tempfile

# Must happen before JAX initialises its backends.
os.environ.setdefault("XLA_FLAGS", "")

# One XLA compilation cache for the whole run, fresh each time, shared by pytest-xdist's workers and
# by the processes the tests start (they inherit the environment). Many tests compile the same
# programs (a train step, a t-SNE epoch), and `_release_compiled_programs` drops the in-memory ones
# after every module; from the second time on an executable is read back instead of compiled.
# The kill -9 and resume test restarts ``latentjax train`` a dozen times: 130 s without, 75 s with.
# ``LATENTJAX_TEST_COMPILE_CACHE=0`` turns it off; a cache directory set by the caller is kept.
_OWN_CACHE = None
_WANT_CACHE = os.environ.get("LATENTJAX_TEST_COMPILE_CACHE", "1") != "0"
if _WANT_CACHE and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE = tempfile.mkdtemp(prefix="latentjax-xla-cache-")
    os.environ.update(
        JAX_COMPILATION_CACHE_DIR=_OWN_CACHE,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
    )
import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 4)
jax.config.update("jax_numpy_rank_promotion", "raise")

import gc  # noqa: E402

import pytest  # noqa: E402


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


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
