"""Keras's load errors in one line: what is wrong with the file, and what to do about it.

Keras raises whatever its readers raise (a ``BadZipFile``, a ``JSONDecodeError``, h5py's
"truncated file", a ``TypeError`` about an unknown class) with messages that span lines and
name no fix. :func:`describe_load_error` turns each kind into one line for a
:class:`~kerascut_core.errors.SourceError`; ``load_model`` raises it.

    >>> import zipfile
    >>> describe_load_error("m.keras", zipfile.BadZipFile("Bad CRC-32"))
    "Cannot load 'm.keras': the archive is corrupt (Bad CRC-32). Download it again, or save it again with model.save(...)."
"""

from __future__ import annotations

import ast
import re
import sys
import zipfile

from kerascut_core.sources.archive import _RESAVE
from kerascut_core.text import one_line

__all__ = ["describe_cause", "describe_load_error", "innermost", "known_load_error", "missing_class"]

_HUB_PACKAGES = {"keras_hub": "keras-hub", "keras_cv": "keras-cv", "keras_nlp": "keras-nlp"}
_PARENT = re.compile(
    r"Could not deserialize (?:class|function) '([^']+)' because its parent module ([\w.]+) cannot be imported"
)
_LOCATE = re.compile(r"Could not locate (?:class|function) '([^']+)'")
_UNKNOWN = re.compile(r"Unknown (?:layer|object|class|function)[^:]*: ['\"]?([\w.>]+)")
# keras-hub's from_preset: "... there is no class registered with Keras for pkg>Name. Make sure ..."
_HUB_UNREGISTERED = re.compile(r"there is no class registered with Keras for ([\w.>]+?)\.?(?:\s|$)")


def innermost(exc: BaseException) -> BaseException:
    """The deepest exception of ``exc``'s ``__cause__`` / ``__context__`` chain (the root cause)."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def missing_class(exc: BaseException) -> tuple[str, str | None, str | None] | None:
    """``(class name, module, registered name)`` of the custom class Keras could not find.

    Read from Keras's messages along the exception chain, innermost first ("Could not locate
    class 'Scale' ... Full object config: {'module': 'my_layers', ...}", "Could not deserialize
    class 'X' because its parent module M cannot be imported", "Unknown layer: 'pkg>Scale'").

        >>> missing_class(TypeError("Could not locate class 'Scale'. Make sure ... Full object "
        ...     "config: {'module': 'my_layers', 'class_name': 'Scale', 'config': {}, "
        ...     "'registered_name': 'mypkg>Scale'}"))
        ('Scale', 'my_layers', 'mypkg>Scale')
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in reversed(chain):
        text = str(item)
        parent = _PARENT.search(text)
        if parent:
            name, module = parent.group(1), parent.group(2).rstrip(".")
            registered = _object_config(text, parent.end()).get("registered_name")
            return name, module, registered if isinstance(registered, str) else None
        located = _LOCATE.search(text)
        if located:
            config = _object_config(text, located.end())
            module, registered = config.get("module"), config.get("registered_name")
            return (located.group(1), module if isinstance(module, str) else None,
                    registered if isinstance(registered, str) else None)
        unknown = _UNKNOWN.search(text) or _HUB_UNREGISTERED.search(text)
        if unknown:
            registered = unknown.group(1)
            return registered.rsplit(">", 1)[-1], None, registered if ">" in registered else None
    return None


def _object_config(text: str, after: int) -> dict[str, object]:
    """The "Full object config: {...}" Keras prints after position ``after``, as a dict."""
    marker = text.find("Full object config:", after)
    if marker < 0:
        return {}
    begin = text.find("{", marker)
    depth, quote, end = 0, "", -1
    for i in range(begin, len(text)) if begin >= 0 else ():
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                end = i + 1
                break
    if end < 0:
        return {}
    body = text[begin:end]
    try:
        value = ast.literal_eval(body)
        return value if isinstance(value, dict) else {}
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        # Not a literal (an object's repr inside): the first keys are the top-level ones.
        found: dict[str, object] = {}
        for key in ("module", "registered_name"):
            match = re.search(rf"'{key}': '([^']+)'", body)
            if match:
                found[key] = match.group(1)
        return found


def _import_fix(module: str) -> str:
    return f"--import {module} (config: imports: [{module}]; Python: imports=[{module!r}])"


def _describe_missing(shown: str, name: str, module: str | None, registered: str | None) -> str:
    what = f"the custom class {name!r}"
    if registered and registered != name:
        what += f" (registered as {registered!r})"
    package = (module or "").split(".", 1)[0]
    if package in _HUB_PACKAGES:
        return (
            f"Cannot load {shown!r}: it uses {what} of module {module!r}, which cannot be imported "
            f"here. Install {package} (pip install {_HUB_PACKAGES[package]}), then load with "
            f"{_import_fix(package)}."
        )
    if module == "__main__" or (module or "").startswith("__main__."):
        return (
            f"Cannot load {shown!r}: it uses {what}, which was defined in the script that saved the "
            "model (__main__), so no module can be imported for it. Move the class to a module, "
            f"decorate it with @keras.saving.register_keras_serializable and load with "
            f"{_import_fix('MODULE')}; or pass custom_objects={{{name!r}: cls}}."
        )
    if module and module in sys.modules:
        return (
            f"Cannot load {shown!r}: it uses {what} from module {module!r}, which is imported but "
            f"registers no such class. Decorate {name} in {module} with "
            "@keras.saving.register_keras_serializable"
            + (f"(package={registered.split('>', 1)[0]!r})" if registered and ">" in registered else "()")
            + f", or pass custom_objects={{{(registered or name)!r}: {name}}}."
        )
    if module:
        return (
            f"Cannot load {shown!r}: it uses {what} from module {module!r}, which is not imported "
            f"in this process. Import it before loading: {_import_fix(module)}."
        )
    return (
        f"Cannot load {shown!r}: it uses {what}, which is not registered in this process (a custom "
        f"layer or a subclassed model). Import the module that defines it with "
        f"@keras.saving.register_keras_serializable before loading: {_import_fix('MODULE')}; "
        "or pass custom_objects="
        f"{{{(registered or name)!r}: cls}}."
    )


def describe_load_error(shown: str, exc: BaseException) -> str:
    """One line for an exception Keras raised while loading ``shown``: the problem and the fix."""
    known = known_load_error(shown, exc)
    return known or f"Could not load model file {shown!r}: {describe_cause(exc)}"


def describe_cause(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` of ``exc``'s root cause on one line, the message cut at ``limit``."""
    cause = innermost(exc)
    text = one_line(str(cause), limit) if cause is not exc else ""
    return f"{type(cause).__name__}: {text or one_line(str(exc), limit)}"


def known_load_error(shown: str, exc: BaseException) -> str | None:
    """The one-line problem and fix of a load error kerascut recognises (a corrupt archive or
    HDF5 file, a refused Lambda, a custom class that is not registered), else ``None``."""
    import json

    text = one_line(str(exc), None)
    if isinstance(exc, zipfile.BadZipFile):
        return f"Cannot load {shown!r}: the archive is corrupt ({text}). {_RESAVE}."
    if isinstance(exc, json.JSONDecodeError):
        return f"Cannot load {shown!r}: its config.json is not valid JSON ({text}); the file is corrupt. {_RESAVE}."
    if "truncated file" in text or "file signature not found" in text or "bad byte number" in text \
            or "Unable to synchronously open" in text:
        return f"Cannot load {shown!r}: the HDF5 file is truncated or corrupt ({text[:120]}). {_RESAVE}."
    if "Lambda" in text and ("safe_mode" in text or "arbitrary code" in text):
        return (
            f"Cannot load {shown!r}: it contains a Lambda layer with Python code, refused in safe mode. "
            "Pass allow_unsafe=True (CLI: --allow-unsafe; config: allow_unsafe: true) only if you trust the file."
        )
    missing = missing_class(exc)
    if missing is not None:
        return _describe_missing(shown, *missing)
    if "could not be deserialized" in text or "custom_objects" in text or "custom_object_scope" in text:
        return (
            f"Cannot load {shown!r}: it uses a custom class that is not registered in this process "
            "(a custom layer or a subclassed model). Import the module that defines it with "
            f"@keras.saving.register_keras_serializable before loading: {_import_fix('MODULE')}; "
            "or rebuild the model from built-in layers."
        )
    return None
