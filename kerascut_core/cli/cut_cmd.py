"""``kerascut cut MODEL ... -o OUT.keras``: cut a model and save the result."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import click

from kerascut_core.cli._echo import echo
from kerascut_core.cli.options import (
    MODEL_HELP,
    check_levels,
    levels_option,
    load_source,
    model_options,
)
from kerascut_core.errors import CutWarning
from kerascut_core.formatting import shape_text
from kerascut_core.text import printable

__all__ = ["parse_ends", "register"]


def parse_ends(ends: tuple[str, ...]) -> str | list[str] | dict[str, str] | None:
    """``()`` -> None, ``("a",)`` -> ``"a"``, ``("a", "b")`` -> list, ``("P3=a", ...)`` -> dict."""
    if not ends:
        return None
    named = [e for e in ends if "=" in e]
    if named and len(named) != len(ends):
        raise click.BadParameter(
            f"Expected every --end to be NAME or every one OUTPUT=NAME. Received {list(ends)}.",
            param_hint="--end",
        )
    if named:
        pairs = [e.split("=", 1) for e in ends]
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys) or not all(k and v for k, v in pairs):
            raise click.BadParameter(
                f"Expected distinct, non-empty OUTPUT=NAME pairs. Received {list(ends)}.",
                param_hint="--end",
            )
        return dict(pairs)
    return ends[0] if len(ends) == 1 else list(ends)



@click.command(name="cut", epilog=MODEL_HELP)
@click.argument("model")
@click.option("--start", "starts", multiple=True, metavar="NAME",
              help="Where the cut model starts (repeatable for several inputs).")
@click.option("--drop-first", type=click.IntRange(min=1), metavar="N",
              help="Start after the first N layers: model.layers in order, InputLayers not counted "
                   "(a nested model is one layer; keras.ops calls are not layers). Instead of --start.")
@click.option("--end", "ends", multiple=True, metavar="NAME|OUTPUT=NAME",
              help="Where it ends (repeatable; OUTPUT=NAME names the outputs). "
                   "`--end pyramid_outputs` cuts at the source's pyramid_outputs (keras-hub "
                   "backbones), outputs named by its keys (P2 ... P5); `--end auto-pyramid` at the "
                   "pyramid found from the graph (level k, output Pk: the latest valid cut point at "
                   "stride 2^k).")
@levels_option
@click.option("--extra-inputs", type=click.Choice(["error", "auto"]), default="error",
              show_default=True,
              help="On skip connections crossing the start: fail, or add them as inputs.")
@click.option("--copy", "copy_weights", is_flag=True,
              help="Give the cut model its own variables (the saved file is the same either way).")
@click.option("--name", help="Name of the cut model (default: <source>_cut).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the cut model (.keras).")
@model_options
def cut_command(
    model: str,
    starts: tuple[str, ...],
    drop_first: int | None,
    ends: tuple[str, ...],
    levels: list[int] | None,
    extra_inputs: Literal["error", "auto"],  # click.Choice(["error", "auto"])
    copy_weights: bool,
    name: str | None,
    output: Path,
    **options: Any,
) -> None:
    """Cut MODEL between --start (or --drop-first) and --end and save it as OUT.keras.

    \b
    Examples:
      kerascut cut keras.applications/MobileNetV2 --weights none \\
          --start block_3_expand_relu --end block_13_expand_relu -o backbone.keras
      kerascut cut model.keras --end C4=conv4_block6_out --end C5=conv5_block3_out -o fpn.keras
      kerascut cut ./resnet_preset --end pyramid_outputs -o pyramid.keras
      kerascut cut keras.applications/EfficientNetB0 --end auto-pyramid --levels 3,4,5 -o p.keras
    """
    from kerascut_core.surgery import cut, cut_contract, save_candidate

    if starts and drop_first is not None:
        raise click.UsageError("Expected --start or --drop-first, not both.")
    if output.suffix != ".keras":
        raise click.BadParameter(
            f"Expected a path ending in .keras. Received {str(output)!r}.", param_hint="-o/--output"
        )
    if not output.parent.exists():
        raise click.BadParameter(
            f"Expected an existing directory for the output. Received {str(output)!r}, whose "
            f"directory {str(output.parent)!r} does not exist.",
            param_hint="-o/--output",
        )
    end = parse_ends(ends)
    check_levels(levels, end)
    source = load_source(model, **options)
    start = None if not starts else (starts[0] if len(starts) == 1 else list(starts))
    with warnings.catch_warnings():  # printed below with the contract's, as "warning: ..."
        warnings.simplefilter("ignore", CutWarning)
        result = cut(source, start=start, end=end, drop_first=drop_first,
                     extra_inputs=extra_inputs, copy=copy_weights, name=name, levels=levels)

    # The pipeline's export (written next to the target, then renamed: a failed save never
    # leaves half a file behind), with the one artifact this command writes: OUT.keras.
    # It is reloaded (with the --import modules) before it is renamed into place: a cut model
    # that does not reload is never written.
    save_candidate(result, output.parent, ["keras"], keras_name=output.name, graph=False,
                   allow_unsafe=bool(options.get("allow_unsafe")))

    plan = result.cut_plan
    echo(f"wrote {output}")
    for tensor, address in zip(result.inputs, plan.inputs, strict=True):
        extra = "  (extra input)" if address in plan.extra_inputs else ""
        echo(f"  input  {printable(tensor.name, 200)}: {shape_text(tensor.shape)}  <- {printable(address, 200)}{extra}")
    # A dict end gives dict outputs: look each one up by name (Keras keeps result.outputs in
    # sorted key order, the plan keeps the order of the dict that was given).
    struct = result.output if isinstance(result.output, dict) else dict(
        zip(plan.outputs, result.outputs, strict=True)
    )
    for out_name, address in plan.outputs.items():
        tap = plan.pyramid.get(out_name)
        note = "" if tap is None else f"  (stride {tap['stride']}{'' if tap['exact'] else ', nominal'})"
        echo(f"  output {printable(out_name, 200)}: {shape_text(struct[out_name].shape)}  <- {printable(address, 200)}{note}")
    total_layers = plan.kept_layers + plan.dropped_layers
    total_params = plan.kept_params + plan.dropped_params
    echo(
        f"  kept {plan.kept_layers} of {total_layers} layers, "
        f"{plan.kept_params:,} of {total_params:,} params"
        + printable(plan.source_inputs_text(len(source.inputs)), 2000)
    )
    for warning in cut_contract(source, plan).warnings(model):
        echo(f"warning: {printable(' '.join(warning.split()), 2000)}", err=True)


def register(app: click.Group) -> None:
    """Add ``kerascut cut`` to ``app``."""
    app.add_command(cut_command)
