"""``kerascut inspect MODEL``: every tensor of a model and whether it is a valid start cut;
with ``--stages``, one row per stride and the pyramid taps (``cli/_stages.py``)."""

from __future__ import annotations

import json
from typing import Any

import click

from kerascut_core.cli._echo import echo
from kerascut_core.cli.options import (
    MODEL_HELP,
    check_levels,
    levels_option,
    load_source,
    model_options,
)
from kerascut_core.formatting import shape_text
from kerascut_core.text import printable

__all__ = ["inspect_rows", "register"]

_COLUMNS = ("index", "name", "type", "output_shape", "params", "cut_point")


def inspect_rows(model: Any, end: Any = None, levels: list[int] | None = None) -> list[dict[str, Any]]:
    """One row per tensor of the graph view (nested models inlined), in topological order.

    ``params`` is counted at a layer's first call, so the column sums to the model's params.
    ``cut_point`` says whether the tensor is a valid single start for ``end`` (anything
    :func:`~kerascut_core.surgery.cut_points` takes: names, ``"pyramid_outputs"``,
    ``"auto-pyramid"`` with ``levels``, tensors).
    """
    from kerascut_core.surgery import cut_points, graph_view

    view = graph_view(model)
    points = set(cut_points(model, end=end or None, levels=levels))
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
    help="Ends the cut points are for (repeatable; default: the model's outputs; auto-pyramid: the "
         "pyramid found from the graph).",
)
@levels_option
@click.option("--stages", "show_stages", is_flag=True,
              help="One row per stride instead: level, first and latest valid cut point (the "
                   "auto-pyramid tap), channels, layers and params; a keras-hub backbone's "
                   "pyramid_outputs beside. The picture marks the taps.")
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
    levels: list[int] | None,
    show_stages: bool,
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
      kerascut inspect keras.applications/EfficientNetB0 --weights none --stages --svg p.svg
    """
    if (starts or drop_first) and not (svg or png):
        raise click.UsageError("--start/--drop-first mark a cut in the picture: add --svg or --png.")
    from kerascut_core.cli.cut_cmd import parse_ends

    end = parse_ends(ends)
    check_levels(levels, end)
    source = load_source(model, **options)
    if show_stages:
        _stages(source, as_json, svg, png, starts, drop_first, end, collapse, levels)
        return
    rows = inspect_rows(source, end, levels)
    _draw(source, svg, png, starts, drop_first, end, collapse, levels=levels)
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


def _stages(
    source: Any,
    as_json: bool,
    svg: str | None,
    png: str | None,
    starts: tuple[str, ...],
    drop_first: int | None,
    end: Any,
    collapse: bool,
    levels: list[int] | None,
) -> None:
    """``--stages``: the stages table (or JSON), and the picture with the pyramid taps marked."""
    from kerascut_core.cli._stages import stages_json, stages_report, stages_text
    from kerascut_core.surgery import pyramid_taps

    report = stages_report(source)
    if svg or png:
        taps = {key: tap.address for key, tap in pyramid_taps(source, levels).items()}
        _draw(source, svg, png, starts, drop_first, end, collapse, taps=taps)
    echo(stages_json(report) if as_json else stages_text(report))


def _draw(
    source: Any,
    svg: str | None,
    png: str | None,
    starts: tuple[str, ...],
    drop_first: int | None,
    end: Any,
    collapse: bool,
    *,
    levels: list[int] | None = None,
    taps: dict[str, str] | None = None,
) -> None:
    """Draw the picture(s) asked for; ``end`` is the parsed ``--end`` (:func:`parse_ends`)."""
    from kerascut_core.surgery import draw

    start = None if not starts else starts[0] if len(starts) == 1 else list(starts)
    for path in (svg, png):
        if path:
            draw(source, path, start=start, end=end, drop_first=drop_first, collapse=collapse,
                 levels=levels, taps=taps)
            echo(f"wrote {path}", err=True)


def register(app: click.Group) -> None:
    """Add ``kerascut inspect`` to ``app``."""
    app.add_command(inspect_command)
