"""The console script's checks: numeric flags (finite, in range), one-line errors naming flags.

Every numeric flag's ``type`` is one of these, so a bad value ends in one line naming the flag and
exit code 2 (``Parser``), and ``--help`` shows each flag's default.
"""

from __future__ import annotations

import argparse
import math
import os
import re

# The library's argument names -> this script's flags. Library messages write an argument as
# ``name=value`` (``devices=99``) or, for names with an underscore, as the bare name (``out_dir``).
FLAGS = {
    "batch_size": "--batch-size",
    "beta_grid": "--beta-grid",
    "checkpoint_every": "--checkpoint-every",
    "conv_kernels": "--conv-kernels",
    "coordinator": "--coordinator",
    "data_dir": "--data-dir",
    "devices": "--devices",
    "latent_dim": "--latent-dim",
    "learning_rate": "--lr",
    "num_processes": "--num-processes",
    "out_dir": "--out",
    "parallel": "--parallel",
    "precision": "--precision",
    "process_id": "--process-id",
    "resume": "--resume",
    "size": "--population",
    "num_points": "--n",
    "num_samples": "--num-samples",
    "objective": "--objective",
    "binarize": "--binarize",
    "tc_weight": "--tc-weight",
    "capacity_max": "--capacity-max",
    "capacity_steps": "--capacity-steps",
    "disc_hidden": "--disc-hidden",
    "disc_depth": "--disc-depth",
    "conv_net": "--conv-net",
}


def _with_flags(message: str) -> str:
    """A library message with its argument names replaced by the flags that set them.

    Examples:
      >>> _with_flags("pass resume=True to continue it or choose another out_dir")
      'pass --resume to continue it or choose another --out'
      >>> _with_flags("parallel.select_devices: devices=99 asked for, but 4 devices exist")
      'parallel.select_devices: --devices 99 asked for, but 4 devices exist'
    """
    message = re.sub(r"\bresume=True\b", "--resume", message)

    def flag(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        if value is not None:
            return f"{FLAGS[name]} {value}"
        return FLAGS[name] if "_" in name else m.group(0)

    names = "|".join(sorted(FLAGS, key=len, reverse=True))
    return re.sub(rf"(?<![\w.-])({names})(?:=(\S+?))?(?=[\s,;:)]|$)", flag, message)


def _int(s: str, low: int) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {s!r}") from None
    if v < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {v}")
    return v


def positive_int(s: str) -> int:
    return _int(s, 1)


def nonnegative_int(s: str) -> int:
    return _int(s, 0)


def _float(s: str, *, positive: bool) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {s!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise argparse.ArgumentTypeError(f"must be finite and {'> 0' if positive else '>= 0'}, got {s}")
    return v


def positive_float(s: str) -> float:
    return _float(s, positive=True)


def nonnegative_float(s: str) -> float:
    return _float(s, positive=False)


def float_list(s: str) -> list[float]:
    return [nonnegative_float(v) for v in s.split(",")]


class Parser(argparse.ArgumentParser):
    """Prints a usage error in one line (naming the flag) and exits with code 2; ``--help`` shows defaults."""

    def format_help(self) -> str:
        for action in self._actions:  # every flag's default, also of those without a help text
            default, text = action.default, action.help or ""
            if not any(default is v for v in (None, False, argparse.SUPPRESS)) and "default" not in text:
                action.help = f"{text} (default: %(default)s)".strip()
        return super().format_help()

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def saved_step(out: str) -> int | None:
    ckpt = os.path.join(out, "checkpoint")
    steps = [int(n) for n in os.listdir(ckpt) if n.isdigit()] if os.path.isdir(ckpt) else []
    return max(steps) if steps else None


def os_error(e: OSError) -> str:
    """An ``OSError`` in one line: the path and the cause."""
    cause = e.strerror or str(e) or type(e).__name__
    paths = [p for p in (e.filename, e.filename2) if p is not None]
    where = " -> ".join(os.fsdecode(p) for p in paths)
    kind = "permission denied" if isinstance(e, PermissionError) else "cannot read or write"
    return f"{kind}: {where}: {cause}" if where else f"{kind}: {cause}"


def one_line_warning(prefix: str):
    r"""A ``warnings.formatwarning`` that writes ``prefix: warning: message`` on one line.

    Examples:
      >>> one_line_warning("latentjax train")("checkpoint 8 is corrupt", UserWarning, "x.py", 1)
      'latentjax train: warning: checkpoint 8 is corrupt\n'
    """

    def fmt(message, category, filename, lineno, line=None):
        return f"{prefix}: warning: {message}\n"

    return fmt


def fetch(name: str | None, data_dir: str | None) -> None:
    """``--download``: the data set into the cache now (unless found), for a command that loads it later."""
    from latentjax import data

    if name in data.DOWNLOADABLE:
        data.load(name, data_dir=data_dir, limit=1, download=True)
