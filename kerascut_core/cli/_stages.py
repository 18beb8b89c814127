"""``kerascut inspect MODEL --stages``: one row per stride, and a keras-hub backbone's own taps beside.

A row is a stage (:func:`kerascut_core.surgery.stages`): its level and stride, whether the
stride is exact or nominal, the first and the latest valid cut point at that stride (the latest
is the ``auto-pyramid`` tap), the tap's channels, and the layers and parameters of the stage.
For a backbone with hand-written ``pyramid_outputs`` (keras-hub), a second table says, key by
key, where those taps and the auto-pyramid agree and where they differ.
"""

from __future__ import annotations

import json
from typing import Any

from kerascut_core.text import printable

__all__ = ["stages_json", "stages_report", "stages_text"]


def stages_report(model: Any) -> dict[str, Any]:
    """``{"model", "stages": [...], "pyramid_outputs": [...] or None}`` (JSON-ready)."""
    from kerascut_core.surgery.feature_pyramid import compare_pyramid_outputs, stages

    return {
        "model": model.name,
        "stages": [s.to_dict() for s in stages(model)],
        "pyramid_outputs": compare_pyramid_outputs(model),
    }


def stages_json(report: dict[str, Any]) -> str:
    """Valid JSON with one stage per line."""
    rows = ",\n".join("  " + json.dumps(row) for row in report["stages"])
    hub = json.dumps(report["pyramid_outputs"])
    return f'{{"model": {json.dumps(report["model"])}, "stages": [\n{rows}\n], "pyramid_outputs": {hub}}}'


def _cell(value: Any) -> str:
    return "-" if value is None else printable(str(value), 200)


def _grid(header: list[str], cells: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *map(line, cells)]


def stages_text(report: dict[str, Any]) -> str:
    """The stages table, then (for a backbone with ``pyramid_outputs``) the agreement table."""
    cells = [
        [f"P{s['level']}", str(s["stride"]), "exact" if s["exact"] else f"nominal ({s['reduction']:.2f})",
         _cell(s["first"]), _cell(s["latest"]), _cell(s["channels"]), f"{s['layers']:,}", f"{s['params']:,}"]
        for s in report["stages"]
    ]
    header = ["level", "stride", "stride is", "first cut point", "latest cut point (tap)", "channels", "layers",
              "params"]
    lines = _grid(header, cells, {1, 5, 6, 7})
    lines.append(
        f"\n{printable(report['model'], 200)}: {len(cells)} stages. end=auto-pyramid takes each level's latest cut "
        "point (default levels: 2 up to the last)."
    )
    hub = report["pyramid_outputs"]
    if hub is not None:
        rows = [
            [_cell(r["key"]), _cell(r["hand_written"]), _cell(r["hand_written_stride"]), _cell(r["auto"]),
             "yes" if r["agree"] else "no"]
            for r in hub
        ]
        agree = sum(r["agree"] for r in hub)
        lines += ["", "pyramid_outputs (hand-written) against auto-pyramid:", ""]
        lines += _grid(["key", "pyramid_outputs", "its stride", "auto-pyramid", "agree"], rows, {2})
        lines.append(f"\n{agree} of {len(hub)} keys agree.")
    return "\n".join(lines)
