"""The ``kerascut`` command group and its entry point.

Errors reach the user as one line on stderr, without a traceback unless ``--debug`` is given.
Exit codes: 0 success, 1 failure, 2 usage or config error.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

import click

from kerascut_core.errors import KerascutError

__all__ = ["app", "main"]

# One module for each command group; each defines ``register(app)``.
_COMMAND_MODULES = (
    "kerascut_core.cli.inspect_cmd",
    "kerascut_core.cli.cut_cmd",
    "kerascut_core.cli.store_cmd",
    "kerascut_core.cli.validate_cmd",
    "kerascut_core.cli.run_cmd",
)


@click.group(
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


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


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
        click.echo(f"error: {_one_line(exc.format_message())} (see '{path} --help')", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {_one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except KerascutError as exc:
        if debug:
            raise
        click.echo(f"error: {_one_line(exc)}", err=True)
        return exc.exit_code
    except Exception as exc:  # anything unexpected still gets one line, unless --debug
        if debug:
            raise
        click.echo(
            f"error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the traceback)",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # python -m kerascut_core.cli.app
    sys.exit(main())
