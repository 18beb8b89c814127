"""Turning pydantic's validation errors into one line: the field path, the reason, the fix.

The path is written as in the file (``backbones[2].start``); an unknown key gets the closest
valid keys of the model it sits in (``Unknown key 'valdation'. Did you mean 'validation'?``).

    >>> try:
    ...     KerascutConfig.model_validate({"store": "./b", "backbones": [
    ...         {"name": "a", "source": "m.keras", "strat": "x"}]})
    ... except PydanticValidationError as exc:
    ...     print(describe(exc))
    backbones[0].strat: Unknown key 'strat'. Did you mean 'start', 'formats'? Remove or rename it.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from kerascut_core._names import clip, did_you_mean, short_repr
from kerascut_core.config.models import KerascutConfig

__all__ = ["describe"]


def describe(exc: PydanticValidationError) -> str:
    """The first problem of ``exc`` as ``path: message``, and how many more there are."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    message = _message(first, loc)
    more = len(errors) - 1
    return f"{_path(loc)}: {message}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + clip(str(part), 60)
    return out or "(top level)"


def _message(error: ErrorDetails, loc: tuple[Any, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        key = str(loc[-1])
        options = sorted(model.model_fields) if model else []
        hint = did_you_mean(key, options) or (f" Valid keys: {', '.join(options)}." if options else "")
        return f"Unknown key {short_repr(key)}.{hint} Remove or rename it."
    if kind == "missing":
        return "Expected this required field. Received nothing; add it."
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"Expected one of {expected}. Received {short_repr(error.get('input'))}."
    msg = error["msg"]
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    return f"{msg[0].upper()}{msg[1:]}. Received {short_repr(error.get('input'))}."


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that sits at ``loc`` inside :class:`KerascutConfig`."""
    current: Any = KerascutConfig
    for part in loc:
        model = _as_model(current)
        if isinstance(part, int):
            current = _item_type(current)
        elif model is not None and part in model.model_fields:
            current = model.model_fields[part].annotation
        else:
            return None
    return _as_model(current)


def _as_model(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _as_model(arg)
            if found is not None:
                return found
    return None


def _item_type(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            if typing.get_origin(arg) is list:
                return typing.get_args(arg)[0]
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0]
    return None
