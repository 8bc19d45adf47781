"""Build and register small C++ XLA FFI kernels (CPU only) on first use; cached on disk.

Hand-written CPU kernels stand where XLA:CPU is measurably slow: the conv models' 3x3
convolutions through oneDNN (``learn/_onednn.py``), t-SNE's attractive force
(``look/_tsne_native.py``), UMAP's layout epochs (``look/_umap_native.py``) and the exact kNN's
candidate search (``look/_knn_native.py``). Each ships its ``.cc`` source next to its module; this compiles it
with the system C++ compiler against jaxlib's FFI headers, caches the library under
``$LATENTJAX_CACHE_DIR/kernels`` (default ``~/.cache/latentjax``) by a hash of the source, the
shared headers (``latentjax/*.h``), the flags, the compiler and the JAX version, and registers its
handlers as XLA FFI targets. Every failure is returned as a one-line reason, never raised: the
callers then take XLA's own path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jax


def cache_dir() -> Path:
    """Where built kernels are kept: ``$LATENTJAX_CACHE_DIR/kernels`` or ``~/.cache/latentjax/kernels``."""
    return Path(os.environ.get("LATENTJAX_CACHE_DIR") or Path.home() / ".cache" / "latentjax") / "kernels"


def vector_flags(*, avx512: bool = False) -> list[str]:
    """Compile flags for kernels with vectorisable loops: ``-O3 -ffast-math`` and ``simd_flags``.

    ``-ffast-math`` lets GCC call glibc's vector exp/log (link with ``-lmvec``). It is a compile
    flag only: ``build`` links separately, because linking with it adds ``crtfastmath.o``, which
    sets flush-to-zero for the whole process when the library loads (subnormal floats then read
    as 0 everywhere: hypothesis refused to run). The SIMD flags are part of the cache key
    (``build`` hashes every flag), so a library built for one CPU is never loaded on another.
    """
    return ["-O3", "-ffast-math", *simd_flags(avx512=avx512)]


def simd_flags(*, avx512: bool = False) -> list[str]:
    """``-mavx2 -mfma`` where the CPU has them, and its AVX-512 (F, VL, BW, DQ) too if ``avx512``.

    Examples:
      >>> set(simd_flags()) <= {"-mavx2", "-mfma"}
      True
    """
    try:
        cpu = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        cpu = set()
    flags = ["-mavx2", "-mfma"] if {"avx2", "fma"} <= cpu else []
    wide = {"avx512f", "avx512vl", "avx512bw", "avx512dq"}
    if avx512 and flags and wide <= cpu:
        flags += [f"-m{f}" for f in sorted(wide)]
    return flags


def build(src: Path, stem: str, flags: Sequence[str] = (), link_flags: Sequence[str] = ()) -> Path | str:
    """The shared library compiled from ``src`` (built now if not cached), or why it cannot be.

    Compiled (``-c``) and linked (``-shared``) in two commands, so compile flags never reach the
    link (see ``vector_flags``).

    Args:
      src: the C++ source.
      stem: the cached file's name stem (``{stem}_{hash}.so``).
      flags: extra compile flags (include paths, optimisation, ``-fopenmp``).
      link_flags: extra link flags (library paths, libraries, rpath).

    Returns:
      The library's path, or a one-line reason (no compiler, an unwritable cache, a compile error).
    """
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        return "no C++ compiler (g++ or $CXX) found"
    # the source and the shared headers next to this file (``_native_pool.h``)
    code = Path(src).read_bytes() + b"".join(
        h.read_bytes() for h in sorted(Path(__file__).parent.glob("*.h"))
    )
    key = hashlib.sha256(
        b"\0".join(
            [code, *(f.encode() for f in [*flags, "|", *link_flags]), cxx.encode(), jax.__version__.encode()]
        )
    ).hexdigest()[:16]
    out = cache_dir() / f"{stem}_{key}.so"
    if out.is_file():
        return out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
        os.close(fd)
    except OSError as e:
        return f"cannot write the kernel cache {out.parent} ({e}); set LATENTJAX_CACHE_DIR"
    obj = tmp[: -len(".so")] + ".o"
    commands = [
        [
            cxx,
            "-O2",
            "-std=c++17",
            "-fPIC",
            "-w",
            "-c",
            str(src),
            f"-I{jax.ffi.include_dir()}",
            *flags,
            "-o",
            obj,
        ],
        [cxx, "-shared", obj, *link_flags, "-o", tmp],
    ]
    failed = None
    for cmd in commands:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            failed = f"compiling {Path(src).name} failed: {e}"
            break
        if proc.returncode != 0:
            failed = f"compiling {Path(src).name} failed:\n{proc.stderr[-2000:]}"
            break
    if os.path.exists(obj):
        os.unlink(obj)
    if failed:
        os.unlink(tmp)
        return failed
    os.replace(tmp, out)  # atomic: concurrent processes never load a half-written file
    return out


def register(built: Path, targets: Sequence[str]) -> str | None:
    """Load ``built`` and register its handlers ``targets`` for XLA:CPU; ``None``, or why not."""
    try:
        lib = ctypes.cdll.LoadLibrary(str(built))
        for name in targets:
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
    except (OSError, AttributeError) as e:
        return f"loading {built} failed: {e}"
    return None


class Kernels:
    """The kernels of one C++ source: built, loaded and registered once, on first use on CPU.

    Args:
      src: the C++ source.
      stem: the cached library's name stem.
      targets: the FFI handler symbols to register.
      what: the kernels' name in reasons (``"t-SNE's attraction kernel"``).
      env: an environment variable that disables them when ``"0"``.
      flags: extra compile flags.
      link_flags: extra link flags.

    Examples:
      >>> k = Kernels(Path("none.cc"), "none", [], what="a test kernel", env="LATENTJAX_NONE")
      >>> k.unavailable_reason("gpu")
      'a test kernel is a CPU kernel; the backend is gpu'
    """

    def __init__(
        self, src: Path, stem: str, targets: Sequence[str], *, what: str, env: str, flags=(), link_flags=()
    ):
        self.src, self.stem, self.targets = Path(src), stem, tuple(targets)
        self.what, self.env, self.flags, self.link_flags = what, env, tuple(flags), tuple(link_flags)
        self._reason: str | None | bool = False  # False: not tried yet

    def _load(self) -> str | None:
        if self._reason is False:
            if os.environ.get(self.env, "1") == "0":
                self._reason = f"disabled by {self.env}=0"
            else:
                built = build(self.src, self.stem, self.flags, self.link_flags)
                self._reason = built if isinstance(built, str) else register(built, self.targets)
        return self._reason

    def unavailable_reason(self, backend: str | None = None) -> str | None:
        """Why the kernels cannot be used on ``backend`` (default: JAX's), or ``None`` when they can."""
        backend = backend or jax.default_backend()
        if backend != "cpu":
            return f"{self.what} is a CPU kernel; the backend is {backend}"
        return self._load()

    def available(self, backend: str | None = None) -> bool:
        """Whether the kernels can be used on ``backend``: CPU, built and registered."""
        return self.unavailable_reason(backend) is None
