"""CLI commands for config files: ``config check`` and ``config schema``.

Neither needs Prefect: ``check`` validates the fields and, unless ``--no-models``, loads each
backbone's model to check its layer names; ``schema`` prints the JSON schema. The Prefect
commands (``run``, ``deploy``) live in ``kerascut.flows.cli``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from kerascut_core.cli._echo import echo
from kerascut_core.cli.options import import_option, import_user_modules
from kerascut_core.config import KerascutConfig, config_json_schema, load_config
from kerascut_core.errors import ConfigError, CutError, KerascutError, SourceError
from kerascut_core.text import printable

__all__ = ["register"]


def register(app: click.Group) -> None:
    """Add the ``config`` group to ``app``."""
    app.add_command(config_group)


# --- kerascut config check | schema ----------------------------------------------------------


@click.group("config")
def config_group() -> None:
    """Check a config file, or print its JSON schema."""


@config_group.command(
    "check",
    epilog=(
        "\b\nExamples:\n"
        "  kerascut config check deployments/quickstart.yaml\n"
        "  kerascut config check backbones.yaml --no-models   # fields only, no TensorFlow"
    ),
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-models", is_flag=True, help="Check the fields only; do not load models to check layer names.")
@import_option
def check_command(file: Path, no_models: bool, imports: tuple[str, ...]) -> int:
    """Validate FILE, then check every backbone's layer names against its model.

    keras.applications sources are built with weights=none for the check (layer names do not
    depend on weights), so nothing is downloaded for them. The config's `imports` and the
    --import modules are imported first (found on PYTHONPATH or beside FILE). Exit code 2 when
    anything is wrong.
    """
    cfg = load_config(file)
    echo(f"{file}: fields ok ({len(cfg.backbones)} backbone(s), store {cfg.store})")
    if no_models:
        return 0
    try:
        import_user_modules([*cfg.imports, *imports], search=[str(file.resolve().parent), os.getcwd()])
    except SourceError as exc:
        echo(f"error: {file}: imports: {' '.join(str(exc).split())}", err=True)
        return 2
    problems = 0
    for backbone in cfg.backbones:
        try:
            summary, warnings = _check_layers(cfg, backbone)
        except (CutError, ConfigError) as exc:
            problems += 1
            index = cfg.backbones.index(backbone)
            field = "drop_first" if backbone.drop_first is not None and "drop_first" in str(exc) else (
                "start" if backbone.start is not None and _mentions(exc, backbone.start) else "end"
            )
            echo(f"error: {file}: backbones[{index}].{field}: {' '.join(str(exc).split())}", err=True)
        except KerascutError as exc:
            problems += 1
            echo(f"error: {file}: backbones[{cfg.backbones.index(backbone)}].source: {' '.join(str(exc).split())}", err=True)
        else:
            echo(f"ok  {backbone.name}: {printable(summary, 2000)}")
            for warning in warnings:
                echo(f"warning: {file}: {backbone.name}: {printable(' '.join(warning.split()), 2000)}", err=True)
    if problems:
        if problems > 1:  # one problem is its own one-line error; several get a summary
            echo(f"error: {problems} backbone(s) with problems in {file}", err=True)
        return 2
    return 0


def _mentions(exc: Exception, names: Any) -> bool:
    text = str(exc)
    items = [names] if isinstance(names, str) else list(names.values() if isinstance(names, dict) else names)
    return any(f"'{n}'" in text for n in items)


def _check_layers(cfg: KerascutConfig, backbone: Any) -> tuple[str, list[str]]:
    """The cut's one-line summary, and its warnings (the in-graph preprocessing it drops)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from kerascut_core.sources import load_model
    from kerascut_core.surgery import cut_contract, plan_cut

    options = backbone.source_options()
    if backbone.is_application:
        options["weights"] = "none"  # names only: do not download imagenet weights
    source = backbone.source
    if not backbone.is_application and source.startswith("s3://"):
        from kerascut_core.sources import fetch

        source = str(fetch(source, cache_dir=cfg.cache_dir))
    model = load_model(source, cache_dir=cfg.cache_dir, **options)
    spec = backbone.cut_spec()
    plan = plan_cut(model, start=spec.start, end=spec.end, drop_first=spec.drop_first, extra_inputs=spec.extra_inputs)
    warnings = cut_contract(model, plan).warnings(backbone.source)
    keras.backend.clear_session()
    outputs = ", ".join(f"{k}={v}" if k != v else v for k, v in plan.outputs.items())
    return f"inputs {', '.join(plan.inputs)} -> outputs {outputs}{plan.source_inputs_text(len(model.inputs))}", warnings


@config_group.command("schema", epilog="\b\nExample:\n  kerascut config schema > kerascut.schema.json")
def schema_command() -> int:
    """Print the config file's JSON schema (for editors: yaml-language-server, VS Code)."""
    echo(json.dumps(config_json_schema(), indent=2, sort_keys=True))
    return 0
