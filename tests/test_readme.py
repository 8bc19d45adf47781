"""README.md opens with the two commands, CI runs the second one verbatim, and the tour's code runs."""

import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    command = ci[-1].strip()
    assert "pytest" in command
    blocks = readme.split("```")
    first_block = blocks[1].split("\n", 1)[1]  # drop the language tag
    lines = [ln.strip() for ln in first_block.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(lines) == 2, lines
    assert "latentjax demo" in lines[0]
    assert lines[1] == command


def _tour_blocks() -> list[str]:
    """The python code blocks of the README's tour (from "## Tour" to the next "## " heading)."""
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("\n## Tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", tour, flags=re.S)


# The only changes made to the tour before running it: the data directory it names is the test's
# (relative paths depend on the working directory), 2,000 train and test images instead of all, and
# 1 epoch instead of 10, so that the tour runs in about a minute on 2 CPU cores. Each is a plain
# text substitution and must match (a README edit that drops one fails here, not silently).
SUBSTITUTIONS = (
    ('data_dir="../shared/data")', "data_dir=DATA_DIR, limit=2000)"),
    ("epochs=10", "epochs=1"),
)


def test_the_tour_has_its_blocks_and_the_substitutions_match():
    code = "\n".join(_tour_blocks())
    assert len(_tour_blocks()) >= 4
    for old, _ in SUBSTITUTIONS:
        assert old in code, old
    assert "move.path_diagnostics(decode, g)" in code  # a geodesic goes straight into the diagnostics


@pytest.mark.slow
def test_the_tour_runs_as_written(data_dir, tmp_path, monkeypatch):
    code = "\n".join(_tour_blocks())
    for old, new in SUBSTITUTIONS:
        code = code.replace(old, new)
    data_dir = pathlib.Path(data_dir).resolve()  # before the chdir: the variable may be relative
    monkeypatch.setenv("LATENTJAX_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)  # the tour writes runs/fm, runs/pop, panels.png, proj/, view.html
    scope = {"DATA_DIR": str(data_dir)}
    exec(compile(code, "README.md (tour)", "exec"), scope)
    assert (tmp_path / "panels.png").is_file() and (tmp_path / "view.html").is_file()
    # The geodesic's diagnostics equal those of its points, computed here by hand with NumPy.
    decode, g = scope["decode"], scope["g"]
    pts = np.asarray(g.points, np.float64)
    frames = np.stack([np.asarray(decode(p), np.float64).ravel() for p in g.points])
    steps = np.sum(np.diff(frames, axis=0) ** 2, axis=1)
    d = scope["move"].path_diagnostics(decode, g)
    assert float(d.decoded_energy) == pytest.approx((len(pts) - 1) * steps.sum(), rel=1e-4)
    assert float(d.max_step) == pytest.approx(np.sqrt(steps.max()), rel=1e-4)
    assert float(d.latent_length) == pytest.approx(
        np.linalg.norm(np.diff(pts, axis=0), axis=1).sum(), rel=1e-4
    )
