"""``latentjax`` with a kill -9 planned by ``$LATENTJAX_FAULT_PLAN`` (``test_faults``'s victim processes).

The plan ``kind:n:frac`` kills this process with SIGKILL: ``save``, during the ``n``-th checkpoint
save (``frac`` of the way through a save, as long as the earlier ones took); ``metrics``, after
writing ``frac`` of the ``n``-th metrics line; ``time``, ``n * frac / 4`` seconds after the first
record; ``none``, never.
"""

import os
import signal
import sys
import threading
import time


def _kill():
    os.kill(os.getpid(), signal.SIGKILL)


def install(plan: str) -> None:
    """Patches the run folder's writers to carry out ``plan``."""
    if plan == "none":
        return
    from latentjax.learn import _run_dir, checkpoint

    kind, n, frac = plan.split(":")
    n, frac = int(n), float(frac)
    calls = {"save": 0, "log": 0, "durations": []}
    save, log = checkpoint.Manager.save, _run_dir.RunDir.log

    def slow_save(self, *args, **kwargs):
        calls["save"] += 1
        if kind == "save" and calls["save"] == n:
            took = calls["durations"] or [0.05]
            threading.Timer(frac * sum(took) / len(took), _kill).start()
        t0 = time.perf_counter()
        save(self, *args, **kwargs)
        calls["durations"].append(time.perf_counter() - t0)

    def cut_log(self, record):
        calls["log"] += 1
        if kind == "time" and calls["log"] == 1:
            threading.Timer(n * frac / 4, _kill).start()
        if kind == "metrics" and calls["log"] == n:
            self._open(0)
            line = __import__("json").dumps(record) + "\n"
            with self.metrics.open("a") as f:
                f.write(line[: int(len(line) * frac)])
                f.flush()
            _kill()
        log(self, record)

    checkpoint.Manager.save, _run_dir.RunDir.log = slow_save, cut_log


if __name__ == "__main__":
    install(os.environ.get("LATENTJAX_FAULT_PLAN", "none"))
    from latentjax.app import cli

    sys.exit(cli.main(sys.argv[1:]))
