"""README.md opens with the two commands, and CI runs the second one verbatim."""

import pathlib

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
