"""Generate the README's config reference from the pydantic config schema, so it cannot drift.

    python scripts/config_reference.py          # rewrite the README section in place
    python scripts/config_reference.py --check  # exit 1 if the README is out of date

The section sits between ``<!-- config-reference:start -->`` and ``<!-- config-reference:end -->``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " \\| ".join(_type(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop:
        return f"map of {_type(prop['additionalProperties'])}"
    return {"null": "null", "integer": "int", "number": "float", "boolean": "bool",
            "string": "str"}.get(kind, kind)


def _default(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" in prop:
        return f"`{json.dumps(prop['default'])}`"
    return ""


def _clean(text: str) -> str:
    """Docstring markup to Markdown, on one line."""
    text = " ".join(text.split()).replace("``", "`")
    return re.sub(r":(?:class|func|mod):`~?([^`]+)`", r"`\1`", text)


def _table(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    lines = ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, prop in schema.get("properties", {}).items():
        text = _clean(prop.get("description", "")).replace("|", "\\|")
        lines.append(f"| `{name}` | {_type(prop)} | {_default(prop, name in required)} | {text} |")
    return lines


def render(schema: dict[str, Any]) -> str:
    """Markdown tables for the top level and for every model it refers to."""
    lines = [f"_{schema.get('description', '')}_ (JSON schema: `kerascut config schema`)", ""]
    lines += [f"### {schema.get('title', 'Config')} (top level)", "", *_table(schema), ""]
    for name, sub in schema.get("$defs", {}).items():
        if sub.get("type") == "object" or "properties" in sub:
            lines += [f"### {name}", "", _clean(sub.get("description", "")), ""]
            lines += [*_table(sub), ""]
    return "\n".join(lines).rstrip() + "\n"


def _rewritten(readme: str, body: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{body}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from kerascut_core.config import config_json_schema

    readme = README.read_text()
    new = _rewritten(readme, render(config_json_schema()))
    if args.check:
        if new != readme:
            print("README.md's config reference is out of date: run python scripts/config_reference.py")
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
