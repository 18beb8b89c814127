"""Cut a source model and save the candidate to a local ``.keras`` file.

The task loads the source (``safe_mode`` unless the backbone sets ``allow_unsafe``), cuts it
with the backbone's cut spec and saves the result, so the next task can stage the bytes. It
returns the file's path and a small summary, never the model object.

Example::

    from prefect import flow
    from kerascut.tasks.cut import cut_backbone

    @flow
    def example():
        backbone = {"name": "tiny", "source": "keras.applications/MobileNetV2",
                    "weights": "none", "input_shape": [32, 32, 3],
                    "start": "block_1_expand_relu", "end": "block_3_expand_relu"}
        fetched = {"source": "keras.applications/MobileNetV2",
                   "options": {"weights": "none", "input_shape": [32, 32, 3]}}
        return cut_backbone(backbone, fetched, workdir="/tmp/kc")

    example()   # {"files": {"model.keras": "/tmp/kc/model.keras"}, "inputs": [...], ...}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from kerascut.tasks._common import COMPUTE_TASK, KERAS_LOCK
from kerascut_core.config import BackboneConfig

__all__ = ["cut_backbone"]


@task(name="cut", task_run_name="cut-{backbone[name]}", timeout_seconds=1800, **COMPUTE_TASK)
def cut_backbone(backbone: dict[str, Any], fetched: dict[str, Any], workdir: str) -> dict[str, Any]:
    """Load the fetched source, cut it as ``backbone`` says and save it under ``workdir``.

    ``fetched`` is what :func:`kerascut.tasks.fetch.fetch_source` returned. Returns ``{"files":
    {"model.keras": path, "saved_model/...": path}, "inputs", "outputs", "params", "bytes"}``.
    """
    with KERAS_LOCK:
        return _cut(backbone, fetched, workdir)


def _cut(backbone: dict[str, Any], fetched: dict[str, Any], workdir: str) -> dict[str, Any]:
    import keras

    from kerascut_core.sources import load_model
    from kerascut_core.surgery import cut

    spec = BackboneConfig.model_validate(backbone)
    logger = get_run_logger()
    options = dict(fetched["options"])
    if options.get("input_shape") is not None:
        options["input_shape"] = tuple(options["input_shape"])
    source = load_model(fetched["source"], **options)
    cut_spec = spec.cut_spec()
    model = cut(
        source,
        start=cut_spec.start,
        end=cut_spec.end,
        drop_first=cut_spec.drop_first,
        extra_inputs=cut_spec.extra_inputs,
        name=spec.name.replace("-", "_").replace(".", "_"),
    )
    out = Path(workdir) / "model.keras"
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    files = {"model.keras": str(out)}
    picture = _draw_graph(model, Path(workdir) / "graph.svg", spec.name)
    if picture is not None:
        files["graph.svg"] = str(picture)
    if "saved_model" in spec.formats:
        exported = Path(workdir) / "saved_model"
        model.export(str(exported), format="tf_saved_model", verbose=False)
        for path in sorted(p for p in exported.rglob("*") if p.is_file()):
            files[f"saved_model/{path.relative_to(exported).as_posix()}"] = str(path)
    summary = {
        "files": files,
        "bytes": sum(os.path.getsize(p) for p in files.values()),
        "inputs": [_tensor(t) for t in model.inputs],
        "outputs": [_tensor(t, n) for t, n in zip(model.outputs, _output_names(model), strict=True)],
        "params": {"total_source": int(source.count_params()), "kept": int(model.count_params())},
    }
    logger.info(
        "%s: cut kept %s of %s parameters; inputs %s, outputs %s",
        spec.name, summary["params"]["kept"], summary["params"]["total_source"],
        [i["shape"] for i in summary["inputs"]], [o["shape"] for o in summary["outputs"]],
    )
    del model, source
    keras.backend.clear_session(free_memory=True)
    return summary


def _draw_graph(model: Any, path: Path, name: str) -> Path | None:
    """The backbone's picture (stages collapsed), published beside its manifest.

    A worker without graphviz's ``dot`` publishes without it and says so in the log.
    """
    from kerascut_core.errors import DrawError
    from kerascut_core.surgery import draw

    try:
        return draw(model, path, collapse=True)
    except DrawError as exc:
        get_run_logger().warning("%s: publishing without graph.svg: %s", name, exc)
        return None


def _output_names(model: Any) -> list[str]:
    plan = getattr(model, "cut_plan", None)
    names = list(getattr(plan, "outputs", None) or getattr(model, "output_names", None) or [])
    if len(names) != len(model.outputs):
        names = [getattr(t, "name", "") for t in model.outputs]
    return [str(n) for n in names]


def _tensor(t: Any, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or getattr(t, "name", ""),
        "shape": [d if d is None else int(d) for d in t.shape],
        "dtype": str(t.dtype),
    }
