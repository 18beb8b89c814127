"""Cut a source model and save the candidate to a local ``.keras`` file.

The task loads the source (``safe_mode`` unless the backbone sets ``allow_unsafe``), cuts it
with the backbone's cut spec and saves the result, so the next task can stage the bytes. It
returns the file's path and a small summary, never the model object.

Example::

    from prefect import flow
    from tasks.cut import cut_backbone

    @flow
    def example():
        backbone = {"name": "tiny", "source": "keras.applications/MobileNetV2",
                    "weights": "none", "input_shape": [32, 32, 3],
                    "start": "block_1_expand_relu", "end": "block_3_expand_relu"}
        return cut_backbone(backbone, "keras.applications/MobileNetV2", workdir="/tmp/kc")

    example()   # {"path": "/tmp/kc/tiny.keras", "inputs": [...], "outputs": [...], ...}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from kerascut_core.config import BackboneConfig
from tasks._common import COMPUTE_TASK

__all__ = ["cut_backbone"]


@task(name="cut", task_run_name="cut-{backbone[name]}", timeout_seconds=1800, **COMPUTE_TASK)
def cut_backbone(
    backbone: dict[str, Any], local_source: str, workdir: str, cache_dir: str | None = None
) -> dict[str, Any]:
    """Load ``local_source``, cut it as ``backbone`` says and save ``<workdir>/<name>.keras``."""
    import keras

    from kerascut_core.sources import load_model
    from kerascut_core.surgery import cut

    spec = BackboneConfig.model_validate(backbone)
    logger = get_run_logger()
    source = load_model(local_source, cache_dir=cache_dir, **spec.source_options())
    cut_spec = spec.cut_spec()
    model = cut(
        source,
        start=cut_spec.start,
        end=cut_spec.end,
        drop_first=cut_spec.drop_first,
        extra_inputs=cut_spec.extra_inputs,
        name=spec.name.replace("-", "_").replace(".", "_"),
    )
    out = Path(workdir) / f"{spec.name}.keras"
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    summary = {
        "path": str(out),
        "bytes": os.path.getsize(out),
        "inputs": [_tensor(t) for t in model.inputs],
        "outputs": [_tensor(t) for t in model.outputs],
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


def _tensor(t: Any) -> dict[str, Any]:
    return {
        "name": getattr(t, "name", ""),
        "shape": [d if d is None else int(d) for d in t.shape],
        "dtype": str(t.dtype),
    }
