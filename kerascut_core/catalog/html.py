"""The catalog's HTML: one page frame, the stylesheet, tables, links; every value escaped.

Store text (names, reasons, layer addresses, user and host names) is data someone else wrote:
every value goes through :func:`kerascut_core.text.for_html` (bounded, control and bidi
characters escaped, HTML-escaped with quotes), and each page forbids scripts outright with a
Content-Security-Policy (``default-src 'none'``; styles and images from the site itself only),
so even a value that escaped escaping could not run. Links are built only from names that passed
:func:`kerascut_core.uris.check_name` (one path segment of letters, digits, ``.``, ``_``, ``-``).

    >>> cell("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    >>> link("b/det/index.html", "det <b>")
    '<a href="b/det/index.html">det &lt;b&gt;</a>'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kerascut_core.text import for_html

__all__ = ["CSS", "STYLESHEET", "cell", "code", "link", "page", "table"]

#: the stylesheet's file name at the catalog's root
STYLESHEET = "style.css"

CSS = """\
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --accent: #2456c7; --bad: #b3261e; --ok: #1b7f3b; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0; }
header { background: #f4f6fa; border-bottom: 1px solid var(--line); padding: 12px 24px; }
header a { color: var(--fg); font-weight: 600; text-decoration: none; }
main { padding: 8px 24px 40px; max-width: 1200px; }
h1 { font-size: 22px; margin: 18px 0 6px; } h2 { font-size: 17px; margin: 26px 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 14px; }
th, td { text-align: left; border-bottom: 1px solid var(--line); padding: 5px 8px; vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 13px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f4f6fa; padding: 1px 4px; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.breaking { color: var(--bad); font-weight: 600; } .compatible, .identical { color: var(--ok); font-weight: 600; }
.timeline { list-style: none; padding-left: 0; border-left: 2px solid var(--line); }
.timeline li { margin: 0 0 10px 0; padding-left: 14px; }
img.graph { max-width: 100%; border: 1px solid var(--line); }
"""

_CSP = "default-src 'none'; style-src 'self'; img-src 'self'"


def cell(value: Any, limit: int | None = 400) -> str:
    """``value`` as HTML text: bounded, inert, escaped."""
    return for_html("" if value is None else value, limit)


def code(value: Any, limit: int | None = 200) -> str:
    return f"<code>{cell(value, limit)}</code>"


def link(href: str, text: Any, *, raw: bool = False) -> str:
    """A link to ``href`` (a relative path the catalog built from checked names), its text escaped
    (``raw=True``: ``text`` is HTML the catalog made)."""
    return f'<a href="{cell(href, None)}">{text if raw else cell(text)}</a>'


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "none") -> str:
    """A table of HTML cells (each already escaped by the caller)."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{cell(empty)}</p>'
    return "<table><thead><tr>" + "".join(f"<th>{cell(h)}</th>" for h in header) + f"</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str, *, root: str, crumbs: Sequence[tuple[str, str]] = ()) -> str:
    """A whole page: ``title`` (escaped), ``body`` (HTML the catalog made), ``root`` the relative
    path to the catalog's root (``""``, ``"../../"``), ``crumbs`` ``(href, text)`` after the
    catalog's own link."""
    trail = " / ".join([link(f"{root}index.html", "kerascut catalog"), *(link(h, t) for h, t in crumbs)])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{cell(title, 200)}</title>"
        f'<link rel="stylesheet" href="{root}{STYLESHEET}"></head>\n'
        f"<body><header>{trail}</header><main>\n{body}\n</main></body></html>\n"
    )
