"""The model card: ``<name>/<version>/README.md``, made from the version's manifest alone.

The card tells a person what the manifest tells a program: the outputs (channels, stride), the
inputs, the preprocessing to apply, the validation, the picture, a loading snippet and where the
backbone came from, under model-hub front matter (``base_model``, ``library_name: keras``,
``tags``). It is listed in the manifest's artifacts with its sha256, so it is defined on the
manifest *without its own entry*: ``card = model_card(manifest)``, where :func:`model_card`
leaves the card's entry out before it writes a word, and never reads ``created_at`` (set at the
commit, after the card is staged). So the published card regenerates byte for byte from the
published manifest.

:func:`stage_card` is the publishing step: it fills the manifest's artifacts from the staged
candidate, makes the card and stages it beside them, so the commit copies and checks it like
every other artifact.

    >>> card = model_card(read_manifest(store, "mnv2", version))   # doctest: +SKIP
    >>> card == store.get_bytes(f"mnv2/{version}/README.md").decode()  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from typing import Any

from kerascut_core.formatting import number_text, shape_text, stride_text
from kerascut_core.publishing.layout import CARD, GRAPH
from kerascut_core.publishing.manifest import Manifest
from kerascut_core.sources.preprocessing import MODES
from kerascut_core.stores import Store
from kerascut_core.text import for_markdown, for_terminal
from kerascut_core.uris import APPLICATIONS_PREFIX

__all__ = ["card_subject", "model_card", "stage_card"]


def card_subject(manifest: Manifest) -> Manifest:
    """The manifest a card is made from: ``manifest`` without the card's own artifact entry."""
    return manifest.model_copy(update={"artifacts": [a for a in manifest.artifacts if a.path != CARD]})


def _text(value: Any, limit: int = 200) -> str:
    """A manifest value as Markdown text (:func:`for_markdown`): bounded, control and bidi
    characters escaped, and inert: it cannot become a link, a heading, a table break or HTML."""
    return for_markdown(value, limit)


def _code(value: Any, limit: int = 200) -> str:
    """A manifest value as a code span: shown literally (HTML in it is not HTML), with no
    backtick to end the span early and no ``|`` to break a table row."""
    return "`" + for_terminal(value, limit).replace("`", "'").replace("|", "\\|") + "`"


def _yaml(value: str) -> str:
    return json.dumps(for_terminal(value, 200))  # a JSON string is a YAML double-quoted scalar


def _number(value: Any) -> str:
    return _text(number_text(value))


def _cut(manifest: Manifest) -> str:
    cut = manifest.cut
    start = f"after the first {cut.drop_first} layers" if cut.drop_first else (
        f"from {_code(cut.start)}" if cut.start is not None else "from the source's inputs"
    )
    end = f"to {_code(cut.end)}" if cut.end is not None else "to the source's outputs"
    if cut.levels is not None:
        end += f" (levels {_code(cut.levels)})"
    return f"{start} {end}"


def _front_matter(manifest: Manifest) -> list[str]:
    tags = ["kerascut", "backbone", "image-feature-extraction"]
    if manifest.source.uri.startswith(APPLICATIONS_PREFIX):
        tags += ["keras-applications", manifest.source.uri[len(APPLICATIONS_PREFIX):].lower()]
    return [
        "---",
        f"base_model: {_yaml(manifest.source.uri)}",
        "library_name: keras",
        "pipeline_tag: image-feature-extraction",
        "tags:",
        *(f"- {_yaml(tag)}" for tag in tags),
        "---",
    ]


def _outputs(manifest: Manifest) -> list[str]:
    rows = ["| output | address | shape | dtype | channels | stride |", "| --- | --- | --- | --- | --- | --- |"]
    for o in manifest.outputs:
        rows.append(
            f"| {_code(o.name)} | {_code(o.address) if o.address else '?'} | {shape_text(o.shape)} | {_text(o.dtype)} "
            f"| {_number(o.channels)} | {_output_stride(o)} |"
        )
    note = []
    if any(o.pyramid is not None for o in manifest.outputs):
        note = [
            "",
            "The outputs are the pyramid `auto-pyramid` found from the graph: level k (`Pk`) is the latest valid "
            "cut point at stride 2^k. A *nominal* stride is the power of two nearest the measured reduction, "
            "where `valid` padding makes it inexact at every input size.",
        ]
    return [
        "## Outputs",
        "",
        *rows,
        "",
        "Stride: source-input pixels per output pixel (per spatial axis when they differ; `?` where the static "
        "shapes do not tell).",
        *note,
    ]


def _output_stride(output: Any) -> str:
    tap = output.pyramid
    if tap is None:
        return stride_text(output.stride, sep=" x ")
    if not tap.exact:
        return f"{tap.stride} (nominal)"
    return stride_text(output.stride, sep=" x ") if output.stride else str(tap.stride)


def _inputs(manifest: Manifest) -> list[str]:
    rows = ["| input | shape | dtype | replaces |", "| --- | --- | --- | --- |"]
    for i in manifest.inputs:
        rows.append(f"| {_code(i.name)} | {shape_text(i.shape)} | {_text(i.dtype)} | {_code(i.replaces) if i.replaces else '?'} |")
    return ["## Inputs", "", *rows]


def _preprocessing(manifest: Manifest) -> list[str]:
    pre = manifest.preprocessing
    lines = ["## Preprocessing", ""]
    if pre is None:
        lines.append("Not recorded (a manifest of schema version 1): see where the source model came from.")
    else:
        what = MODES.get(pre.mode, pre.mode)
        if pre.mode == "scale_offset":
            what = f"x * {_number(pre.scale)} + {_number(pre.offset)}"
        lines.append(f"The source expects mode {_code(pre.mode)}: {what}.")
        if pre.function:
            lines.append("")
            lines.append(
                f"Apply {_code(pre.function)} to raw images before the backbone."
                if pre.applies_to_inputs
                else f"The backbone's inputs are tensors from inside the source, not images: the source computes "
                f"them from images preprocessed with {_code(pre.function)}."
            )
        kept = [layer for layer in pre.layers if layer.kept]
        if kept:
            lines += ["", "In-graph preprocessing kept by the cut: " + ", ".join(f"{_code(x.address)} ({_text(x.type)})" for x in kept) + "."]
        if pre.dropped:
            lines += ["", "In-graph preprocessing dropped by the cut: " + ", ".join(f"{_code(x.address)} ({_text(x.type)})" for x in pre.dropped) + "."]
        if pre.note:
            lines += ["", f"Note: {_text(pre.note, 400)}."]
    for warning in manifest.warnings:
        lines += ["", f"> **Warning:** {_text(warning, 1000)}"]
    return lines


def _validation(manifest: Manifest) -> list[str]:
    report = manifest.validation
    extra = report.model_extra or {}
    device = extra.get("device")
    where = device.get("name") if isinstance(device, dict) else None
    kind = device.get("kind") if isinstance(device, dict) else None
    shown = f"{where} ({kind})" if where and kind else (where or kind or "?")
    return [
        "## Validation",
        "",
        "| passed | device | max abs diff | samples | atol | rtol |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {'yes' if report.passed else 'no'} | {_text(shown)} | {_number(report.max_abs_diff)} | {_number(extra.get('samples'))} "
        f"| {_number(extra.get('atol'))} | {_number(extra.get('rtol'))} |",
        "",
        "The backbone's outputs were compared with the source's own tensors at the same addresses.",
    ]


def _snippet(manifest: Manifest) -> list[str]:
    ref = f"{manifest.name}@{manifest.version}"
    body = [
        "import kerascut_core as kc",
        "",
        'STORE = "s3://bucket/prefix"  # the store this card is in',
        f'model, contract = kc.load_backbone_with_contract(f"{{STORE}}/{ref}")',
    ]
    pre = manifest.preprocessing
    if pre is not None and pre.function and pre.applies_to_inputs:
        body += ["x = contract.preprocess(images)  # " + for_terminal(pre.function, 120).replace("`", "'"), "features = model(x)"]
    else:
        body += ["features = model(inputs)"]
    body += ["print(contract.channels, contract.strides)"]
    return ["## Use it", "", "```python", *body, "```"]


def _lineage(manifest: Manifest) -> list[str]:
    source, software = manifest.source, manifest.software
    lines = [
        "## Lineage",
        "",
        f"- source: {_code(source.uri, 400)}" + (f" (weights {_code(source.weights)})" if source.weights else ""),
        f"- fingerprint: {_code(source.fingerprint, 400)}",
    ]
    if source.sha256:
        lines.append(f"- source sha256: {_code(source.sha256)}")
    lines.append(
        f"- made with kerascut {_text(software.kerascut)}, Keras {_text(software.keras or '?')}, "
        f"TensorFlow {_text(software.tensorflow or '?')}, backend {_text(software.keras_backend or '?')}, "
        f"Python {_text(software.python)}"
    )
    if manifest.lineage is not None and manifest.lineage.flow_run_id:
        lines.append(f"- Prefect flow run: {_code(manifest.lineage.flow_run_id)}")
    lines.append(f"- parameters: {manifest.params.kept:,} kept of {manifest.params.total_source:,} in the source")
    return lines


def _changes(manifest: Manifest) -> list[str]:
    changes = manifest.changes
    if changes is None:
        return []
    lines = [f"## Changes from {_code(changes.from_version)}", "",
             f"**{_text(changes.verdict)}** against the version `latest` named when this one was published "
             f"(`kerascut diff STORE/{_text(manifest.name)}@{_text(changes.from_version)} "
             f"STORE/{_text(manifest.name)}@{_text(manifest.version)}` compares the numbers too).", ""]
    rows = [*changes.interface, *changes.preprocessing, *([changes.weights] if changes.weights else []),
            *changes.lineage]
    lines += [f"- {_text(row, 400)}" for row in rows[:100]] or ["- no change of interface, preprocessing or lineage"]
    return lines


def _files(manifest: Manifest) -> list[str]:
    rows = ["| file | format | bytes | sha256 |", "| --- | --- | --- | --- |"]
    for a in manifest.artifacts:
        rows.append(f"| {_code(a.path)} | {_text(a.format)} | {a.bytes:,} | {_code(a.sha256)} |")
    rows += [f"| {_code(CARD)} | md | | this card |"]
    return ["## Files", "", *rows]


def model_card(manifest: Manifest) -> str:
    """The model card of ``manifest``'s version (Markdown with front matter); a pure function of
    the manifest without its card entry (:func:`card_subject`), ``created_at`` unread."""
    m = card_subject(manifest)
    sections = [
        _front_matter(m),
        [f"# {_text(m.name)}", "", f"Version {_code(m.version)} of backbone {_code(m.name)}: {_code(m.source.uri, 400)} "
         f"cut {_cut(m)} by kerascut, and published only after its validation passed."],
        _outputs(m),
        _inputs(m),
        _preprocessing(m),
        _validation(m),
    ]
    if m.artifact(GRAPH) is not None:
        sections.append(["## Picture", "", f"![{_text(m.name)}]({GRAPH})"])
    if m.changes is not None:
        sections.append(_changes(m))
    sections += [_snippet(m), _lineage(m), _files(m)]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def stage_card(store: Store, staged: str, manifest: Manifest) -> Manifest:
    """``manifest`` with its artifacts: the staged candidate's, then the card made from them,
    staged beside them (:func:`kerascut_core.publishing.staging.add_staged_file`)."""
    from kerascut_core.publishing.staging import add_staged_file, staged_artifacts

    artifacts = [a for a in staged_artifacts(store, staged, manifest.name, manifest.version) if a.path != CARD]
    subject = manifest.model_copy(update={"artifacts": artifacts})
    card = add_staged_file(store, staged, manifest.name, manifest.version, CARD, model_card(subject).encode())
    return subject.model_copy(update={"artifacts": [*artifacts, card]})
