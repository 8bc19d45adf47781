"""The demo report: sections of captioned figures and tables, written as one HTML page."""

from __future__ import annotations

import html
import os
import pathlib
from typing import Any, NamedTuple


class Figure(NamedTuple):
    """A figure file (path relative to the report, or absolute) with a one-line caption."""

    path: str
    caption: str


class Section(NamedTuple):
    """One part of the report: a title, a paragraph, figures and an optional key/value table."""

    title: str
    text: str = ""
    figures: tuple | list = ()
    table: dict[str, Any] | None = None


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
    path: str | os.PathLike, title: str, sections: list[Section], *, subtitle: str = ""
) -> pathlib.Path:
    """Writes a self-contained-looking HTML page referencing the figures by relative path.

    Figures that do not exist are listed as missing instead of breaking the page.
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
            if rel.endswith(".html"):
                parts.append(f"<p><a href='{html.escape(rel)}'>{html.escape(fig.caption)}</a></p>")
            else:
                parts.append(
                    f"<figure><img src='{html.escape(rel)}' alt='{html.escape(fig.caption)}'>"
                    f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
                )
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
