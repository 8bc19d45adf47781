"""Every CPU-only choice is off on other platforms: each chooser asked with "cpu", "gpu" and "tpu".

The choosers: ``tuning.choose_mode`` (the conv loop mode), ``tuning.default_microbatches``,
``tuning.default_conv_kernels``, ``_onednn.available`` (oneDNN kernels), ``_tsne_native.available``
(t-SNE's attraction kernel), ``_umap_native.available`` (UMAP's layout kernel),
``_knn_native.available`` (the kNN candidate kernel), ``_xla.compiler_options`` (XLA:CPU options)
and ``models.compute_dtype("auto")``. A scan of the package proves the list is whole: every read of
the backend sits in a function that takes it as ``backend``.
"""

import ast
import pathlib

import pytest

from latentjax.learn import _onednn, _xla, models, tuning
from latentjax.look import _knn_native, _tsne_native, _umap_native

PKG = pathlib.Path(__file__).resolve().parents[2] / "latentjax"
CONV = models.Config(arch="conv")
MLP = models.Config(arch="mlp")
BACKENDS = ("cpu", "gpu", "tpu")
pytestmark = pytest.mark.accelerator  # on an accelerator, the defaults are that backend's choices


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_chooser_keeps_cpu_choices_to_cpu(backend):
    cpu = backend == "cpu"
    assert tuning.choose_mode("auto", CONV, backend=backend) == ("loop" if cpu else "scan")
    assert tuning.choose_mode("auto", MLP, backend=backend) == "scan"
    assert tuning.choose_mode("scan", CONV, backend=backend) == "scan"  # an explicit mode is kept
    assert tuning.default_microbatches(CONV, 256, backend) == (2 if cpu else 1)
    assert tuning.default_microbatches(MLP, 256, backend) == 1
    assert _onednn.available(backend) == (cpu and _onednn.available("cpu"))
    if not cpu:
        assert "CPU kernels" in _onednn.unavailable_reason(backend)
    assert _tsne_native.available(backend) == (cpu and _tsne_native.available("cpu"))
    assert _umap_native.available(backend) == (cpu and _umap_native.available("cpu"))
    assert _knn_native.available(backend) == (cpu and _knn_native.available("cpu"))
    assert tuning.default_conv_kernels(CONV, backend) == ("onednn" if _onednn.available(backend) else "xla")
    assert tuning.default_conv_kernels(MLP, backend) == "xla"
    options = _xla.compiler_options(backend)
    assert options is None if not cpu else (options is None or set(options) == set(_xla._CPU_OPTIONS))
    assert models.compute_dtype("auto", backend=backend) == ("float32" if cpu else "bfloat16")
    assert models.compute_dtype("fp32", backend=backend) == "float32"


def test_the_defaults_are_the_current_backend():
    import jax

    here = jax.default_backend()
    assert tuning.choose_mode("auto", CONV) == tuning.choose_mode("auto", CONV, backend=here)
    assert tuning.default_microbatches(CONV, 256) == tuning.default_microbatches(CONV, 256, here)
    assert tuning.default_conv_kernels(CONV) == tuning.default_conv_kernels(CONV, here)
    assert _xla.compiler_options() == _xla.compiler_options(here)
    assert models.compute_dtype() == models.compute_dtype(backend=here)
    assert _onednn.available() == _onednn.available(here)
    assert _tsne_native.available() == _tsne_native.available(here)
    assert _umap_native.available() == _umap_native.available(here)
    assert _knn_native.available() == _knn_native.available(here)


# Reads of the platform that choose nothing: an error message and device records.
DESCRIPTIVE = {
    ("latentjax/learn/distributed.py", "select_devices"),
    ("latentjax/app/demo.py", "device_description"),
    ("latentjax/app/_cmd_eval.py", "nll"),
}


def _platform_reads():
    """``(file, enclosing function, its argument names)`` of every ``jax.default_backend()`` call
    and every ``.platform`` attribute read in the package."""
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text())
        rel = str(path.relative_to(PKG.parent))

        def visit(node, fn, rel=rel):
            if isinstance(node, ast.FunctionDef):
                fn = node
            reads = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "default_backend"
            ) or (
                isinstance(node, ast.Attribute) and node.attr == "platform" and isinstance(node.ctx, ast.Load)
            )
            if reads:
                args = () if fn is None else {a.arg for a in fn.args.args + fn.args.kwonlyargs}
                yield rel, None if fn is None else fn.name, args
            for child in ast.iter_child_nodes(node):
                yield from visit(child, fn, rel)

        yield from visit(tree, None)


def test_every_backend_read_is_a_chooser_with_a_backend_argument():
    reads = list(_platform_reads())
    assert len(reads) >= 6  # tuning (3), _xla, _config, _onednn at least
    bad = [(f, fn) for f, fn, args in reads if (f, fn) not in DESCRIPTIVE and "backend" not in args]
    assert bad == [], f"these read the platform without taking it as an argument `backend`: {bad}"
