"""``latentjax explore RUN``: starts, prints its URL, serves the page and stops cleanly on Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from latentjax.app import cli


def test_explore_serves_until_interrupted(explore_run, session):
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable,
        "-m",
        "latentjax.app.cli",
        "explore",
        str(explore_run),
        "--method",
        "pca",
        "--n",
        "400",
    ]
    # a shell's background job starts with SIGINT ignored, and Python keeps it so: restore Ctrl-C
    proc = subprocess.Popen(
        cmd + ["--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = proc.stdout.readline()
        assert "serving" in line and "http://127.0.0.1:" in line, (
            line,
            proc.stderr.read() if proc.poll() else "",
        )
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url, timeout=30) as r:
            assert b"explore.js" in r.read()
        with urllib.request.urlopen(url + "api/info", timeout=30) as r:
            info = json.load(r)
        print(f"start-up to a usable page: {time.perf_counter() - t0:.1f} s (cached map)")
        assert info["num_points"] == 400 and info["method"] == "pca"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_explore_flags(explore_run, capsys):
    args = cli._parser().parse_args(["explore", str(explore_run)])
    assert (args.host, args.port, args.method, args.static) == ("127.0.0.1", 8765, "tsne", None)
    assert cli.main(["explore", str(explore_run), "--method", "pca", "--n", "5"]) == 2
    assert "error: explore.load: --n 5" in capsys.readouterr().err  # the flag, not the argument


def test_a_run_folders_report_ends_with_the_explore_command(explore_run, tmp_path):
    from latentjax.app import report

    page = report.write_html(
        [report.Section("Results")], explore_run / "report.html", title="demo"
    ).read_text()
    assert page.rstrip().endswith(
        f"<code>latentjax explore {explore_run}</code> (then open the address it prints).</p>\n</body></html>"
    )
    assert "latentjax explore" not in report.write_html([], tmp_path / "r.html", title="t").read_text()
