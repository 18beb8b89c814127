"""The catalog's pages: the index, one page per backbone, one page per version.

Each renderer takes what the builder read (records, one manifest, the diff to the previous
version) and returns a whole page; nothing here reads the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kerascut_core.catalog.html import cell, code, link, page, table
from kerascut_core.publishing.consumer_registry import ConsumerRecord
from kerascut_core.publishing.diff import VersionDiff
from kerascut_core.publishing.history import HistoryEntry
from kerascut_core.publishing.manifest import Manifest

__all__ = ["BackboneSummary", "VersionRow", "backbone_page", "index_page", "version_page"]


def _dims(values: Sequence[int | None] | None) -> str:
    return "?" if values is None else "(" + ", ".join("?" if v is None else str(v) for v in values) + ")"


def _verdict(verdict: str | None) -> str:
    return f'<span class="{cell(verdict)}">{cell(verdict)}</span>' if verdict else '<span class="muted">first</span>'


@dataclass
class VersionRow:
    """One version on a backbone's timeline."""

    version: str
    created_at: str
    verdict: str | None
    previous: str | None
    pointers: list[str] = field(default_factory=list)


@dataclass
class BackboneSummary:
    """What the index shows of one backbone."""

    name: str
    latest: str | None
    aliases: dict[str, str]
    consumers: list[str]
    outputs: list[str]
    last_refresh: str | None
    versions: int


def index_page(store_uri: str, backbones: Sequence[BackboneSummary], problems: Sequence[str]) -> str:
    rows = [
        [link(f"b/{b.name}/index.html", b.name),
         link(f"b/{b.name}/{b.latest}/index.html", b.latest) if b.latest else '<span class="muted">none</span>',
         ", ".join(f"{cell(a)} → {code(v)}" for a, v in b.aliases.items()) or '<span class="muted">none</span>',
         ", ".join(cell(c) for c in b.consumers) or '<span class="muted">none</span>',
         "<br>".join(cell(o) for o in b.outputs), cell(b.last_refresh or "-"), str(b.versions)]
        for b in backbones
    ]
    body = (f"<h1>Backbones in {code(store_uri, 300)}</h1>"
            + table(["backbone", "latest", "aliases", "consumers", "outputs (latest)", "last refresh", "versions"], rows,
                    empty="No backbone is published in this store yet.")
            + _problems(problems))
    return page("kerascut catalog", body, root="")


def _problems(problems: Sequence[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{cell(p, 400)}</li>" for p in problems[:200])
    return f"<h2>Skipped while reading</h2><ul>{items}</ul>"


def _forced(entry: HistoryEntry) -> str:
    if not entry.override:
        return ""
    broke = [str(b.get("consumer")) for b in entry.override.get("broke") or [] if isinstance(b, dict)]
    return f" <strong>forced past {cell(', '.join(broke))}</strong>"


def backbone_page(name: str, timeline: Sequence[VersionRow], history: Sequence[HistoryEntry],
                  consumers: Sequence[ConsumerRecord], problems: Sequence[str]) -> str:
    items = []
    for row in reversed(timeline):  # newest first
        against = f" against {code(row.previous)}" if row.previous else ""
        marks = f" ← {', '.join(cell(p) for p in row.pointers)}" if row.pointers else ""
        items.append(f"<li>{link(f'{row.version}/index.html', row.version)} <span class=\"muted\">"
                     f"{cell(row.created_at)}</span> {_verdict(row.verdict)}{against}{marks}</li>")
    moves = [[cell(e.at), cell(e.pointer), code(e.from_ or "-"), code(e.to),
              cell("@".join(v or "?" for v in (e.by.get("user"), e.by.get("host")))),
              cell(e.reason or "") + _forced(e)]
             for e in reversed(history)]
    users = [[cell(c.consumer), cell(c.follows), code(c.version), cell(", ".join(c.outputs)),
              cell("-" if c.max_drift is None else f"{c.max_drift:g}"), cell(c.reason or "")] for c in consumers]
    body = (f"<h1>{cell(name)}</h1>"
            f"<h2>Versions</h2><ul class=\"timeline\">{''.join(items)}</ul>"
            + ("" if items else '<p class="muted">No committed version.</p>')
            + "<h2>Alias history</h2>"
            + table(["at", "pointer", "from", "to", "by", "reason"], moves, empty="No pointer moves recorded.")
            + "<h2>Consumers</h2>"
            + table(["consumer", "follows", "registered on", "outputs", "max drift", "reason"], users,
                    empty="No consumer is registered.")
            + _problems(problems))
    return page(name, body, root="../../", crumbs=[("index.html", name)])


def _contract(m: Manifest) -> str:
    outputs = [[cell(o.name), code(o.address or "-"), cell(_dims(o.shape)), cell(o.dtype), cell(o.channels),
                cell(_dims(o.stride))] for o in m.outputs]
    inputs = [[cell(i.name), cell(_dims(i.shape)), cell(i.dtype), code(i.replaces or "-")] for i in m.inputs]
    pre = m.preprocessing
    pre_html = '<p class="muted">not recorded</p>' if pre is None else (
        f"<p>mode {code(pre.mode)}, function {code(pre.function or '-')}, applies to the inputs: "
        f"{cell('yes' if pre.applies_to_inputs else 'no')}</p>"
        + table(["in-graph layer", "type", "kept"], [[code(x.address), cell(x.type), cell("kept" if x.kept else "dropped")]
                                                     for x in pre.layers], empty="No in-graph preprocessing layer.")
    )
    return ("<h2>Contract</h2><h3>Outputs</h3>"
            + table(["output", "address", "shape", "dtype", "channels", "stride"], outputs)
            + "<h3>Inputs</h3>" + table(["input", "shape", "dtype", "replaces"], inputs)
            + "<h3>Preprocessing</h3>" + pre_html
            + "".join(f"<p>warning: {cell(w)}</p>" for w in m.warnings[:20]))


def _validation(m: Manifest) -> str:
    v = m.validation
    extra: dict[str, Any] = dict(v.model_extra or {})
    rows = [[cell("passed"), cell("yes" if v.passed else "no")],
            [cell("max abs diff"), cell(v.max_abs_diff)]]
    for key in ("device", "samples", "seed", "atol", "rtol"):
        if key in extra:
            rows.append([cell(key), cell(extra[key], 200)])
    found = extra.get("outputs")
    checks: list[Any] = found if isinstance(found, list) else []
    per_output = [[cell(c.get("name")), cell(c.get("max_abs_diff")), cell(c.get("max_rel_diff")), cell(c.get("passed"))]
                  for c in checks[:100] if isinstance(c, dict)]
    return ("<h2>Validation</h2>" + table(["", ""], rows)
            + (table(["output", "max abs diff", "max rel diff", "passed"], per_output) if per_output else ""))


def _diff(result: VersionDiff | None) -> str:
    if result is None:
        return '<h2>Diff to the previous version</h2><p class="muted">The first version of this backbone.</p>'
    rows = [*result.interface, *result.preprocessing, *result.lineage]
    weights = f"<p>{cell(result.weights.line())}</p>" if result.weights is not None else \
        f'<p class="muted">Weights: the model files differ ({code("kerascut diff")} compares them).</p>'
    previous = str(result.a["version"])
    return (f"<h2>Diff to the previous version, {link(f'../{previous}/index.html', previous)}</h2>"
            f"<p>{_verdict(result.verdict)}</p>"
            + "<ul>" + "".join(f"<li>{cell(c.line())}</li>" for c in rows) + "</ul>" + weights)


def version_page(m: Manifest, diff: VersionDiff | None, *, graph: bool, pointers: Sequence[str]) -> str:
    changes = ""
    if m.changes is not None:
        changes = (f"<h2>Changes from {code(m.changes.from_version)} (at publish)</h2><p>{_verdict(m.changes.verdict)}</p>"
                   + "<ul>" + "".join(f"<li>{cell(r)}</li>" for r in m.changes.reasons[:100]) + "</ul>")
    files = [[code(a.path), cell(a.format), cell(f"{a.bytes:,}"), code(a.sha256)] for a in m.artifacts]
    source = m.source
    body = (
        f"<h1>{cell(m.name)} {code(m.version)}</h1>"
        f"<p>{cell(source.uri, 400)} cut by kerascut {cell(m.software.kerascut)} (Keras {cell(m.software.keras or '?')}, "
        f"backend {cell(m.software.keras_backend or '?')}), committed {cell(m.created_at.isoformat())}"
        + (f"; named by {cell(', '.join(pointers))}" if pointers else "") + ".</p>"
        f"<p>Load it: {code(f'kc.load_backbone(STORE/{m.name}@{m.version})', 400)}</p>"
        + _contract(m)
        + (f'<h2>Picture</h2><img class="graph" src="graph.svg" alt="{cell(m.name)}">' if graph else "")
        + _validation(m) + changes + _diff(diff)
        + "<h2>Lineage</h2>" + table(["", ""], [
            [cell("source"), code(source.uri, 400)], [cell("fingerprint"), code(source.fingerprint, 400)],
            [cell("tensorflow"), cell(m.software.tensorflow or "-")], [cell("python"), cell(m.software.python)],
            [cell("flow run"), cell(m.lineage.flow_run_id if m.lineage and m.lineage.flow_run_id else "-")]])
        + "<h2>Files</h2>" + table(["file", "format", "bytes", "sha256"], files)
    )
    return page(f"{m.name} {m.version}", body, root="../../../",
                crumbs=[("../index.html", m.name), ("index.html", m.version)])
