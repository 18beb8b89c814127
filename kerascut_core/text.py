"""Text from a store or a model, made inert for where it is shown: a terminal, Markdown, HTML.

A layer name, a manifest field or a pointer's reason is data someone else wrote. On a terminal
it must not move the cursor, set the title (OSC escapes), or reorder what follows it (bidi
overrides such as U+202E); in the model card it must not become a link, a heading, an image
or raw HTML. So every command's output and the card pass such text through one of these:

- :func:`for_terminal` (also named :func:`printable`): bounded, with control characters (C0,
  DEL, C1), format characters (Unicode category Cf: bidi overrides and isolates, zero-width
  characters, the BOM), surrogates and the line and paragraph separators written as Python
  escapes. ``limit=None`` escapes without cutting (a whole message).
- :func:`for_markdown`: :func:`for_terminal`, then the characters that start Markdown
  constructs backslash-escaped and the HTML-active ones written as entities.
- :func:`for_html`: :func:`for_terminal`, then HTML-escaped (quotes included).

And :func:`one_line`, the one way a message (an exception's text, a runtime's complaint) becomes
the single line kerascut's errors are made of: whitespace folded, bounded, typed.

A 10 MB value costs ``limit`` characters, not its size: it is cut *before* it is escaped.
(Values inside error messages go through :func:`kerascut_core._names.short_repr`.)

    >>> printable("mnv2\\x1b[2J")
    'mnv2\\\\x1b[2J'
    >>> printable("a\\tb\\x07")
    'a\\\\tb\\\\x07'
    >>> for_terminal("abc\\u202edef")
    'abc\\\\u202edef'
    >>> len(printable("x" * 10_000))
    403
    >>> for_markdown("[click](https://e.x) <b>")
    '\\\\[click\\\\](https://e.x) &lt;b&gt;'
    >>> one_line(ValueError("bad\\n   value")), one_line("x " * 300, 10)
    ('ValueError: bad value', 'x x x x...')
    >>> for_html("<img src=x onerror='a()'>")
    '&lt;img src=x onerror=&#x27;a()&#x27;&gt;'
"""

from __future__ import annotations

import html
import unicodedata
from typing import Any

__all__ = ["for_html", "for_markdown", "for_terminal", "inert_lines", "one_line", "printable"]

# Categories never written raw: controls, format characters (bidi, zero-width, BOM),
# surrogates, line and paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# Characters that start inline Markdown constructs (links and images need ``[``, emphasis,
# code spans, headings, table cells, strikethrough): backslash-escaped, which CommonMark allows
# for any ASCII punctuation. ``<``, ``>`` and ``&`` (raw HTML, autolinks, entities) are left to
# html.escape. Values are one line (newlines are escaped), so line-start syntax cannot form.
_MARKDOWN_ACTIVE = frozenset("\\`*_[]#!|~")


def _inert(ch: str) -> bool:
    code = ord(ch)
    if 0x20 <= code < 0x7F:  # printable ASCII: the common case, no table lookup
        return True
    return unicodedata.category(ch) not in _ESCAPED_CATEGORIES


def _escape(text: str, keep: str = "") -> str:
    if all(_inert(ch) for ch in text):
        return text
    return "".join(
        ch if ch in keep or _inert(ch) else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        for ch in text
    )


def for_terminal(value: Any, limit: int | None = 400) -> str:
    """``str(value)`` cut to ``limit`` characters *before* escaping (``None``: not cut), with
    control, format (bidi, zero-width), surrogate and separator characters escaped."""
    text = value if isinstance(value, str) else str(value)
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[:limit]
    return _escape(text) + ("..." if cut else "")


#: The name the escaping had first; the same function.
printable = for_terminal


def inert_lines(text: str) -> str:
    """Several lines a command composed (a table, a summary): every line's text escaped as by
    :func:`for_terminal`, the newlines between them kept, nothing cut (cut the values first)."""
    return "\n".join(_escape(line) for line in text.split("\n"))


def for_markdown(value: Any, limit: int | None = 400) -> str:
    """``value`` as inert Markdown text: :func:`for_terminal`, then Markdown-active characters
    backslash-escaped and ``& < > " '`` written as HTML entities, so it renders as itself."""
    text = for_terminal(value, limit)
    escaped = "".join("\\" + ch if ch in _MARKDOWN_ACTIVE else ch for ch in text)
    return html.escape(escaped, quote=True)


def for_html(value: Any, limit: int | None = 400) -> str:
    """``value`` as inert HTML text or attribute value: :func:`for_terminal`, then HTML-escaped."""
    return html.escape(for_terminal(value, limit), quote=True)


def one_line(value: object, limit: int | None = 400) -> str:
    """``value`` as one line of a message: whitespace folded, cut to ``limit`` with ``...``.

    An exception that kerascut did not raise on purpose (not a ``KerascutError``) is prefixed
    with its type (``ValueError: ...``), since its text alone often does not say what failed;
    an exception with no text is its type. ``limit=None`` keeps the whole line.
    """
    from kerascut_core.errors import KerascutError

    text = " ".join(str(value).split())
    if isinstance(value, BaseException) and not isinstance(value, KerascutError):
        text = f"{type(value).__name__}: {text}" if text else type(value).__name__
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 3)] + "..."
    return text
