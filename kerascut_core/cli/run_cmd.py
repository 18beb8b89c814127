"""CLI commands that run and schedule configs: ``run``, ``deploy``, ``config check``, ``config schema``.

``kerascut run`` runs the ``refresh-backbones`` flow on this machine: on Prefect's embedded API
(a temporary local server, nothing to start by hand) unless ``PREFECT_API_URL`` is set, in which
case the runs show up on that server. ``kerascut deploy`` registers the flows as deployments on
the server at ``PREFECT_API_URL`` with the config's cron. Prefect is imported only by the
commands that need it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from kerascut_core.config import KerascutConfig, config_json_schema, load_config
from kerascut_core.errors import ConfigError, CutError, KerascutError

__all__ = ["register"]

REFRESH_FLOW = "refresh-backbones"
VALIDATE_FLOW = "validate-backbone"
DEFAULT_CPU_POOL = "kerascut-cpu"
DEFAULT_GPU_POOL = "kerascut-gpu"

_STEP_STYLE = {
    "checking": "dim",
    "fetching": "cyan",
    "cutting": "cyan",
    "staging": "cyan",
    "validating": "magenta",
    "publishing": "cyan",
    "published": "bold green",
    "verified": "green",
    "up-to-date": "green",
    "failed": "bold red",
}


def register(app: click.Group) -> None:
    """Add ``run``, ``deploy`` and the ``config`` group to ``app``."""
    app.add_command(run_command)
    app.add_command(deploy_command)
    app.add_command(config_group)


# --- kerascut run ----------------------------------------------------------------------------


@click.command(
    "run",
    epilog=(
        "\b\nExamples:\n"
        "  kerascut run deployments/quickstart.yaml\n"
        "  kerascut run backbones.yaml --only resnet50-c3-c5 --force\n"
        "  PREFECT_API_URL=http://prefect:4200/api kerascut run backbones.yaml"
    ),
)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--only", "only", multiple=True, metavar="NAME", help="Refresh only this backbone (repeatable).")
@click.option("--force", is_flag=True, help="Rebuild and revalidate backbones that are already published.")
@click.option("-v", "--verbose", is_flag=True, help="Show Prefect's own logs on the console.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the final table and errors, no progress.")
def run_command(config: Path, only: tuple[str, ...], force: bool, verbose: bool, quiet: bool) -> int:
    """Publish the stale backbones of CONFIG now, on this machine.

    Uses Prefect's embedded API unless PREFECT_API_URL is set. Exit code 1 when any backbone
    failed (the others are still published), 2 for a bad config.
    """
    cfg = load_config(config)
    cfg.select(list(only))  # unknown --only names are a config error (exit 2)
    _quiet_prefect(verbose)
    where = _api_url() or "Prefect's embedded API"
    console = _console(stderr=True)
    if not quiet:
        console.print(
            f"kerascut: refreshing {len(cfg.select(list(only)))} backbone(s) into {cfg.store} on {where}",
            highlight=False,
        )
    from flows._progress import listen
    from flows.refresh_backbones import refresh_backbones

    printer = _ProgressPrinter(console, quiet=quiet)
    try:
        with listen(printer):
            state = refresh_backbones(
                config=cfg.model_dump(mode="json", exclude_none=True),
                only=list(only) or None,
                force=force,
                return_state=True,
            )
    except RuntimeError as exc:
        if "ephemeral Prefect API server" not in str(exc):
            raise
        raise KerascutError(
            "Prefect's embedded API server did not start within "
            f"{os.environ.get('PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS')} s (a busy machine, or "
            "a locked database in PREFECT_HOME). Retry, raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, "
            "or start a server (`prefect server start`) and set PREFECT_API_URL."
        ) from None
    rows = [printer.final[b.name] for b in cfg.select(list(only)) if b.name in printer.final]
    _print_table(rows)
    if state.is_completed():
        return 0
    if not rows:  # the flow failed before any backbone was checked
        raise KerascutError(_state_error(state))
    failed = [r for r in rows if r["status"] == "failed"]
    click.echo(f"error: {len(failed)} of {len(rows)} backbone(s) failed; see the messages above", err=True)
    return 1


class _ProgressPrinter:
    """Prints one line whenever a backbone reaches a step; keeps each backbone's final row."""

    def __init__(self, console: Any, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.final: dict[str, dict[str, Any]] = {}
        self.started = time.perf_counter()
        self.lock = threading.Lock()

    def __call__(self, name: str, step: str, info: dict[str, Any]) -> None:
        with self.lock:
            elapsed = time.perf_counter() - self.started
            detail = ""
            if step in ("published", "verified", "up-to-date", "failed"):
                self.final[name] = {"name": name, "status": step, **info}
                detail = info.get("version", "") if step != "failed" else info.get("message", "")
            elif step == "validating":
                detail = f"({info.get('where')})"
            if self.quiet:
                return
            style = _STEP_STYLE.get(step, "")
            self.console.print(
                f"[dim]{elapsed:6.1f}s[/dim]  {name:<28} [{style}]{step:<11}[/{style}] {_escape(detail)}"
                if style
                else f"{elapsed:6.1f}s  {name:<28} {step:<11} {_escape(detail)}",
                highlight=False,
                soft_wrap=True,
            )


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    from rich.table import Table

    table = Table(title="kerascut refresh", title_justify="left")
    for column in ("backbone", "status", "version", "max abs diff"):
        table.add_column(column, no_wrap=True)
    table.add_column("manifest / message", overflow="fold")
    for row in rows:
        style = _STEP_STYLE.get(row["status"], "")
        diff = row.get("max_abs_diff")
        table.add_row(
            row["name"],
            f"[{style}]{row['status']}[/{style}]" if style else row["status"],
            row.get("version", ""),
            "" if diff is None else f"{diff:.3g}",
            _escape(row.get("message") or _relative(row.get("link") or "")),
        )
    _console(stderr=False).print(table)


def _relative(link: str) -> str:
    """A local manifest path relative to the working directory when it is under it."""
    try:
        return str(Path(link).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return link


def _state_error(state: Any) -> str:
    try:
        exc = state.result(raise_on_failure=False)
    except BaseException as raised:
        exc = raised
    if isinstance(exc, BaseException):
        return " ".join(str(exc).split()) or type(exc).__name__
    return state.message or f"the refresh ended {state.type.value}"


# --- kerascut deploy -------------------------------------------------------------------------


@click.command(
    "deploy",
    epilog=(
        "\b\nExamples:\n"
        "  export PREFECT_API_URL=http://prefect.internal:4200/api\n"
        "  bash deployments/setup_work_pools.sh process\n"
        "  kerascut deploy backbones.yaml\n"
        "  prefect worker start --pool kerascut-cpu   # and --pool kerascut-gpu on the GPU host"
    ),
)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cpu-pool", default=DEFAULT_CPU_POOL, show_default=True, help="Work pool of refresh-backbones.")
@click.option("--gpu-pool", default=DEFAULT_GPU_POOL, show_default=True, help="Work pool of validate-backbone.")
@click.option(
    "--create-pools", is_flag=True,
    help="Create missing pools as process pools (else a missing pool is an error).",
)
@click.option("--image", default=None, help="Container image for docker/kubernetes pools.")
def deploy_command(config: Path, cpu_pool: str, gpu_pool: str, create_pools: bool, image: str | None) -> int:
    """Register refresh-backbones/cpu (with CONFIG's cron) and validate-backbone/gpu.

    The server is the one at PREFECT_API_URL. Redeploying replaces the schedule and the
    config of the existing deployments; it never adds a second schedule.
    """
    cfg = load_config(config)
    _quiet_prefect(False)
    api = _api_url()
    if not api:
        raise KerascutError(
            "Expected PREFECT_API_URL to name the Prefect server to deploy to. Received nothing. "
            "Set it, e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api (prefect server start)."
        )
    from flows.deployments import deploy_config

    result = deploy_config(
        cfg, cpu_pool=cpu_pool, gpu_pool=gpu_pool, create_pools=create_pools, image=image
    )
    for item in result:
        click.echo(
            f"deployed {item['name']} on pool {item['work_pool']}"
            + (f", schedule {item['schedule']}" if item.get("schedule") else ", no schedule")
        )
    click.echo(f"server: {api}")
    return 0


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
def check_command(file: Path, no_models: bool) -> int:
    """Validate FILE, then check every backbone's layer names against its model.

    keras.applications sources are built with weights=none for the check (layer names do not
    depend on weights), so nothing is downloaded for them. Exit code 2 when anything is wrong.
    """
    cfg = load_config(file)
    click.echo(f"{file}: fields ok ({len(cfg.backbones)} backbone(s), store {cfg.store})")
    if no_models:
        return 0
    problems = 0
    for backbone in cfg.backbones:
        try:
            summary = _check_layers(cfg, backbone)
        except (CutError, ConfigError) as exc:
            problems += 1
            index = cfg.backbones.index(backbone)
            field = "drop_first" if backbone.drop_first is not None and "drop_first" in str(exc) else (
                "start" if backbone.start is not None and _mentions(exc, backbone.start) else "end"
            )
            click.echo(f"error: {file}: backbones[{index}].{field}: {' '.join(str(exc).split())}", err=True)
        except KerascutError as exc:
            problems += 1
            click.echo(f"error: {file}: backbones[{cfg.backbones.index(backbone)}].source: {' '.join(str(exc).split())}", err=True)
        else:
            click.echo(f"ok  {backbone.name}: {summary}")
    if problems:
        if problems > 1:  # one problem is its own one-line error; several get a summary
            click.echo(f"error: {problems} backbone(s) with problems in {file}", err=True)
        return 2
    return 0


def _mentions(exc: Exception, names: Any) -> bool:
    text = str(exc)
    items = [names] if isinstance(names, str) else list(names.values() if isinstance(names, dict) else names)
    return any(f"'{n}'" in text for n in items)


def _check_layers(cfg: KerascutConfig, backbone: Any) -> str:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from kerascut_core.sources import load_model
    from kerascut_core.surgery import plan_cut

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
    keras.backend.clear_session()
    outputs = ", ".join(f"{k}={v}" if k != v else v for k, v in plan.outputs.items())
    return f"inputs {', '.join(plan.inputs)} -> outputs {outputs}"


@config_group.command("schema", epilog="\b\nExample:\n  kerascut config schema > kerascut.schema.json")
def schema_command() -> int:
    """Print the config file's JSON schema (for editors: yaml-language-server, VS Code)."""
    click.echo(json.dumps(config_json_schema(), indent=2, sort_keys=True))
    return 0


# --- helpers ---------------------------------------------------------------------------------


def _quiet_prefect(verbose: bool) -> None:
    """Keep Prefect's console quiet (its logs still reach the API / UI) unless ``verbose``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Prefect waits 20 s for its embedded server by default: too short for a first start
    # (database migrations) on a busy 2-core machine, where `kerascut run` then failed outright.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "CRITICAL")
    if "prefect" in sys.modules and not verbose:
        import logging

        for handler in logging.getLogger().handlers + logging.getLogger("prefect").handlers:
            handler.setLevel(logging.CRITICAL)


def _api_url() -> str | None:
    """The Prefect API this process talks to (environment or active profile), if any."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def _console(*, stderr: bool) -> Any:
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        # Logs and CI capture: rich would wrap tables at 80 columns, one character a line.
        console = Console(stderr=stderr, highlight=False, width=200)
    return console


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))
