"""The demo report: sections of captioned figures and tables, written as one HTML page."""

from __future__ import annotations

import contextlib
import html
import os
import pathlib
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple


class Figure(NamedTuple):
    """A figure file with a one-line caption; an ``.html`` file or a folder becomes a link.

    Attributes:
        path: the file, relative to the report's folder or absolute.
        caption: one line under the figure (the link text for an ``.html`` file).

    Examples:
        >>> Figure("figures/samples.png", "64 samples from the prior").caption
        '64 samples from the prior'
    """

    path: str
    caption: str


class Section(NamedTuple):
    """One part of the report: a title, a paragraph, figures and an optional key/value table.

    Attributes:
        title: the section's heading.
        text: a paragraph under it.
        figures: `Figure` s, in order.
        table: name -> value rows (floats printed to 4 significant digits), or None.

    Examples:
        >>> Section("The model", "A VAE.", table={"test MSE": 0.0123}).figures
        ()
    """

    title: str
    text: str = ""
    figures: tuple | list = ()
    table: dict[str, Any] | None = None


_PROGRESS = {"on": False}


@contextlib.contextmanager
def timed(name: str, *, enabled: bool = True) -> Iterator[None]:
    """Prints ``[demo] <name> ...`` when a part of the demo starts and ``... done in 1.2 s`` when it ends.

    The lines go to stderr, like the training bar; `step` lines inside the block print only when
    ``enabled``. A part that raises prints ``[demo] <name> failed after 1.2 s``.

    Args:
        name: what runs, e.g. ``"latent space"``.
        enabled: print the lines (the demo's ``progress``).

    Yields:
        Nothing; the block runs between the two lines.

    Examples:
        >>> with timed("nothing", enabled=False):
        ...     step("not printed")
    """
    before = _PROGRESS["on"]
    _PROGRESS["on"] = enabled
    t0 = time.perf_counter()
    if enabled:
        print(f"[demo] {name} ...", file=sys.stderr, flush=True)
    ok = False
    try:
        yield
        ok = True
    finally:
        if enabled:
            verb = "done in" if ok else "failed after"
            print(f"[demo] {name} {verb} {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        _PROGRESS["on"] = before


def step(message: str) -> None:
    """Inside `timed`, prints ``[demo]   <message>`` on stderr: a long part says what it does next.

    Args:
        message: one short line, e.g. ``"t-SNE"``.

    Examples:
        >>> step("outside timed: not printed")
    """
    if _PROGRESS["on"]:
        print(f"[demo]   {message}", file=sys.stderr, flush=True)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
figure{display:inline-block;margin:.6em 1em .6em 0;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #eee;image-rendering:pixelated}
figcaption{font-size:.9em;color:#555;max-width:520px}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} .meta{color:#777;font-size:.9em}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _table(table: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td class='{'num' if isinstance(v, (int, float)) else ''}'>"
        f"{html.escape(_fmt(v))}</td></tr>"
        for k, v in table.items()
    )
    return f"<table>{rows}</table>"


def write_html(
    sections: Sequence[Section], path: str | os.PathLike, *, title: str, subtitle: str = ""
) -> pathlib.Path:
    """Writes the sections as one HTML page that refers to the figures by relative path.

    Figures that do not exist are listed as missing instead of breaking the page. A report written
    into a run folder (``config.json`` beside it, as ``latentjax demo`` does) ends with the command
    that explores that run live (``latentjax explore``).

    Args:
        sections: the report's parts, in order.
        path: the HTML file to write; figures are linked relative to its folder.
        title: the page title and top heading.
        subtitle: a grey line under the title (versions, device, date).

    Returns:
        ``path`` as a ``pathlib.Path``.

    Examples:
        >>> import tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
        >>> page = write_html([Section("Results", table={"MSE": 0.01234567})], out, title="demo")
        >>> "<td class='num'>0.01235</td>" in page.read_text()
        True
    """
    path = pathlib.Path(path)
    root = path.parent.resolve()
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    if subtitle:
        parts.append(f"<p class='meta'>{html.escape(subtitle)}</p>")
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        if s.table:
            parts.append(_table(s.table))
        for fig in s.figures:
            fp = pathlib.Path(fig.path)
            full = fp if fp.is_absolute() or not (root / fp).exists() else root / fp
            full = full.resolve()
            rel = os.path.relpath(full, root) if full.exists() else None
            if rel is None:
                parts.append(f"<p class='meta'>missing figure: {html.escape(str(fig.path))}</p>")
                continue
            rel = pathlib.PurePath(rel).as_posix()
            if full.is_dir():  # a folder of exports: a link to it
                rel += "/"
            if rel.endswith((".html", "/")):
                parts.append(f"<p><a href='{html.escape(rel)}'>{html.escape(fig.caption)}</a></p>")
            else:
                parts.append(
                    f"<figure><img src='{html.escape(rel)}' alt='{html.escape(fig.caption)}'>"
                    f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
                )
    if (path.parent / "config.json").is_file():
        command = f"latentjax explore {shlex.quote(str(path.parent))}"
        parts.append(
            f"<h2>Explore this run</h2><p>Decode anywhere on the map, draw paths and move attributes in "
            f"your browser: <code>{html.escape(command)}</code> (then open the address it prints).</p>"
        )
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
