"""Bringing your own layers: the modules that register a model's custom classes, imported first.

A model with custom layers (classes decorated with
``@keras.saving.register_keras_serializable``) loads in safe mode once the module that defines
them has been imported: the decorator registers each class under its ``package>Name``.
:func:`import_modules` imports such modules (``--import MODULE`` on the command line,
``imports: [MODULE, ...]`` in a config file, ``imports=[...]`` in Python) before any model is
loaded. A module is looked for on ``sys.path`` (``PYTHONPATH``), then in the ``search``
directories (the config file's directory); a module that fails to import is one
:class:`~kerascut_core.errors.SourceError` line naming it and the cause. Nothing here imports
Keras.

    >>> import_modules(["json", "json"])
    ['json']
    >>> check_module_name("my_layers.py")
    Traceback (most recent call last):
    kerascut_core.errors.SourceError: Expected a module name such as 'my_layers' or 'pkg.layers' in --import / imports:. Received 'my_layers.py'; write it as 'my_layers'.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Sequence

from kerascut_core.errors import SourceError
from kerascut_core.text import one_line

__all__ = ["MODULE_NAME_PATTERN", "check_module_name", "import_modules"]

#: A dotted Python module name: ``my_layers``, ``pkg.sub.layers``.
MODULE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_MODULE_NAME = re.compile(MODULE_NAME_PATTERN)
_WHERE = "--import / imports:"
_LOCK = threading.Lock()  # sys.path is process-wide: one import with extra directories at a time


def check_module_name(name: object) -> str:
    """``name`` stripped, if it is a dotted module name; ``SourceError`` with the fix otherwise."""
    text = name.strip() if isinstance(name, str) else name
    # "my_layers.py" is a dotted name too, but it is always meant as a file
    if isinstance(text, str) and _MODULE_NAME.match(text) and not text.endswith(".py"):
        return text
    fix = ""
    if isinstance(text, str):
        stem = text.replace("\\", "/").rsplit("/", 1)[-1]
        stem = stem[:-3] if stem.endswith(".py") else stem
        if stem != text and _MODULE_NAME.match(stem):
            fix = f"; write it as {stem!r}"
            if "/" in text.replace("\\", "/"):
                fix += " and put its directory on PYTHONPATH (or beside the config file)"
        elif text.startswith("."):
            fix = "; relative imports are not supported, give the absolute module name"
    raise SourceError(
        f"Expected a module name such as 'my_layers' or 'pkg.layers' in {_WHERE}. "
        f"Received {name!r}{fix}."
    )


def import_modules(
    names: Iterable[str] | None,
    *,
    search: Sequence[str | os.PathLike[str]] = (),
) -> list[str]:
    """Import each module of ``names`` in order; return the names imported, without repeats.

    Modules already imported are not imported again. ``search`` directories (the config file's
    directory) are added to the end of ``sys.path`` while the modules are imported, so a module
    on ``PYTHONPATH`` (or installed) wins over a file of the same name there; they are removed
    afterwards.

    Raises:
        SourceError: a name is not a module name, or the module (or something it imports)
            fails to import; the message names the module and the cause.
    """
    wanted = list(dict.fromkeys(check_module_name(n) for n in (names or ())))
    if not wanted:
        return []
    extra = [os.fspath(d) for d in search if os.path.isdir(d)]
    with _LOCK:
        added = [d for d in dict.fromkeys(extra) if d not in sys.path]
        sys.path.extend(added)
        try:
            for name in wanted:
                _import_one(name, searched=extra)
        finally:
            for d in added:
                if d in sys.path:
                    sys.path.remove(d)
    return wanted


def _import_one(name: str, *, searched: list[str]) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == name or name.startswith(missing + "."):
            where = "on PYTHONPATH" + (f" or in {', '.join(map(repr, searched))}" if searched else "")
            raise SourceError(
                f"Cannot import module {name!r} ({_WHERE}): no module named {missing!r} {where}. "
                "Fix the name, put the module's directory on PYTHONPATH or beside the config file, "
                "or install its package."
            ) from exc
        raise SourceError(
            f"Cannot import module {name!r} ({_WHERE}): it imports {missing!r}, which is not "
            f"installed ({_cause(exc)}). Install it, or remove the import."
        ) from exc
    except (Exception, SystemExit) as exc:  # a module may raise anything, or call sys.exit()
        raise SourceError(
            f"Cannot import module {name!r} ({_WHERE}): {_cause(exc)}{_location(exc)}. "
            "Fix the module, or remove it from the imports."
        ) from exc


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(str(exc), 300)}" if str(exc).strip() else type(exc).__name__


def _location(exc: BaseException) -> str:
    """`` (at file.py:3)``: the last frame of the traceback (a SyntaxError's own line)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" (at {os.path.basename(exc.filename)}:{exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename]
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {os.path.basename(last.filename)}:{last.lineno})"
