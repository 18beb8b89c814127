"""``kerascut validate``: check a saved candidate against the source it was cut from.

    kerascut validate backbone.keras --source keras.applications/MobileNetV2 --weights none \\
        --input-shape 96,96,3 --start block_3_expand_relu --end block_6_expand_relu

Prints the report (markdown, or JSON with ``--json``) and exits 1 when validation fails.
"""

from __future__ import annotations

import click

__all__ = ["parse_end", "parse_input_shape", "register"]


def parse_end(values: tuple[str, ...]) -> str | list[str] | dict[str, str] | None:
    """``--end`` values: one name, several names, or ``NAME=ADDRESS`` pairs (a pyramid)."""
    if not values:
        return None
    pairs = [v for v in values if "=" in v]
    if pairs and len(pairs) != len(values):
        raise click.BadParameter(
            "Expected every --end to be NAME=ADDRESS, or none of them. "
            f"Received {list(values)!r}.",
            param_hint="--end",
        )
    if pairs:
        out: dict[str, str] = {}
        for item in values:
            key, _, address = item.partition("=")
            if not key or not address or key in out:
                raise click.BadParameter(
                    f"Expected NAME=ADDRESS with a new NAME. Received {item!r}.", param_hint="--end"
                )
            out[key] = address
        return out
    return values[0] if len(values) == 1 else list(values)


def parse_input_shape(text: str | None) -> tuple[int | None, ...] | None:
    """``96,96,3`` -> ``(96, 96, 3)``; ``None`` or ``none`` for unknown dimensions."""
    if text is None:
        return None
    dims: list[int | None] = []
    for part in text.replace("x", ",").split(","):
        part = part.strip()
        if part.lower() == "none":
            dims.append(None)
        elif part.isdigit() and int(part) > 0:
            dims.append(int(part))
        else:
            raise click.BadParameter(
                f"Expected comma-separated positive integers such as 96,96,3. Received {text!r}.",
                param_hint="--input-shape",
            )
    return tuple(dims)


@click.command(name="validate")
@click.argument("candidate")
@click.option("--source", "source", required=True, metavar="MODEL",
              help="Source model URI: keras.applications/NAME, a .keras/.h5 path, or s3://...")
@click.option("--weights", default="imagenet", show_default=True,
              help="keras.applications weights: imagenet, none (seeded random), or a weights file.")
@click.option("--input-shape", default=None, metavar="H,W,C", help="Input shape for keras.applications.")
@click.option("--include-top/--no-include-top", default=None, help="keras.applications include_top.")
@click.option("--allow-unsafe", is_flag=True, help="Allow Lambda layers (unsafe deserialization).")
@click.option("--start", multiple=True, metavar="ADDRESS", help="Start of the cut (repeat for several).")
@click.option("--end", multiple=True, metavar="[NAME=]ADDRESS",
              help="End of the cut; repeat, NAME=ADDRESS for named (pyramid) outputs.")
@click.option("--drop-first", type=click.IntRange(min=1), default=None, help="Drop the first N layers.")
@click.option("--extra-inputs", type=click.Choice(["error", "auto"]), default="error", show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--rtol", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--require-gpu", is_flag=True, help="Fail at once when no GPU is visible.")
@click.option("--jit-compile", is_flag=True, help="Use XLA for the GPU throughput figures.")
@click.option("--data", default=None, metavar="PATH", help="Sample inputs (.npz/.npy), local or s3://.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["keras", "saved_model"]),
              help="Formats to check (keras is always checked).")
@click.option("--saved-model", default=None, metavar="PATH",
              help="SavedModel to check (default: saved_model/ beside the candidate, else exported).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate_command(
    candidate: str,
    source: str,
    weights: str,
    input_shape: str | None,
    include_top: bool | None,
    allow_unsafe: bool,
    start: tuple[str, ...],
    end: tuple[str, ...],
    drop_first: int | None,
    extra_inputs: str,
    samples: int,
    batch_size: int,
    atol: float,
    rtol: float,
    seed: int,
    require_gpu: bool,
    jit_compile: bool,
    data: str | None,
    formats: tuple[str, ...],
    saved_model: str | None,
    as_json: bool,
) -> int:
    """Check CANDIDATE (a saved .keras, path or URI) against the source cut at the same place.

    \b
    Examples:
      kerascut validate backbone.keras --source keras.applications/MobileNetV2 --weights none \\
          --input-shape 96,96,3 --start block_3_expand_relu --end block_6_expand_relu
      kerascut validate s3://models/.staging/mnv2/v1/run/model.keras --source mnv2.keras \\
          --end C4=block_13_expand_relu --end C5=out_relu --format saved_model --json
    """
    from kerascut_core.spec import CutSpec
    from kerascut_core.validation import validate

    spec = CutSpec(
        start=(start[0] if len(start) == 1 else list(start)) if start else None,
        end=parse_end(end),
        drop_first=drop_first,
        extra_inputs=extra_inputs,  # type: ignore[arg-type]
    )
    options = {
        "weights": weights,
        "input_shape": parse_input_shape(input_shape),
        "include_top": include_top,
        "allow_unsafe": allow_unsafe,
    }
    report = validate(
        candidate,
        source,
        spec,
        samples=samples,
        batch_size=batch_size,
        atol=atol,
        rtol=rtol,
        seed=seed,
        require_gpu=require_gpu,
        data=data,
        formats=formats or ("keras",),
        saved_model=saved_model,
        source_options=options,
        jit_compile=jit_compile,
        allow_unsafe=allow_unsafe,
    )
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(report.to_markdown(), nl=False)
    return 0 if report.passed else 1


def register(app: click.Group) -> None:
    """Add ``kerascut validate`` to ``app``."""
    app.add_command(validate_command)
