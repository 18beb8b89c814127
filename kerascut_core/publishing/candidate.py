"""The candidate: a backbone cut from its fetched source, saved as files, then staged.

The typed records the pipeline passes from step to step (URIs and small models, never a Keras
model, so each step can run in another process or be retried), and the two steps that make a
candidate:

- :func:`fetch_source` brings every remote part of a backbone's source into the download cache
  (:class:`FetchedSource`: where to load it from, with which options);
- :func:`cut_candidate` loads the fetched source, cuts it as the backbone says and saves the
  result (:func:`kerascut_core.surgery.export.save_candidate`) into a :class:`Candidate`;
- :class:`StagedCandidate` is the candidate once staged (the URI validation reads).

    >>> fetched = fetch_source(backbone, cache_dir="~/.cache/kerascut")   # doctest: +SKIP
    >>> candidate = cut_candidate(backbone, fetched, "/tmp/kc")           # doctest: +SKIP
    >>> candidate.files                                                   # doctest: +SKIP
    {'model.keras': '/tmp/kc/model.keras', 'graph.svg': '/tmp/kc/graph.svg'}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from kerascut_core.config import BackboneConfig
from kerascut_core.publishing.manifest import Params, TensorInfo

__all__ = ["Candidate", "FetchedSource", "StagedCandidate", "cut_candidate", "fetch_source"]


class FetchedSource(BaseModel):
    """A source ready to load: ``source`` (a local path, or ``keras.applications/NAME``) and the
    ``load_model`` options (an ``s3://`` ``weights`` replaced by its local path)."""

    source: str
    options: dict[str, Any]
    #: whether anything was downloaded or resolved (``False``: built from keras.applications as is)
    fetched: bool = True

    def load_options(self) -> dict[str, Any]:
        """``options`` as ``load_model`` takes them (``input_shape`` a tuple)."""
        options = dict(self.options)
        if options.get("input_shape") is not None:
            options["input_shape"] = tuple(options["input_shape"])
        return options


class Candidate(BaseModel):
    """A cut backbone saved as files: ``files`` maps artifact paths (``model.keras``,
    ``graph.svg``, ``saved_model/...``) to local files; what the manifest records of it."""

    files: dict[str, str]
    bytes: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    params: Params


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
    from kerascut_core.sources import resolve_local

    spec = BackboneConfig.model_validate(backbone)
    local, options = resolve_local(spec.source, cache_dir=cache_dir, **spec.source_options())
    fetched = not (spec.is_application and local == spec.source and options == spec.source_options())
    if "input_shape" in options and options["input_shape"] is not None:
        options["input_shape"] = list(options["input_shape"])
    return FetchedSource(source=local, options=options, fetched=fetched)


def cut_candidate(
    backbone: BackboneConfig | Mapping[str, Any],
    fetched: FetchedSource | Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    on_draw_error: Callable[[str], Any] | None = None,
) -> Candidate:
    """Load the fetched source, cut it as ``backbone`` says and save it under ``workdir``.

    The source is loaded in ``safe_mode`` unless the backbone sets ``allow_unsafe``. A worker
    without graphviz's ``dot`` saves no ``graph.svg`` and tells ``on_draw_error`` why. Keras's
    session is cleared afterwards.
    """
    import keras

    from kerascut_core.sources import load_model
    from kerascut_core.surgery import cut
    from kerascut_core.surgery.export import save_candidate

    spec = BackboneConfig.model_validate(backbone)
    source_spec = FetchedSource.model_validate(fetched)
    source = load_model(source_spec.source, **source_spec.load_options())
    cut_spec = spec.cut_spec()
    model = cut(
        source,
        start=cut_spec.start,
        end=cut_spec.end,
        drop_first=cut_spec.drop_first,
        extra_inputs=cut_spec.extra_inputs,
        name=spec.name.replace("-", "_").replace(".", "_"),
    )
    os.makedirs(workdir, exist_ok=True)
    files = {k: str(v) for k, v in save_candidate(model, workdir, spec.formats, on_draw_error=on_draw_error).items()}
    candidate = Candidate(
        files=files,
        bytes=sum(os.path.getsize(p) for p in files.values()),
        inputs=[_tensor(t) for t in model.inputs],
        outputs=[_tensor(t, n) for t, n in zip(model.outputs, _output_names(model), strict=True)],
        params=Params(total_source=int(source.count_params()), kept=int(model.count_params())),
    )
    del model, source
    keras.backend.clear_session(free_memory=True)
    return candidate


def _output_names(model: Any) -> list[str]:
    plan = getattr(model, "cut_plan", None)
    names = list(getattr(plan, "outputs", None) or getattr(model, "output_names", None) or [])
    if len(names) != len(model.outputs):
        names = [getattr(t, "name", "") for t in model.outputs]
    return [str(n) for n in names]


def _tensor(t: Any, name: str | None = None) -> TensorInfo:
    return TensorInfo(
        name=name or getattr(t, "name", ""),
        shape=[d if d is None else int(d) for d in t.shape],
        dtype=str(t.dtype),
    )
