"""``keras.applications/NAME`` sources: the architectures Keras exports, built on request.

:func:`load_application` builds ``keras.applications.NAME`` with ``weights`` ``"imagenet"``
(downloaded by Keras), ``"none"`` (random, seeded from the URI and options so every process
builds the same model) or a path to a weights file. :func:`application_names` lists the
architectures. ``load_model`` calls :func:`load_application` for these sources.

Keras is imported only when a model is built or the names are listed.

    >>> from kerascut_core.sources import application_names
    >>> "MobileNetV2" in application_names()  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kerascut_core._names import did_you_mean
from kerascut_core.errors import SourceError
from kerascut_core.text import one_line
from kerascut_core.uris import APPLICATIONS_PREFIX

__all__ = ["application_names", "load_application"]


def application_names() -> list[str]:
    """The architectures ``keras.applications`` exports (``MobileNetV2``, ``ResNet50``, ...)."""
    import keras

    return sorted(
        name for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name))
    )


def load_application(
    uri: str,
    *,
    weights: str | Path | None,
    input_shape: Sequence[int] | None,
    include_top: bool | None,
) -> Any:
    """Build the ``keras.applications/NAME`` model ``uri`` names (``weights`` already local).

    Raises:
        SourceError: ``NAME`` is not an architecture, ``weights`` is neither ``"imagenet"``,
            ``"none"`` nor a file, or Keras could not build the model.
    """
    import keras

    name = uri[len(APPLICATIONS_PREFIX):]
    names = application_names()
    if name not in names:
        raise SourceError(
            f"Expected {APPLICATIONS_PREFIX}NAME with one of keras.applications' architectures. "
            f"Received {uri!r}.{did_you_mean(name, names)}"
        )
    kind, value = _weights_option(weights)
    kwargs: dict[str, Any] = {"weights": value}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(int(d) for d in input_shape)
    if include_top is not None:
        kwargs["include_top"] = bool(include_top)
    build = getattr(keras.applications, name)
    try:
        if kind == "none":
            seed = _seed(uri, input_shape=kwargs.get("input_shape"), include_top=include_top)
            with _seeded_build(seed):
                return build(**kwargs)
        return build(**kwargs)
    except Exception as exc:
        detail = one_line(str(exc), 300)
        hint = ""
        if kind == "imagenet":
            hint = (" If the weights cannot be downloaded here, pass weights='none' or a local "
                    "weights file.")
        elif kind == "path":
            hint = (f" The weights file does not fit {name} with these options: pass weights saved "
                    "from the same architecture, input_shape and include_top, or weights='none'.")
        raise SourceError(
            f"Could not build {uri!r} with {_describe(kwargs)}: {type(exc).__name__}: {detail}.{hint}"
        ) from exc


def _weights_option(weights: str | Path | None) -> tuple[str, Any]:
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        return "none", None
    if isinstance(weights, str) and weights.lower() == "imagenet":
        return "imagenet", "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise SourceError(
            "Expected `weights` to be 'imagenet', 'none' or the path of a weights file. "
            f"Received weights={str(weights)!r}, which is not a file."
        )
    return "path", str(path)


_BUILD_LOCK = threading.Lock()


@contextlib.contextmanager
def _seeded_build(seed: int) -> Iterator[None]:
    """Build with weights that depend on ``seed`` alone, whatever other threads are doing.

    Keras draws each initializer's seed from Python's process-wide ``random`` module when the
    layer is created. Any other thread that uses ``random`` meanwhile (Prefect names its runs
    with it) would shift those draws, so the "same" seeded source would get other weights in
    another task. During the build, Keras's draws come from a private ``random.Random(seed)``.
    """
    import keras

    from kerascut_core import keras_compat

    with _BUILD_LOCK:
        keras.utils.set_random_seed(seed)
        with keras_compat.python_random(random.Random(seed)):
            yield


def _seed(uri: str, **options: Any) -> int:
    """A 31-bit seed derived from the URI and build options (stable across processes)."""
    text = json.dumps({"uri": uri, **options}, sort_keys=True, default=list)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def _describe(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
