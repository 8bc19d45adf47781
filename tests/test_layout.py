"""The package's structure holds: strict layering (no import cycles, no function-level imports that
dodge one), exceptions only in ``errors.py``, ``import latentjax`` without JAX, and ruff clean."""

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "latentjax"


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _imports(path: pathlib.Path, known: set[str]):
    """``(target, top_level)`` for every latentjax module ``path`` imports."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` blocks count as top level too
        if isinstance(node, ast.If):
            top |= {id(n) for n in node.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("latentjax"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield (sub if sub in known else node.module), id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("latentjax"):
                    yield alias.name, id(node) in top


def _graph():
    mods = _modules()
    known = set(mods)
    return {m: {t for t, _ in _imports(p, known) if t != m} for m, p in mods.items()}


def _cycle(graph):
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (c := visit(t)):
                return c
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ re-exporting its private files is not a cycle with them
    for m in graph:
        graph[m] = {t for t in graph[m] if not m.startswith(t + ".")}
    assert _cycle(graph) is None


def test_library_imports_only_at_module_level():
    """Only the application may import lazily (the console script starts fast)."""
    mods = _modules()
    lazy = [
        f"{m} imports {t} inside a function"
        for m, p in mods.items()
        if not m.startswith("latentjax.app")
        for t, top in _imports(p, set(mods))
        if not top
    ]
    assert lazy == []


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("latentjax.learn.models", "latentjax.learn.train"),
        ("latentjax.learn.checkpoint", "latentjax.learn.models"),
        ("latentjax.learn.checkpoint", "latentjax.learn.runs"),
        ("latentjax.learn.runs", "latentjax.learn.train"),
        ("latentjax.learn.train", "latentjax.learn.parallel"),
        ("latentjax.learn.train", "latentjax.learn.population"),
        ("latentjax.learn.parallel", "latentjax.learn.population"),
    ],
)
def test_layering(lower, higher):
    """``lower`` never reaches ``higher`` through any chain of imports."""
    graph = _graph()
    seen, todo = set(), [lower]
    while todo:
        m = todo.pop()
        for t in graph.get(m, ()):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    assert higher not in seen


def test_the_library_never_imports_the_application():
    graph = _graph()
    bad = [
        (m, t)
        for m, ts in graph.items()
        if not m.startswith("latentjax.app")
        for t in ts
        if "latentjax.app" in t
    ]
    assert bad == []


def test_exceptions_are_defined_only_in_errors():
    found = []
    for m, p in _modules().items():
        if m == "latentjax.errors":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and (b.id.endswith("Error") or b.id.endswith("Exception"))
                for b in node.bases
            ):
                found.append(f"{m}.{node.name}")
    assert found == []


def test_import_latentjax_imports_no_jax():
    code = "import sys, latentjax; print(sorted(m for m in ('jax', 'numpy', 'flax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _ruff():
    exe = shutil.which("ruff") or str(pathlib.Path(sys.executable).with_name("ruff"))
    if not pathlib.Path(exe).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return exe


def test_code_is_formatted_by_ruff():
    r = subprocess.run([_ruff(), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_code_passes_ruff_check():
    r = subprocess.run([_ruff(), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
