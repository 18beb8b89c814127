"""The MODEL argument's options, shared by every command that loads a source model.

    @click.command()
    @click.argument("model")
    @model_options
    def inspect(model, **options):
        source = load_source(model, **options)

``MODEL`` is a path (``.keras``, legacy ``.h5``, a keras-hub preset directory), a ``file://``
or ``s3://`` URI, a keras-hub ``kaggle://`` / ``hf://`` handle or ``keras.applications/NAME``.
``--import MODULE`` (repeatable) imports the modules that register
the model's custom layers first; they are found on PYTHONPATH or in the current directory.
Keras is imported only when the model is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

__all__ = ["IMPORT_HELP", "MODEL_HELP", "check_levels", "import_option", "import_user_modules", "levels_option", "load_source",
           "model_options", "parse_input_shape", "parse_levels"]

MODEL_HELP = (
    "MODEL is a .keras/.h5 path, a keras-hub preset directory (local or s3://bucket/prefix/), "
    "a kaggle:// or hf:// keras-hub handle (needs kerascut[hub] and network access), or "
    "keras.applications/NAME (e.g. keras.applications/MobileNetV2)."
)

_OPTION_NAMES = ("weights", "input_shape", "include_top", "allow_unsafe")

IMPORT_HELP = (
    "Import this module first (repeatable): the one whose @keras.saving.register_keras_serializable "
    "classes the model uses. Found on PYTHONPATH or in the current directory."
)


def import_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--import MODULE`` (repeatable), passed to the command as ``imports``."""
    return click.option("--import", "imports", multiple=True, metavar="MODULE", help=IMPORT_HELP)(command)


def import_user_modules(imports: tuple[str, ...] | list[str], *, search: list[str] | None = None) -> list[str]:
    """Import ``--import`` modules, looked for on ``sys.path``, then in ``search`` (default: the
    current directory, which the ``kerascut`` script does not put on ``sys.path``)."""
    from kerascut_core.sources.imports import import_modules

    return import_modules(imports, search=[os.getcwd()] if search is None else search)


def parse_input_shape(
    ctx: click.Context | None, param: click.Parameter | None, value: str | None
) -> tuple[int, ...] | None:
    """``"96,96,3"`` -> ``(96, 96, 3)``; a usage error (exit 2) for anything else."""
    if value is None:
        return None
    try:
        dims = tuple(int(part) for part in value.replace("x", ",").split(","))
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise click.BadParameter(
            f"Expected H,W,C with positive integers, e.g. 96,96,3. Received {value!r}.",
            ctx=ctx,
            param=param,
        )
    return dims


def parse_levels(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> list[int] | None:
    """``"3,4,5"`` -> ``[3, 4, 5]``; a usage error (exit 2) for anything else."""
    if value is None:
        return None
    try:
        levels = [int(part) for part in value.split(",")]
    except ValueError:
        levels = []
    if not levels or any(v < 0 for v in levels):
        raise click.BadParameter(
            f"Expected pyramid levels as comma-separated integers, e.g. 3,4,5. Received {value!r}.",
            ctx=ctx,
            param=param,
        )
    return levels


def check_levels(levels: list[int] | None, end: Any) -> None:
    """A usage error (exit 2) for ``--levels`` without ``--end auto-pyramid``, before any loading."""
    if levels is not None and end != "auto-pyramid":
        raise click.UsageError(
            f"Expected `levels` only with end='auto-pyramid'. Received --levels "
            f"{','.join(map(str, levels))} with end={end!r}. Remove --levels or pass --end auto-pyramid."
        )


def levels_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--levels 3,4,5`` (the levels of ``--end auto-pyramid``), passed as ``levels``."""
    return click.option(
        "--levels", callback=parse_levels, metavar="K,K,...",
        help="With --end auto-pyramid: the levels to output (P3-P5: 3,4,5; level k is stride 2^k). "
             "Default: every level from 2 up to the model's last.",
    )(command)


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--weights``, ``--input-shape``, ``--include-top/--no-include-top``, ``--allow-unsafe``
    and ``--import``."""
    decorators: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option(
            "--weights",
            default="imagenet",
            show_default=True,
            metavar="imagenet|none|PATH",
            help="For keras.applications: pretrained weights, a seeded random build, or a weights file.",
        ),
        click.option(
            "--input-shape",
            callback=parse_input_shape,
            metavar="H,W,C",
            help="For keras.applications: the input shape, e.g. 224,224,3.",
        ),
        click.option(
            "--include-top/--no-include-top",
            default=None,
            help="For keras.applications: keep the classifier (Keras's default if not given).",
        ),
        click.option(
            "--allow-unsafe",
            is_flag=True,
            help="Load files with Python code in them (Lambda layers). Only for files you trust.",
        ),
        import_option,
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def load_source(model: str, **options: Any) -> Any:
    """Load MODEL with the options :func:`model_options` added (other keys are ignored); the
    ``--import`` modules are imported first."""
    from kerascut_core.sources import load_model

    import_user_modules(options.get("imports") or ())
    kwargs = {k: options[k] for k in _OPTION_NAMES if k in options}
    return load_model(model, **kwargs)
