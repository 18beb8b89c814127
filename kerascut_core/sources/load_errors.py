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

import zipfile

from kerascut_core.sources.archive import _RESAVE

__all__ = ["describe_load_error"]


def describe_load_error(shown: str, exc: BaseException) -> str:
    """One line for an exception Keras raised while loading ``shown``: the problem and the fix."""
    import json

    text = " ".join(str(exc).split())
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
    import re

    classes = re.findall(r"['\"]class_name['\"]: ['\"]([^'\"]+)['\"]", text)
    located = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
    unknown = re.search(r"Unknown (?:layer|object)[^:]*: ['\"]?([\w.]+)", text)
    if located or unknown or "could not be deserialized" in text or "custom_objects" in text:
        match = located or unknown
        name = match.group(1) if match else None
        if name is None:
            builtin = {"Functional", "InputLayer", "Conv2D", "Dense", "ReLU", "Add", "Sequential"}
            custom = [c for c in classes if c not in builtin]
            name = custom[-1] if custom else None
        what = f"the custom class {name!r}" if name else "a custom class"
        return (
            f"Cannot load {shown!r}: it uses {what}, which is not registered in this process (a custom "
            "layer or a subclassed model). Import the module that defines it (decorated with "
            "@keras.saving.register_keras_serializable) before loading, or rebuild the model as a "
            "functional model of built-in layers."
        )
    return f"Could not load model file {shown!r}: {type(exc).__name__}: {text[:300]}"
