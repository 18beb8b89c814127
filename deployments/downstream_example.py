"""An example downstream flow: train on each new backbone that kerascut publishes.

``deployments/downstream.yaml`` deploys it with a trigger on ``kerascut.backbone.published`` for
``mnv2``; the event's ``manifest_uri`` becomes the run's parameter. The flow resolves the
version from that URI (its manifest is read and checked) and would train on it.

Serve it from one process, with the file's triggers (no pool or worker needed)::

    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/python deployments/downstream_example.py

Or run it by hand::

    from deployments.downstream_example import train_on_backbone
    train_on_backbone("./backbones/mnv2/3f9a0c1d2e4b5a69/manifest.json")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

__all__ = ["DEPLOYMENT_FILE", "backbone_ref", "train_on_backbone", "triggers"]

#: the deployment file whose triggers :func:`triggers` reads
DEPLOYMENT_FILE = Path(__file__).with_name("downstream.yaml")


def backbone_ref(manifest_uri: str) -> str:
    """``STORE/NAME@VERSION`` of a manifest URI (``STORE/NAME/VERSION/manifest.json``)."""
    base, name, version, leaf = manifest_uri.rstrip("/").rsplit("/", 3)
    if leaf != "manifest.json":
        raise ValueError(f"Expected a manifest URI ending in /NAME/VERSION/manifest.json. Received {manifest_uri!r}.")
    return f"{base}/{name}@{version}"


@flow(name="train-on-backbone", log_prints=True, persist_result=False)
def train_on_backbone(manifest_uri: str) -> dict[str, Any]:
    """Resolve the published backbone of ``manifest_uri``, then train on it (left to you)."""
    from kerascut_core.publishing.consumer import resolve

    ref = backbone_ref(manifest_uri)
    _store, name, version, manifest = resolve(ref)
    primary = manifest.primary
    get_run_logger().info("training on %s (%s, outputs %s)", ref, primary.path if primary else "-",
                          [o.name for o in manifest.outputs])
    # backbone = kerascut_core.load_backbone(ref)   # the Keras model, every sha256 checked
    # ... build the head, fit, log to your tracker ...
    return {"ref": ref, "name": name, "version": version, "model_sha256": primary.sha256 if primary else None}


def triggers(path: Path = DEPLOYMENT_FILE, deployment: str = "mnv2") -> list[Any]:
    """The ``triggers:`` of ``deployment`` in the deployment file, as Prefect's trigger models."""
    import yaml
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    spec = yaml.safe_load(path.read_text())
    (found,) = [d for d in spec["deployments"] if d["name"] == deployment]
    adapter: TypeAdapter[Any] = TypeAdapter(DeploymentTriggerTypes)
    return [adapter.validate_python({"name": f"{deployment}__automation_{i}", **t})
            for i, t in enumerate(found["triggers"], start=1)]


if __name__ == "__main__":
    train_on_backbone.serve(name="mnv2", triggers=triggers())
