"""The candidate: a backbone cut from its fetched source, saved as files, then staged.

The typed records the pipeline passes from step to step (URIs and small models, never a Keras
model, so each step can run in another process or be retried), and the two steps that make a
candidate:

- :func:`fetch_source` brings every remote part of a backbone's source into the download cache
  (:class:`FetchedSource`: where to load it from, with which options);
- :func:`cut_candidate` loads the fetched source, cuts it as the backbone says and saves the
  result (:func:`kerascut_core.surgery.export.save_candidate`) into a :class:`Candidate`, with
  the cut's contract (channels, stride, the tensors its inputs replace, the source's
  preprocessing and the warnings a consumer must see; :func:`candidate_contract`);
- :class:`StagedCandidate` is the candidate once staged (the URI validation reads).

    >>> fetched = fetch_source(backbone, cache_dir="~/.cache/kerascut")   # doctest: +SKIP
    >>> candidate = cut_candidate(backbone, fetched, "/tmp/kc")           # doctest: +SKIP
    >>> candidate.files                                                   # doctest: +SKIP
    {'model.keras': '/tmp/kc/model.keras', 'graph.svg': '/tmp/kc/graph.svg'}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from kerascut_core.config import BackboneConfig
from kerascut_core.publishing.manifest import InputInfo, OutputInfo, Params, Preprocessing

__all__ = [
    "Candidate",
    "CandidateContract",
    "FetchedSource",
    "StagedCandidate",
    "candidate_contract",
    "cut_candidate",
    "fetch_source",
]


class FetchedSource(BaseModel):
    """A source ready to load: ``source`` (a local path, or ``keras.applications/NAME``) and the
    ``load_model`` options (an ``s3://`` ``weights`` replaced by its local path)."""

    source: str
    options: dict[str, Any]
    #: whether anything was downloaded or resolved (``False``: built from keras.applications as is)
    fetched: bool = True
    #: the sha256 of an ``s3://`` file source's bytes, hashed once when the cache verified them,
    #: and the signature of the file they were read from (``sources.cache.file_signature``)
    source_sha256: str | None = None
    source_signature: list[int] | None = None

    def load_options(self) -> dict[str, Any]:
        """``options`` as ``load_model`` takes them (``input_shape`` a tuple)."""
        options = dict(self.options)
        if options.get("input_shape") is not None:
            options["input_shape"] = tuple(options["input_shape"])
        return options


class CandidateContract(BaseModel):
    """What a consumer needs to know of a cut, beyond its files (the manifest records it all)."""

    inputs: list[InputInfo]
    outputs: list[OutputInfo]
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    warnings: list[str] = Field(default_factory=list)


class Candidate(BaseModel):
    """A cut backbone saved as files: ``files`` maps artifact paths (``model.keras``,
    ``graph.svg``, ``saved_model/...``) to local files; what the manifest records of it:
    inputs and outputs (with their contract), parameters, the source's preprocessing, the
    warnings of the cut, the sha256 of the source file and the Keras backend it was cut with."""

    files: dict[str, str]
    bytes: int
    inputs: list[InputInfo]
    outputs: list[OutputInfo]
    params: Params
    #: the modules imported before the source was loaded (config ``imports``); the manifest
    #: records them in ``source.imports``
    imports: list[str] = []
    preprocessing: Preprocessing | None = None
    warnings: list[str] = Field(default_factory=list)
    source_sha256: str | None = None
    keras_backend: str | None = None


class StagedCandidate(BaseModel):
    """A candidate staged under ``.staging/<name>/<version>/<run_id>/``; ``uri`` is that of its
    ``model.keras`` (what validation reloads, and what the commit names)."""

    name: str
    version: str
    run_id: str
    uri: str


def fetch_source(backbone: BackboneConfig | Mapping[str, Any], cache_dir: str | None = None) -> FetchedSource:
    """Fetch every remote part of ``backbone``'s source into the cache.

    For a file source, the local path of its bytes; for ``keras.applications`` the URI itself,
    with an ``s3://`` ``weights`` option replaced by the local path of the weights file.
    """
    from kerascut_core.sources.fetching import resolve_verified

    spec = BackboneConfig.model_validate(backbone)
    local, options, cached = resolve_verified(spec.source, cache_dir=cache_dir, **spec.source_options())
    fetched = not (spec.is_application and local == spec.source and options == spec.source_options())
    if "input_shape" in options and options["input_shape"] is not None:
        options["input_shape"] = list(options["input_shape"])
    return FetchedSource(
        source=local,
        options=options,
        fetched=fetched,
        source_sha256=cached.sha256 if cached else None,
        source_signature=list(cached.signature) if cached else None,
    )


def cut_candidate(
    backbone: BackboneConfig | Mapping[str, Any],
    fetched: FetchedSource | Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    on_draw_error: Callable[[str], Any] | None = None,
    imports: Iterable[str] | None = None,
) -> Candidate:
    """Load the fetched source, cut it as ``backbone`` says and save it under ``workdir``.

    The source is loaded in ``safe_mode`` unless the backbone sets ``allow_unsafe``. A worker
    without graphviz's ``dot`` saves no ``graph.svg`` and tells ``on_draw_error`` why. Keras's
    session is cleared afterwards.
    """
    import keras

    from kerascut_core.sources import import_modules, load_model
    from kerascut_core.surgery import cut
    from kerascut_core.surgery.export import save_candidate

    spec = BackboneConfig.model_validate(backbone)
    source_spec = FetchedSource.model_validate(fetched)
    # ``imports`` register the source's custom layers; the saved candidate is reloaded with them
    # before it is kept (save_candidate), so a candidate that does not reload is never staged.
    imported = import_modules(imports)
    source_sha256, signature = _source_sha256(source_spec)
    source = load_model(source_spec.source, **source_spec.load_options())
    _check_unchanged(source_spec.source, signature)
    cut_spec = spec.cut_spec()
    model = cut(
        source,
        start=cut_spec.start,
        end=cut_spec.end,
        drop_first=cut_spec.drop_first,
        extra_inputs=cut_spec.extra_inputs,
        levels=cut_spec.levels,
        name=spec.name.replace("-", "_").replace(".", "_"),
    )
    os.makedirs(workdir, exist_ok=True)
    files = {k: str(v) for k, v in save_candidate(
        model, workdir, spec.formats, on_draw_error=on_draw_error, allow_unsafe=spec.allow_unsafe
    ).items()}
    contract = candidate_contract(spec.source, source, model.cut_plan)
    candidate = Candidate(
        files=files,
        imports=imported,
        bytes=sum(os.path.getsize(p) for p in files.values()),
        inputs=contract.inputs,
        outputs=contract.outputs,
        params=Params(total_source=int(source.count_params()), kept=int(model.count_params())),
        preprocessing=contract.preprocessing,
        warnings=contract.warnings,
        source_sha256=source_sha256,
        keras_backend=keras.config.backend(),
    )
    del model, source
    keras.backend.clear_session(free_memory=True)
    return candidate


def candidate_contract(source_uri: str, source: Any, plan: Any) -> CandidateContract:
    """The contract of the cut ``plan`` of ``source`` (loaded from ``source_uri``): its inputs
    and outputs (:func:`kerascut_core.surgery.contract.cut_contract`), the source's
    preprocessing (:func:`kerascut_core.sources.preprocessing.source_preprocessing`) with the
    in-graph layers the cut keeps or drops, and a warning when it drops any. ``kerascut cut``
    and ``kerascut config check`` print those warnings; the pipeline records them."""
    from kerascut_core.sources.preprocessing import source_preprocessing
    from kerascut_core.surgery.contract import cut_contract

    cut = cut_contract(source, plan)
    preprocessing = Preprocessing(
        **source_preprocessing(source_uri, source),
        layers=[layer.__dict__ for layer in cut.preprocessing_layers],
        applies_to_inputs=cut.inputs_are_source_inputs,
        data_format=cut.data_format,
    )
    return CandidateContract(
        inputs=[InputInfo(**i.__dict__) for i in cut.inputs],
        outputs=[OutputInfo(**o.__dict__) for o in cut.outputs],
        preprocessing=preprocessing,
        warnings=cut.warnings(source_uri),
    )


def _source_sha256(fetched: FetchedSource) -> tuple[str | None, tuple[int, ...] | None]:
    """``(sha256, signature)`` of the source's bytes when it is a file (``None`` for
    keras.applications and directories).

    The sha256 the cache computed when it verified the file is reused while the file's
    signature is the one it had then (one hash per run); otherwise the file is hashed here.
    :func:`_check_unchanged` then proves the bytes Keras loaded are the bytes hashed."""
    from kerascut_core.sources.cache import file_signature
    from kerascut_core.stores import sha256_file

    if not fetched.fetched or not os.path.isfile(fetched.source):
        return None, None
    before = file_signature(os.stat(fetched.source))
    if fetched.source_sha256 and fetched.source_signature and tuple(fetched.source_signature) == before:
        return fetched.source_sha256, before
    digest = sha256_file(fetched.source)
    _check_unchanged(fetched.source, before)
    return digest, before


def _check_unchanged(path: str, signature: tuple[int, ...] | None) -> None:
    """``SourceError`` when the file at ``path`` is no longer the one whose bytes were hashed."""
    from kerascut_core.errors import SourceError
    from kerascut_core.sources.cache import file_signature

    if signature is not None and file_signature(os.stat(path)) != signature:
        raise SourceError(
            f"The source file {path} changed while it was hashed or loaded, so the bytes cut are "
            "not the bytes recorded. Retry the run; if it recurs, something else writes that file."
        )
