"""The tests' fixtures: a ``key``, the real data directory, scripts of experiments and benchmarks."""

import importlib.util
import os
import pathlib

import jax
import pytest


@pytest.fixture
def key():
    return jax.random.key(0)


def _data_dir():
    d = os.environ.get("LATENTJAX_DATA_DIR")
    if d and pathlib.Path(d).is_dir():
        return pathlib.Path(d)
    guess = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    return guess if guess.is_dir() else None


@pytest.fixture(scope="session")
def data_dir():
    """The real data directory, or skip with the reason."""
    d = _data_dir()
    if d is None:
        pytest.skip("real data not found: set LATENTJAX_DATA_DIR (CI sets ../shared/data)")
    return d


@pytest.fixture(scope="session")
def load_script():
    """Imports a script of ``experiments/`` or ``benchmarks/`` as a module: ``load_script(name)``."""
    root = pathlib.Path(__file__).resolve().parents[1]

    def load(name: str, folder: str = "experiments"):
        spec = importlib.util.spec_from_file_location(name, root / folder / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
