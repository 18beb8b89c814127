"""The ``kerascut`` command group and its entry point.

Errors reach the user as one line on stderr, without a traceback unless ``--debug`` is given.
Exit codes: 0 success, 1 failure, 2 usage or config error.

The core's own commands are registered by the modules below. Other packages add commands
through the ``kerascut.commands`` entry-point group (kerascut's own ``run`` and ``deploy`` come
from ``kerascut.flows.cli`` that way, so the core never imports Prefect). An entry point is
loaded only when its command is used or listed by ``--help``; one that fails to load is listed
as unavailable, with the reason in one line, and fails only its own command (exit 1).
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Any

import click

from kerascut_core.cli._echo import echo
from kerascut_core.errors import KerascutError
from kerascut_core.text import one_line

__all__ = ["COMMAND_ENTRY_POINTS", "app", "main"]

#: The entry-point group whose ``name = "module:command"`` items become ``kerascut NAME``.
COMMAND_ENTRY_POINTS = "kerascut.commands"

# One module for each command group; each defines ``register(app)``.
_COMMAND_MODULES = (
    "kerascut_core.cli.inspect_cmd",
    "kerascut_core.cli.cut_cmd",
    "kerascut_core.cli.store_cmd",
    "kerascut_core.cli.pointer_cmd",
    "kerascut_core.cli.show_cmd",
    "kerascut_core.cli.validate_cmd",
    "kerascut_core.cli.config_cmd",
    "kerascut_core.cli.plan_cmd",
    "kerascut_core.cli.diff_cmd",
    "kerascut_core.cli.consumers_cmd",
    "kerascut_core.cli.catalog_cmd",
)


class _KerascutGroup(click.Group):
    """The built-in commands plus the ``kerascut.commands`` entry points, loaded on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._entry_points: dict[str, Any] | None = None
        self._loaded: dict[str, click.Command] = {}

    def _plugins(self) -> dict[str, Any]:
        if self._entry_points is None:
            from importlib.metadata import entry_points

            found: dict[str, Any] = {}
            for ep in entry_points(group=COMMAND_ENTRY_POINTS):
                if ep.name not in self.commands:  # a built-in command is never replaced
                    found.setdefault(ep.name, ep)
            self._entry_points = found
        return self._entry_points

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        ep = self._plugins().get(cmd_name)
        if ep is None:
            return None
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = _load_command(cmd_name, ep)
        return self._loaded[cmd_name]


def _load_command(name: str, ep: Any) -> click.Command:
    """The command an entry point names, or a stand-in that says why it could not be loaded."""
    try:
        command = ep.load()
        if not isinstance(command, click.Command):
            raise TypeError(f"{ep.value} is a {type(command).__name__}, not a click command")
    except Exception as exc:
        reason = one_line(exc, None).rstrip(".")
    else:
        if command.name != name:  # `kerascut NAME` must run and show as NAME
            command = _renamed(command, name)
        return command
    message = (
        f"The command {name!r} could not be loaded from {ep.value!r} "
        f"({COMMAND_ENTRY_POINTS} entry point): {reason}. Reinstall the package that provides it."
    )

    def unavailable(args: tuple[str, ...]) -> None:
        raise KerascutError(message)

    return click.Command(
        name,
        callback=unavailable,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        help=message,
        short_help=f"(unavailable: {reason})",
        add_help_option=False,
    )


def _renamed(command: click.Command, name: str) -> click.Command:
    import copy

    command = copy.copy(command)
    command.name = name
    return command


@click.group(
    cls=_KerascutGroup,
    name="kerascut",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "\b\nExamples:\n"
        "  kerascut inspect keras.applications/MobileNetV2 --weights none\n"
        "  kerascut run deployments/quickstart.yaml"
    ),
)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="kerascut", prog_name="kerascut")
def app(debug: bool) -> None:
    """Cut pretrained Keras models into validated, versioned backbones."""
    if debug:
        os.environ["KERASCUT_DEBUG"] = "1"


for _module in _COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("KERASCUT_DEBUG") == "1"
    if not debug and os.environ.get("KERASCUT_TF_LOGS") != "1":
        from kerascut_core.cli._quiet import install

        install()  # TensorFlow's import-time C++ log lines would bury the one-line errors
        # Library warnings (Keras skipping weights, h5py, absl) are for developers; --debug shows them.
        for module in ("keras", "tensorflow", "h5py", "absl", "google.protobuf"):
            warnings.filterwarnings("ignore", module=module)
    try:
        result = app.main(args=args, prog_name="kerascut", standalone_mode=False)
    except click.UsageError as exc:
        path = exc.ctx.command_path if exc.ctx else "kerascut"
        echo(f"error: {one_line(exc.format_message(), None)} (see '{path} --help')", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        echo(f"error: {one_line(exc.format_message(), None)}", err=True)
        return exc.exit_code
    except KerascutError as exc:
        if debug:
            raise
        echo(f"error: {one_line(exc, None)}", err=True)
        return exc.exit_code
    except Exception as exc:  # anything unexpected still gets one line, unless --debug
        if debug:
            raise
        echo(
            f"error: {one_line(exc, None)} (rerun with --debug for the traceback)",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # python -m kerascut_core.cli.app
    sys.exit(main())
