"""``kerascut validate``: check a saved candidate against the source it was cut from.

    kerascut validate backbone.keras --source keras.applications/MobileNetV2 --weights none \\
        --input-shape 96,96,3 --start block_3_expand_relu --end block_6_expand_relu

Prints the report (markdown, or JSON with ``--json``) and exits 1 when validation fails.
"""

from __future__ import annotations

import click

from kerascut_core.cli._echo import echo
from kerascut_core.cli.cut_cmd import parse_ends
from kerascut_core.cli.options import MODEL_HELP, levels_option, model_options
from kerascut_core.config.backbone import FORMAT_NAMES

__all__ = ["register"]


@click.command(name="validate", epilog=MODEL_HELP)
@click.argument("candidate")
@click.option("--source", "source", required=True, metavar="MODEL",
              help="The source model the candidate was cut from (the MODEL options apply to it).")
@click.option("--start", "starts", multiple=True, metavar="NAME",
              help="Where the cut starts (repeatable for several inputs).")
@click.option("--drop-first", type=click.IntRange(min=1), metavar="N",
              help="The cut starts after the first N layers: model.layers in order, InputLayers "
                   "not counted (instead of --start).")
@click.option("--end", "ends", multiple=True, metavar="NAME|OUTPUT=NAME",
              help="Where the cut ends (repeatable; OUTPUT=NAME names the outputs; auto-pyramid: the "
                   "pyramid found from the graph).")
@levels_option
@click.option("--extra-inputs", type=click.Choice(["error", "auto"]), default="error",
              show_default=True, help="Whether skips crossing the start became extra inputs.")
@click.option("--samples", type=click.IntRange(min=1), default=8, show_default=True,
              help="How many inputs to run (rows of --data when given).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Batch size of every forward pass.")
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Absolute tolerance; 0 means exact, right on the same device and dtype.")
@click.option("--rtol", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Relative tolerance, for validation across devices.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--require-gpu", is_flag=True, help="Fail at once when no GPU is visible.")
@click.option("--jit-compile", is_flag=True, help="Use XLA for the GPU throughput figures.")
@click.option("--data", default=None, metavar="PATH", help="Sample inputs (.npz/.npy), local or s3://.")
@click.option("--sample-dim", type=click.IntRange(min=1), default=None, metavar="N",
              help="Size of the random inputs' unknown dimensions (default: found by shape "
                   "inference, 64 and up).")
@click.option("--format", "formats", multiple=True, type=click.Choice(FORMAT_NAMES),
              help="Formats to check (keras is always checked; onnx and litert run beside-the-candidate "
                   "model.onnx / model.tflite, else an export, in onnxruntime / LiteRT).")
@click.option("--saved-model", default=None, metavar="PATH",
              help="SavedModel to check (default: saved_model/ beside the candidate, else exported).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@model_options
def validate_command(
    candidate: str,
    source: str,
    starts: tuple[str, ...],
    ends: tuple[str, ...],
    levels: list[int] | None,
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
    sample_dim: int | None,
    formats: tuple[str, ...],
    saved_model: str | None,
    as_json: bool,
    quiet: bool,
    weights: str,
    input_shape: tuple[int, ...] | None,
    include_top: bool | None,
    allow_unsafe: bool,
    imports: tuple[str, ...],
) -> int:
    """Check CANDIDATE (a saved .keras, path or URI) against the source cut at the same place.

    CANDIDATE may also be an exported .onnx or .tflite: it runs in onnxruntime or the LiteRT
    interpreter on the source's start activations, and its outputs are compared by name.

    \b
    Examples:
      kerascut validate backbone.keras --source keras.applications/MobileNetV2 --weights none \\
          --input-shape 96,96,3 --start block_3_expand_relu --end block_6_expand_relu
      kerascut validate s3://models/.staging/mnv2/v1/run/model.keras --source mnv2.keras \\
          --end C4=block_13_expand_relu --end C5=out_relu --format saved_model --json
      kerascut validate ./mnv2/model.onnx --source keras.applications/MobileNetV2 --weights none \\
          --input-shape 96,96,3 --start block_3_expand_relu --end block_6_expand_relu
    """
    from kerascut_core.cli._progress import phase_bars
    from kerascut_core.cli.options import check_levels, import_user_modules
    from kerascut_core.surgery.spec import CutSpec
    from kerascut_core.validation import validate

    if starts and drop_first is not None:
        raise click.UsageError("Expected --start or --drop-first, not both.")
    check_levels(levels, parse_ends(ends))
    imported = import_user_modules(imports)  # before the source or the candidate is loaded
    spec = CutSpec(
        start=(starts[0] if len(starts) == 1 else list(starts)) if starts else None,
        end=parse_ends(ends),
        drop_first=drop_first,
        extra_inputs=extra_inputs,  # type: ignore[arg-type]
        levels=levels,
    )
    options = {
        "weights": weights,
        "input_shape": input_shape,
        "include_top": include_top,
        "allow_unsafe": allow_unsafe,
    }
    with phase_bars(quiet) as progress:
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
            progress=progress,
            sample_dim=sample_dim,
            imports=imported,
        )
    if as_json:
        echo(report.model_dump_json(indent=2))
    else:
        echo(report.to_markdown(), nl=False)
    return 0 if report.passed else 1


def register(app: click.Group) -> None:
    """Add ``kerascut validate`` to ``app``."""
    app.add_command(validate_command)
