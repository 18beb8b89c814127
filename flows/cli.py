"""The Prefect commands of the ``kerascut`` CLI: ``run`` and ``deploy``.

``kerascut run`` runs the ``refresh-backbones`` flow on this machine: on Prefect's embedded API
(a temporary local server, nothing to start by hand) unless ``PREFECT_API_URL`` is set, in which
case the runs show up on that server. ``kerascut deploy`` registers the flows as deployments on
the server at ``PREFECT_API_URL`` with the config's cron.

The commands join the one ``kerascut`` CLI through the ``kerascut.commands`` entry points in
pyproject.toml (``kerascut_core.cli.app`` loads them), so the core never imports Prefect.
Importing this module is cheap: Prefect is imported only when a command runs.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from kerascut_core.cli.options import import_option, import_user_modules
from kerascut_core.config import load_config
from kerascut_core.errors import KerascutError
from kerascut_core.pipeline_names import CPU_POOL, GPU_POOL
from kerascut_core.text import one_line

__all__ = ["deploy_command", "run_command"]

_STEP_STYLE = {
    "checking": "dim",
    "fetching": "cyan",
    "cutting": "cyan",
    "staging": "cyan",
    "validating": "magenta",
    "publishing": "cyan",
    "retention": "cyan",
    "published": "bold green",
    "verified": "green",
    "up-to-date": "green",
    "failed": "bold red",
}


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
@import_option
def run_command(
    config: Path, only: tuple[str, ...], force: bool, verbose: bool, quiet: bool, imports: tuple[str, ...]
) -> int:
    """Publish the stale backbones of CONFIG now, on this machine.

    Uses Prefect's embedded API unless PREFECT_API_URL is set; on the embedded API backbones are
    prepared in this process even when the config names a prepare.deployment. The config's `imports` and the
    --import modules are imported before any model loads (found on PYTHONPATH or beside
    CONFIG). Exit code 1 when any backbone failed (the others are still published), 2 for a
    bad config.
    """
    cfg = load_config(config)
    cfg.select(list(only))  # unknown --only names are a config error (exit 2)
    config_dir = str(config.resolve().parent)
    # Imported here first: a module that does not import is one line before Prefect starts.
    cfg = cfg.model_copy(update={"imports": import_user_modules(
        [*cfg.imports, *imports], search=[config_dir, os.getcwd()]
    )})
    _quiet_prefect(verbose)
    where = _api_url() or "Prefect's embedded API"
    console = _console(stderr=True)
    if not quiet:
        console.print(
            f"kerascut: refreshing {len(cfg.select(list(only)))} backbone(s) into {cfg.store} on {where}",
            highlight=False,
        )
    if cfg.prepare.deployment and not _api_url():
        # The embedded API has no deployments and no workers: prepare here, as without the field.
        if not quiet:
            console.print(
                f"kerascut: preparing in this process (prepare.deployment {cfg.prepare.deployment!r} needs a "
                "server with workers: set PREFECT_API_URL)",
                highlight=False,
            )
        cfg = cfg.model_copy(update={"prepare": cfg.prepare.model_copy(update={"deployment": None})})
    from kerascut.flows._progress import listen
    from kerascut.flows.refresh_backbones import refresh_backbones

    printer = _ProgressPrinter(console, quiet=quiet)
    try:
        with listen(printer):
            state = refresh_backbones(
                config=cfg.model_dump(mode="json", exclude_none=True),
                only=list(only) or None,
                force=force,
                config_dir=config_dir,
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
            if step == "warning":  # shown even with --quiet: one line, as `kerascut cut` prints it
                from kerascut_core.text import printable

                click.echo(f"warning: {name}: {printable(' '.join(str(info.get('message', '')).split()), 1000)}", err=True)
                return
            if step in ("published", "verified", "up-to-date", "failed"):
                self.final[name] = {"name": name, "status": step, **info}
                detail = info.get("version", "") if step != "failed" else info.get("message", "")
            elif step == "validating":
                detail = f"({info.get('where')})"
            elif step == "retention":
                detail = f"(keep_last {info.get('keep_last')})"
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
        return one_line(str(exc), None) or type(exc).__name__
    return state.message or f"the refresh ended {state.type.value}"


# --- kerascut deploy -------------------------------------------------------------------------


@click.command(
    "deploy",
    epilog=(
        "\b\nExamples:\n"
        "  export PREFECT_API_URL=http://prefect.internal:4200/api\n"
        "  bash deployments/setup_work_pools.sh process\n"
        "  kerascut deploy backbones.yaml\n"
        f"  prefect worker start --pool {CPU_POOL}   # and --pool {GPU_POOL} on the GPU host"
    ),
)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cpu-pool", default=CPU_POOL, show_default=True, help="Work pool of refresh-backbones.")
@click.option("--gpu-pool", default=GPU_POOL, show_default=True, help="Work pool of validate-backbone.")
@click.option(
    "--create-pools", is_flag=True,
    help="Create missing pools as process pools (else a missing pool is an error).",
)
@click.option("--image", default=None, help="Container image for docker/kubernetes pools.")
def deploy_command(config: Path, cpu_pool: str, gpu_pool: str, create_pools: bool, image: str | None) -> int:
    """Register refresh-backbones/cpu (with CONFIG's cron), prepare-backbone/cpu and validate-backbone/gpu.

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
    from kerascut.flows.deployments import deploy_config

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
    """Store and model text for rich: control and bidi/format characters escaped, markup inert."""
    from rich.markup import escape

    from kerascut_core.text import for_terminal

    return escape(for_terminal(text, None))
