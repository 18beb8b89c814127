"""``kerascut inspect MODEL``: every tensor of a model and whether it is a valid start cut."""

from __future__ import annotations

import json
from typing import Any

import click

from kerascut_core.cli._echo import echo
from kerascut_core.cli.options import MODEL_HELP, load_source, model_options
from kerascut_core.formatting import shape_text
from kerascut_core.text import printable

__all__ = ["inspect_rows", "register"]

_COLUMNS = ("index", "name", "type", "output_shape", "params", "cut_point")


def inspect_rows(model: Any, end: Any = None) -> list[dict[str, Any]]:
    """One row per tensor of the graph view (nested models inlined), in topological order.

    ``params`` is counted at a layer's first call, so the column sums to the model's params.
    ``cut_point`` says whether the tensor is a valid single start for ``end`` (anything
    :func:`~kerascut_core.surgery.cut_points` takes: names, ``"pyramid_outputs"``, tensors).
    """
    from kerascut_core.surgery import cut_points, graph_view

    view = graph_view(model)
    points = set(cut_points(model, end=end or None))
    counted: set[int] = set()
    rows = []
    for tensor in view.tensors:
        op = view.ops[tensor.op]
        params = 0
        layer = op.operation
        if id(layer) not in counted and not op.is_input and hasattr(layer, "count_params"):
            counted.add(id(layer))
            params = int(layer.count_params()) if layer.built else 0
        rows.append(
            {
                "index": tensor.index,
                "name": tensor.address,
                "type": op.type,
                "output_shape": list(tensor.shape),
                "params": params,
                "cut_point": tensor.address in points,
            }
        )
    return rows


def _json(model_name: str, rows: list[dict[str, Any]]) -> str:
    """Valid JSON with one layer per line: easy to read, grep and diff."""
    layers = ",\n".join("  " + json.dumps(row) for row in rows)
    return f'{{"model": {json.dumps(model_name)}, "layers": [\n{layers}\n]}}'



def _table(rows: list[dict[str, Any]]) -> str:
    cells = [
        [str(r["index"]), printable(r["name"], 200), printable(r["type"], 100), shape_text(r["output_shape"]), f"{r['params']:,}",
         "yes" if r["cut_point"] else ""]
        for r in rows
    ]
    header = ["#", "name", "type", "output shape", "params", "cut point"]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    right = {0, 4}

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, cells)])


@click.command(name="inspect", epilog=MODEL_HELP)
@click.argument("model")
@click.option(
    "--end", "ends", multiple=True, metavar="NAME",
    help="Ends the cut points are for (repeatable; default: the model's outputs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--svg", "svg", metavar="OUT.svg", help="Also draw the graph to an SVG file.")
@click.option("--png", "png", metavar="OUT.png", help="Also draw the graph to a PNG file.")
@click.option(
    "--start", "starts", multiple=True, metavar="NAME",
    help="For the picture: mark the kept and dropped regions of a cut starting here.",
)
@click.option("--drop-first", type=click.IntRange(min=1), metavar="N",
              help="For the picture: mark a cut that drops the first N layers (model.layers in "
                   "order, InputLayers not counted).")
@click.option("--collapse", is_flag=True,
              help="For the picture: fold each stage (block_3_*, conv4_block2_*) into one node.")
@model_options
def inspect_command(
    model: str,
    ends: tuple[str, ...],
    as_json: bool,
    svg: str | None,
    png: str | None,
    starts: tuple[str, ...],
    drop_first: int | None,
    collapse: bool,
    **options: Any,
) -> None:
    """List MODEL's layers and ops with their shapes, params and whether each is a valid start.

    \b
    Examples:
      kerascut inspect keras.applications/MobileNetV2 --weights none
      kerascut inspect model.keras --end block_13_expand_relu --json
      kerascut inspect keras.applications/ResNet50 --weights none --svg r.svg \\
          --start conv3_block1_out --end conv4_block6_out --collapse
    """
    if (starts or drop_first) and not (svg or png):
        raise click.UsageError("--start/--drop-first mark a cut in the picture: add --svg or --png.")
    from kerascut_core.cli.cut_cmd import parse_ends

    source = load_source(model, **options)
    end = parse_ends(ends)
    rows = inspect_rows(source, end)
    _draw(source, svg, png, starts, drop_first, end, collapse)
    if as_json:
        echo(_json(source.name, rows))
        return
    points = sum(r["cut_point"] for r in rows)
    target = ", ".join(ends) if ends else "the model's outputs"
    echo(_table(rows))
    echo(
        f"\n{printable(source.name, 200)}: {len(rows)} tensors, {source.count_params():,} params, "
        f"{points} valid start cut points for {target}."
    )


def _draw(
    source: Any,
    svg: str | None,
    png: str | None,
    starts: tuple[str, ...],
    drop_first: int | None,
    end: Any,
    collapse: bool,
) -> None:
    """Draw the picture(s) asked for; ``end`` is the parsed ``--end`` (:func:`parse_ends`)."""
    from kerascut_core.surgery import draw

    start = None if not starts else starts[0] if len(starts) == 1 else list(starts)
    for path in (svg, png):
        if path:
            draw(source, path, start=start, end=end, drop_first=drop_first, collapse=collapse)
            echo(f"wrote {path}", err=True)


def register(app: click.Group) -> None:
    """Add ``kerascut inspect`` to ``app``."""
    app.add_command(inspect_command)
