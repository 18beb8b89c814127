"""A backbone with its contract: the model, and what its manifest says about using it.

One call gives a consumer both, checked as :func:`~kerascut_core.publishing.consumer.load_backbone`
checks them (every sha256 against the manifest):

    >>> import kerascut_core as kc
    >>> model, contract = kc.load_backbone_with_contract("s3://team-models/backbones/mnv2@prod")  # doctest: +SKIP
    >>> contract.channels, contract.strides                                                      # doctest: +SKIP
    ({'block_13_expand_relu': 576}, {'block_13_expand_relu': [16, 16]})
    >>> features = model(contract.preprocess(images))                                             # doctest: +SKIP

:class:`BackboneContract` reads the manifest only; the preprocessing function it names
(``keras.applications.mobilenet_v2.preprocess_input``) is imported the first time it is used,
and only when it is on the allow-list (:func:`allowed_preprocess_function`): a manifest is data,
and importing a module it names would run that module's code. A consumer who trusts the store
passes ``trust_preprocess=True``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kerascut_core._names import short_repr
from kerascut_core.errors import SourceError
from kerascut_core.publishing.manifest import Manifest, OutputInfo, Preprocessing
from kerascut_core.text import for_terminal

__all__ = ["BackboneContract", "LoadedBackbone", "allowed_preprocess_function", "load_backbone_with_contract"]

# What a manifest may name without trust_preprocess=True: the preprocess_input of a
# keras.applications module, and keras-hub's image converters and preprocessors. Each part is a
# plain identifier, so the import stays inside the installed keras or keras_hub package.
_ALLOWED_PREPROCESS = (
    re.compile(r"keras\.applications\.[a-z][a-z0-9_]*\.preprocess_input"),
    re.compile(r"keras_hub\.(?:layers|models)\.[A-Z][A-Za-z0-9]*(?:ImageConverter|Preprocessor)"),
)


def allowed_preprocess_function(dotted: str) -> bool:
    """Whether ``dotted`` may be imported from a manifest without ``trust_preprocess=True``:
    ``keras.applications.<module>.preprocess_input``, or a keras-hub image converter or
    preprocessor (``keras_hub.layers.ResNetImageConverter``, ``keras_hub.models.*Preprocessor``)."""
    return isinstance(dotted, str) and any(p.fullmatch(dotted) for p in _ALLOWED_PREPROCESS)


@dataclass(frozen=True)
class BackboneContract:
    """What the manifest of a published version tells its consumers.

    ``ref`` is the version pinned (``<store>/<name>@<version>``), whatever alias was asked for.
    ``trust_preprocess=True`` lets :attr:`preprocess_function` import a function the manifest
    names outside the allow-list (:func:`allowed_preprocess_function`).
    """

    manifest: Manifest
    ref: str
    trust_preprocess: bool = False
    _resolved: dict[str, Callable[..., Any]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def outputs(self) -> dict[str, OutputInfo]:
        """Output name -> its shape, dtype, address, channels and stride."""
        return {o.name: o for o in self.manifest.outputs}

    @property
    def channels(self) -> dict[str, int | None]:
        return {o.name: o.channels for o in self.manifest.outputs}

    @property
    def strides(self) -> dict[str, list[int | None] | None]:
        return {o.name: o.stride for o in self.manifest.outputs}

    @property
    def preprocessing(self) -> Preprocessing | None:
        """The source's preprocessing (``None`` in a manifest of schema version 1)."""
        return self.manifest.preprocessing

    @property
    def warnings(self) -> list[str]:
        return list(self.manifest.warnings)

    def _unavailable(self) -> str | None:
        """Why no preprocessing function can be given, or ``None`` when one can."""
        pre = self.manifest.preprocessing
        where = self.ref
        if pre is None:
            return f"{where} was published without a preprocessing contract (manifest schema version 1)"
        if not pre.applies_to_inputs:
            return f"the inputs of {where} are tensors from inside its source, not images"
        if pre.dropped:
            return f"the cut of {where} dropped the source's in-graph preprocessing"
        if pre.mode == "unknown":
            return f"the preprocessing of {where}'s source is unknown"
        if pre.mode == "scale_offset" and (pre.scale is None or pre.offset is None):
            return f"{where} records a scale/offset preprocessing without its values"
        return None

    @property
    def preprocess_function(self) -> Callable[[Any], Any] | None:
        """The function that turns raw images into the backbone's inputs (imported on first use),
        the identity when the backbone's own layers do it, or ``None`` when there is none to give
        (unknown preprocessing, inputs from inside the source, or in-graph preprocessing dropped).

        A function outside the allow-list is refused (:class:`SourceError`) before anything is
        imported, unless the contract was made with ``trust_preprocess=True``."""
        if self._unavailable() is not None:
            return None
        pre = self.manifest.preprocessing
        assert pre is not None  # _unavailable says so
        if pre.function:
            if pre.function not in self._resolved:
                from kerascut_core.sources.preprocessing import resolve_function

                if not self.trust_preprocess and not allowed_preprocess_function(pre.function):
                    raise SourceError(
                        f"Refusing to import the preprocessing function {short_repr(pre.function, 120)} that the "
                        f"manifest of {for_terminal(self.ref, 300)} names: only keras.applications.<module>.preprocess_input "
                        "and keras-hub image converters and preprocessors are imported from a store's manifest. "
                        "Pass trust_preprocess=True to load_backbone_with_contract if you trust the store, or "
                        "preprocess as the model card says."
                    )

                self._resolved[pre.function] = resolve_function(pre.function)
            return self._resolved[pre.function]
        if pre.mode == "scale_offset":
            return _ScaleOffset(pre.scale, pre.offset)
        return _identity  # in_graph, kept: the backbone preprocesses

    def preprocess(self, images: Any) -> Any:
        """``images`` (pixels in [0, 255]) as the backbone's inputs; :class:`SourceError` when the
        contract gives no way (see :attr:`preprocess_function`)."""
        function = self.preprocess_function
        if function is None:
            raise SourceError(
                f"Cannot preprocess for {self.ref}: {self._unavailable()}. See its model card (README.md) or "
                "`kerascut show` for what its inputs must be, and prepare them yourself."
            )
        return function(images)


def _identity(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class _ScaleOffset:
    scale: float | list[float] | None
    offset: float | list[float] | None

    def __call__(self, x: Any) -> Any:
        import numpy as np

        return np.asarray(x, dtype="float32") * np.asarray(self.scale, dtype="float32") + np.asarray(self.offset, dtype="float32")


class LoadedBackbone(NamedTuple):
    """``(model, contract)``: unpack it, or use the attributes."""

    model: Any
    contract: BackboneContract


def load_backbone_with_contract(
    ref: str,
    version: str = "latest",
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    compile: bool = False,
    safe_mode: bool = True,
    progress: Callable[[int], Any] | None = None,
    trust_preprocess: bool = False,
) -> LoadedBackbone:
    """Load a published backbone and its contract: ``model, contract = load_backbone_with_contract(ref)``.

    ``ref`` and the options are those of :func:`~kerascut_core.publishing.consumer.load_backbone`
    (``@alias`` or ``@version`` included); the model and the manifest come from the same pull,
    so they are of the same version even while an alias moves. ``trust_preprocess=True`` lets
    ``contract.preprocess`` import a function the manifest names outside the allow-list
    (:func:`allowed_preprocess_function`); ``safe_mode`` is about the model file, not this.
    """
    from kerascut_core.publishing.consumer import load_pulled, pull
    from kerascut_core.uris import split_backbone_ref

    manifest, root = pull(ref, version=version, cache_dir=cache_dir, progress=progress)
    model = load_pulled(ref, manifest, root, compile=compile, safe_mode=safe_mode)
    store, name, _ = split_backbone_ref(ref)
    return LoadedBackbone(model, BackboneContract(manifest, f"{store}/{name}@{manifest.version}", trust_preprocess))
