"""Loading source models: one public function, :func:`load_model`, with one helper per kind.

Sources handled here:

- local ``.keras`` files and legacy Keras 2 ``.h5`` / ``.hdf5`` files (also as ``file://``),
  loaded with ``safe_mode=True`` unless ``allow_unsafe=True``;
- ``keras.applications/NAME`` (``keras.applications/MobileNetV2``), built with ``weights``
  ``"imagenet"`` (downloaded by Keras), ``"none"`` (random, seeded from the URI and options so
  every process builds the same model) or a path to a weights file.

TensorFlow and Keras are imported only when a model is loaded.

    >>> from kerascut_core.sources import load_model
    >>> model = load_model("keras.applications/MobileNetV2", weights="none",
    ...                    input_shape=(96, 96, 3))  # doctest: +SKIP
    >>> model = load_model("resnet50.keras")  # doctest: +SKIP
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

from kerascut_core._archive import check_model_file, describe_load_error
from kerascut_core._names import did_you_mean
from kerascut_core.errors import SourceError
from kerascut_core.uris import APPLICATIONS_PREFIX

__all__ = ["APPLICATIONS_PREFIX", "application_names", "load_model"]

_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def load_model(
    uri: str | Path,
    *,
    weights: str | Path | None = "imagenet",
    input_shape: Sequence[int] | None = None,
    include_top: bool | None = None,
    allow_unsafe: bool = False,
    cache_dir: str | Path | None = None,
) -> Any:
    """Load the source model that ``uri`` names and return a ``keras.Model``.

    Args:
        uri: a path, ``file://`` or ``s3://`` URI to a ``.keras`` / ``.h5`` file (S3 objects
            are fetched through the download cache), or ``keras.applications/NAME``.
        weights: for ``keras.applications``: ``"imagenet"``, ``"none"`` (or ``None``) for a
            seeded random build, or a path or ``s3://`` URI of a weights file. Ignored for files.
        input_shape: for ``keras.applications``: ``(H, W, C)``.
        include_top: for ``keras.applications``: keep the classifier (Keras's default when
            ``None``).
        allow_unsafe: load files with ``safe_mode=False`` (``Lambda`` layers with Python code).
            Only for files you trust.
        cache_dir: where downloads are cached (used by remote sources).

    Raises:
        SourceError: the URI is not understood, the file is missing or unreadable, or Keras
            could not build the model.
    """
    text = str(uri)
    remote_weights = isinstance(weights, str) and weights.startswith("s3://")
    if text.startswith("s3://") or (text.startswith(APPLICATIONS_PREFIX) and remote_weights):
        # fetched once into the download cache (checked by size and checksum), then loaded
        from kerascut_core.fetch import resolve_local

        text, fetched = resolve_local(text, cache_dir=cache_dir, weights=weights)
        weights = fetched.get("weights", weights)
    if text.startswith(APPLICATIONS_PREFIX):
        return _load_application(text, weights=weights, input_shape=input_shape,
                                 include_top=include_top)
    if text.startswith("file://"):
        return _load_file(Path(text[len("file://"):]), allow_unsafe=allow_unsafe)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise SourceError(
            f"Expected a local path, file:// or s3:// URI, or {APPLICATIONS_PREFIX}NAME. Received {text!r} "
            f"with the unsupported scheme {scheme!r}."
        )
    return _load_file(Path(text), allow_unsafe=allow_unsafe)


def application_names() -> list[str]:
    """The architectures ``keras.applications`` exports (``MobileNetV2``, ``ResNet50``, ...)."""
    import keras

    return sorted(
        name for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name))
    )


# --------------------------------------------------------------------------------------------
# files


def _load_file(path: Path, *, allow_unsafe: bool) -> Any:
    if not path.exists():
        raise SourceError(f"Expected an existing model file. Received {str(path)!r}, which does not exist.")
    if path.is_dir():
        raise SourceError(
            f"Expected a .keras or .h5 model file. Received the directory {str(path)!r} (a "
            "TensorFlow SavedModel?). Keras 3 cannot rebuild layers from a SavedModel: load it "
            "in the program that wrote it and save it with `model.save('model.keras')`."
        )
    if path.suffix.lower() not in _FILE_SUFFIXES:
        raise SourceError(
            f"Expected a model file ending in {', '.join(_FILE_SUFFIXES)}. "
            f"Received {str(path)!r}."
        )
    # Headers only: empty, truncated, renamed and zip-bomb files get a clear refusal before Keras
    # (which calls them "File not found", or inflates them) ever opens them.
    check_model_file(path)
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=not allow_unsafe)
    except Exception as exc:
        raise SourceError(describe_load_error(str(path), exc)) from exc


# --------------------------------------------------------------------------------------------
# keras.applications


def _load_application(
    uri: str,
    *,
    weights: str | Path | None,
    input_shape: Sequence[int] | None,
    include_top: bool | None,
) -> Any:
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
        detail = " ".join(str(exc).split())[:300]
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

    from kerascut_core.surgery import _keras_api

    with _BUILD_LOCK:
        keras.utils.set_random_seed(seed)
        with _keras_api.python_random(random.Random(seed)):
            yield


def _seed(uri: str, **options: Any) -> int:
    """A 31-bit seed derived from the URI and build options (stable across processes)."""
    text = json.dumps({"uri": uri, **options}, sort_keys=True, default=list)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def _describe(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
