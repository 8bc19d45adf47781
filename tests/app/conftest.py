"""Shared fixtures of the app tests: one quick demo run per session (captions and browser tests)."""

import html
import json
import os
import re
import subprocess
import sys
import time

import pytest


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """Runs ``latentjax demo --quick`` once: (metrics, {figure: caption}, html, [(seconds, line)], folder).

    About a minute on 2 idle cores; the modules that use it share one run.
    """
    out = tmp_path_factory.mktemp("demo") / "out"
    env = dict(os.environ)
    env.pop("LATENTJAX_DATA_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "latentjax.app.cli", "demo", "--quick", "--out", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,  # universal newlines: the training bar's \r ends a line too
        env=env,
    )
    lines, t0 = [], time.perf_counter()
    for line in proc.stderr:
        lines.append((time.perf_counter() - t0, line.rstrip("\n")))
    assert proc.wait(timeout=900) == 0, "\n".join(x for _, x in lines[-40:])
    metrics = json.loads((out / "metrics.json").read_text())
    page = (out / "report.html").read_text()
    captions = {
        src.rsplit("/", 1)[-1]: html.unescape(cap)
        for src, cap in re.findall(r"<img src='([^']+)'[^>]*><figcaption>(.*?)</figcaption>", page)
    }
    return metrics, captions, page, lines, out
