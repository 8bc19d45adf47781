"""The ``latentjax`` console script: one module per command (``_cmd_<name>.py``: ``add``, ``run``).

User errors (bad data, files, arguments, checkpoints) end with one line on stderr and exit code 2;
the library's messages name Python arguments, which ``_with_flags`` turns into this script's flags.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from latentjax.app import _cli_checks as _checks
from latentjax.app import _cmd_demo, _cmd_embed, _cmd_eval, _cmd_explore, _cmd_train
from latentjax.app._cli_checks import FLAGS, _with_flags  # noqa: F401  (re-exported)

# The subcommands, in the order `latentjax --help` lists them: name -> module with add(sub), run(args).
COMMANDS = {
    "train": _cmd_train,
    "demo": _cmd_demo,
    "embed": _cmd_embed,
    "eval": _cmd_eval,
    "explore": _cmd_explore,
}


def _parser() -> argparse.ArgumentParser:
    p = _checks.Parser(prog="latentjax", description="Learn, look at and move through latent spaces.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs ``latentjax train|demo|embed|eval``.

    Args:
      argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
      The exit code: 0, 2 for a user error (one line on stderr, naming flags), 130 if interrupted.

    Examples:
      >>> main(["train", "--help"])  # doctest: +SKIP
    """
    from latentjax.errors import LatentJaxError

    args = _parser().parse_args(argv)
    warnings.formatwarning = lambda message, category, *a, **k: (
        f"latentjax {args.command}: warning: {message}\n"
    )
    try:
        return COMMANDS[args.command].run(args)
    except LatentJaxError as e:
        msg = _with_flags(str(e).splitlines()[0]) if str(e) else type(e).__name__
        print(f"latentjax {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"latentjax {args.command}: error: {_checks.os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        msg = "interrupted"
        if args.command == "train":
            step = _checks.saved_step(args.out)
            msg += (
                f"; no checkpoint was saved in {args.out}: run the same command again to start over"
                if step is None
                else f"; the last checkpoint (step {step}) is in {args.out}/checkpoint: "
                "run the same command with --resume to continue"
            )
        print(f"latentjax {args.command}: {msg}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
