"""``kerascut show STORE/NAME[@alias|@version]``: a published version and how to use it, at a glance.

    kerascut show s3://team-models/backbones/mnv2            # latest
    kerascut show ./backbones/mnv2@prod --json

Outputs (channels, stride), inputs (what each replaces), the preprocessing to apply, the
warnings, the validation, the pointers that name the version, and its lineage, all read from
the manifest and the pointers. Text from the store is printed escaped (:func:`printable`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from kerascut_core.cli._echo import echo
from kerascut_core.formatting import number_text, shape_text, stride_text
from kerascut_core.text import printable

if TYPE_CHECKING:
    from kerascut_core.publishing.manifest import Manifest

__all__ = ["register", "show_lines", "show_payload"]


def _p(value: Any, limit: int = 200) -> str:
    return "-" if value is None else printable(value, limit)


def _number(value: Any) -> str:
    return _p(number_text(value))


def _table(header: Sequence[str], rows: list[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    def line(cells: Sequence[str]) -> str:
        return (indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()
    return [line(header), *(line(r) for r in rows)]


def show_lines(manifest: Manifest, *, latest: str | None = None, aliases: dict[str, str] | None = None) -> list[str]:
    """The text ``kerascut show`` prints for ``manifest`` (``latest`` and ``aliases``: the
    backbone's pointers, alias -> version)."""
    from kerascut_core.sources.preprocessing import MODES

    m = manifest
    aliases = aliases or {}
    pointers = (["latest"] if latest == m.version else []) + [a for a, v in aliases.items() if v == m.version]
    head = f"{_p(m.name)}@{_p(m.version)}" + (f"  ({', '.join(_p(a) for a in pointers)})" if pointers else "")
    cut = m.cut
    start = f"drop_first {cut.drop_first}" if cut.drop_first else _p(cut.start if cut.start is not None else "(source inputs)")
    end = _p(cut.end if cut.end is not None else "(source outputs)")
    lines = [
        head,
        f"  source  {_p(m.source.uri, 400)}" + (f"  (weights {_p(m.source.weights)})" if m.source.weights else ""),
        f"  cut     {start} -> {end}",
        f"  params  {m.params.kept:,} kept of {m.params.total_source:,}",
        "",
        "outputs",
        *_table(
            ["NAME", "ADDRESS", "SHAPE", "DTYPE", "CHANNELS", "STRIDE"],
            [[_p(o.name), _p(o.address), shape_text(o.shape), _p(o.dtype), _number(o.channels), stride_text(o.stride)] for o in m.outputs],
        ),
        "",
        "inputs",
        *_table(["NAME", "SHAPE", "DTYPE", "REPLACES"], [[_p(i.name), shape_text(i.shape), _p(i.dtype), _p(i.replaces)] for i in m.inputs]),
        "",
        "preprocessing",
    ]
    pre = m.preprocessing
    if pre is None:
        lines.append("  not recorded (manifest schema version 1)")
    else:
        what = f"x * {_number(pre.scale)} + {_number(pre.offset)}" if pre.mode == "scale_offset" else MODES.get(pre.mode, "")
        lines.append(f"  mode    {_p(pre.mode)}: {_p(what, 300)}")
        if pre.function:
            where = "raw images" if pre.applies_to_inputs else "the images the source starts from (the inputs are inner tensors)"
            lines.append(f"  apply   {_p(pre.function)} to {where}")
        kept = [f"{_p(x.address)} ({_p(x.type)})" for x in pre.layers if x.kept]
        dropped = [f"{_p(x.address)} ({_p(x.type)})" for x in pre.dropped]
        if kept:
            lines.append(f"  kept    {', '.join(kept)}")
        if dropped:
            lines.append(f"  dropped {', '.join(dropped)}")
        if pre.note:
            lines.append(f"  note    {_p(pre.note, 300)}")
    if m.warnings:
        lines += ["", "warnings", *(f"  {_p(w, 1000)}" for w in m.warnings)]
    report = m.validation
    extra = report.model_extra or {}
    found = extra.get("device")
    device: dict[str, Any] = found if isinstance(found, dict) else {}
    lines += [
        "",
        "validation",
        f"  {'passed' if report.passed else 'FAILED'}  max abs diff {_number(report.max_abs_diff)}  samples {_number(extra.get('samples'))}"
        f"  atol {_number(extra.get('atol'))}  rtol {_number(extra.get('rtol'))}  on {_p(device.get('name'))} ({_p(device.get('kind'))})",
        "",
        "aliases",
        f"  latest -> {_p(latest)}",
        *(f"  {_p(a)} -> {_p(v)}" for a, v in aliases.items()),
        "",
        "lineage",
        f"  fingerprint  {_p(m.source.fingerprint, 400)}",
    ]
    if m.source.sha256:
        lines.append(f"  sha256       {_p(m.source.sha256)}")
    s = m.software
    lines.append(
        f"  software     kerascut {_p(s.kerascut)}, keras {_p(s.keras)}, tensorflow {_p(s.tensorflow)}, "
        f"backend {_p(s.keras_backend)}, python {_p(s.python)}"
    )
    if m.lineage is not None and m.lineage.flow_run_id:
        lines.append(f"  flow run     {_p(m.lineage.flow_run_id)}")
    lines.append(f"  created      {m.created_at.isoformat(timespec='seconds')}  (manifest schema {m.schema_version})")
    return lines


def show_payload(ref: str, manifest: Manifest, *, latest: str | None, aliases: dict[str, str]) -> dict[str, Any]:
    """What ``kerascut show --json`` prints: the pinned ``ref``, the pointers and the manifest."""
    pointers = (["latest"] if latest == manifest.version else []) + [a for a, v in aliases.items() if v == manifest.version]
    return {
        "ref": ref,
        "name": manifest.name,
        "version": manifest.version,
        "latest": latest,
        "aliases": aliases,
        "pointed_by": pointers,
        "manifest": manifest.model_dump(mode="json"),
    }


@click.command("show")
@click.argument("ref", metavar="STORE/NAME[@ALIAS|@VERSION]")
@click.option("--json", "as_json", is_flag=True, help="Print the pointers and the whole manifest as JSON.")
def show_cmd(ref: str, as_json: bool) -> None:
    """Show a published version: outputs, preprocessing, validation, aliases and lineage.

    Without @, latest. Nothing is downloaded but the manifest and the pointers.

    \b
    Examples:
      kerascut show s3://team-models/backbones/mnv2
      kerascut show ./backbones/mnv2@prod --json
    """
    from kerascut_core.publishing.consumer import resolve
    from kerascut_core.publishing.pointers import read_latest, scan_aliases

    store, name, version, manifest = resolve(ref)
    from kerascut_core.errors import ObjectNotFoundError, StoreError

    aliases, problems = scan_aliases(store, name)
    latest: str | None = None
    try:
        latest = read_latest(store, name)
    except ObjectNotFoundError:
        pass
    except StoreError as exc:  # a bad latest.json hides nothing else: the version is shown
        problems.append(str(exc))
    for problem in problems:
        echo(f"warning: {printable(' '.join(problem.split()), 300)}", err=True)
    if as_json:
        payload = show_payload(f"{store.root_uri}/{name}@{version}", manifest, latest=latest, aliases=aliases)
        echo(json.dumps(payload, indent=2))
        return
    echo("\n".join(show_lines(manifest, latest=latest, aliases=aliases)))


def register(app: click.Group) -> None:
    """Add ``kerascut show`` to ``app``."""
    app.add_command(show_cmd)
