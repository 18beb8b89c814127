"""Sources: the models backbones are cut from, and how kerascut gets them.

- :func:`load_model` loads a ``.keras`` / ``.h5`` file (a path, ``file://`` or ``s3://``), a
  keras-hub preset (a directory, local or ``s3://bucket/prefix/``, or a ``kaggle://`` /
  ``hf://`` handle; the extra ``hub``), or builds ``keras.applications/NAME``
  (:func:`application_names` lists the names);
- :func:`fetch` and :func:`resolve_local` bring ``s3://`` bytes into the download cache
  (:class:`DownloadCache`) and return local paths;
- :func:`fingerprint` is a cheap identity of a source (one HEAD, a sha256, or the build
  options) that downloads nothing, so a refresh that finds nothing changed stays cheap.

The modules, one concept each: ``load`` (:func:`load_model`), ``applications``
(``keras.applications`` builds, seeded ``weights="none"`` builds), ``archive`` (header checks
of a model file before Keras opens it), ``load_errors`` (Keras's load errors in one line),
``imports`` (:func:`import_modules`: the modules that register custom layers, imported first),
``presets`` (keras-hub presets: what a preset directory is, hub fingerprints, loading),
``directories`` (``s3://`` directory sources: listing, fingerprint, fetch), ``fetching``,
``fingerprints`` and ``cache``. No module is named like a function it exports,
so ``kerascut_core.sources.fingerprint`` and ``kerascut_core.sources.fetch`` are always the
functions. Importing this package is cheap: it imports neither boto3, TensorFlow nor Keras, and
the loader modules are imported when :func:`load_model` or :func:`application_names` is first
used.

    >>> from kerascut_core.sources import fingerprint, load_model
    >>> fingerprint("keras.applications/MobileNetV2", weights="none")  # doctest: +SKIP
    'keras.applications/MobileNetV2?include_top=default&input_shape=default&keras=3.15&weights=none'
    >>> model = load_model("keras.applications/MobileNetV2", weights="none")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerascut_core._lazy import lazy_exports
from kerascut_core.sources.cache import DownloadCache, check_cache_dir, default_cache_dir
from kerascut_core.sources.fetching import fetch, resolve_local
from kerascut_core.sources.fingerprints import (
    fingerprint,
    fingerprint_many,
    keras_version,
    weights_identity,
)
from kerascut_core.uris import APPLICATIONS_PREFIX

if TYPE_CHECKING:
    from kerascut_core.sources.applications import application_names
    from kerascut_core.sources.archive import check_model_file
    from kerascut_core.sources.imports import import_modules
    from kerascut_core.sources.load import load_model

# public name -> module that defines it (imported on first access: the loaders are cheap to
# import too, but a process that only fingerprints or fetches never needs them)
_LAZY: dict[str, str] = {
    "application_names": "kerascut_core.sources.applications",
    "check_model_file": "kerascut_core.sources.archive",
    "import_modules": "kerascut_core.sources.imports",
    "load_model": "kerascut_core.sources.load",
}

__all__ = [
    "APPLICATIONS_PREFIX",
    "DownloadCache",
    "application_names",
    "check_cache_dir",
    "check_model_file",
    "default_cache_dir",
    "fetch",
    "fingerprint",
    "fingerprint_many",
    "import_modules",
    "keras_version",
    "load_model",
    "resolve_local",
    "weights_identity",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
