"""Reading a config file: bounded, and with every key given once per mapping.

A file is refused, before any of it is turned into Python objects, when it is larger than
:data:`MAX_CONFIG_BYTES`, nests deeper than :data:`MAX_YAML_DEPTH`, expands through anchors
and aliases to more than :data:`MAX_YAML_NODES` nodes (a "billion laughs" file) or holds an
integer of more than :data:`MAX_INT_DIGITS` characters. A key given twice in one mapping is
an error (PyYAML would keep the last value). :func:`read_config_file` is the one public step.

    >>> _load_yaml("{a: &x [1, 2], b: *x}")
    {'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from kerascut_core._names import clip, short_repr
from kerascut_core.errors import ConfigError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_INT_DIGITS",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "read_config_file",
]

#: Limits of a config file, so that a careless or hostile file fails fast with one line.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: YAML nodes after anchors and aliases are expanded (a "billion laughs" file is refused).
MAX_YAML_NODES = 100_000
#: Nesting of YAML collections, after alias expansion (a config needs about 6 levels).
MAX_YAML_DEPTH = 64
#: Characters of one integer scalar (Python refuses to parse more than 4300 digits anyway).
MAX_INT_DIGITS = 100


def read_config_file(path: str | os.PathLike[str]) -> tuple[Any, str]:
    """The parsed YAML of a config file and the file name to show in messages.

    The reading step of :func:`kerascut_core.config.load_config`, with its limits; every
    problem is one ``ConfigError`` line naming the file (and the line and column, for YAML).
    """
    path = Path(path).expanduser()
    shown = clip(str(path), 300)
    if not path.is_file():
        raise ConfigError(
            f"Expected a config file. Received {short_repr(str(path), 300)}, which "
            + ("is a directory." if path.is_dir() else "does not exist.")
            + " See deployments/quickstart.yaml for an example."
        )
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{shown}: Expected a config file of at most {MAX_CONFIG_BYTES // (1024 * 1024)} MiB. "
                "Received a larger file; a config names backbones and settings, not data: split it "
                "into several configs."
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Could not read config {short_repr(str(path), 300)}: {clip(str(exc), 300)}.") from None
    try:
        data = _load_yaml(text)
    except _LimitError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{shown}{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{shown}{where}: Expected valid YAML. Received a syntax error: {clip(problem, 300)}. "
            "Fix the YAML there."
        ) from None
    except (ValueError, OverflowError) as exc:  # belt and braces: constructors are wrapped above
        raise ConfigError(
            f"{shown}: Expected valid YAML values. Received one that cannot be read: "
            f"{clip(str(exc), 200)}. Fix the value."
        ) from None
    except RecursionError:  # belt and braces: the depth limit comes first
        raise ConfigError(
            f"{shown}: Expected YAML nested at most {MAX_YAML_DEPTH} levels deep. Received nesting "
            "too deep to read; flatten it."
        ) from None
    return data, shown


class _LimitError(yaml.MarkedYAMLError):
    """A YAML document over one of the limits; ``problem`` is the whole one-line message."""


def _load_yaml(text: str) -> Any:
    """``yaml.load`` with :class:`_UniqueKeyLoader`, the alias expansion checked in between."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a composed document that aliases expand past the node or depth limits.

    Aliases are shared nodes in the composed graph, so the expanded size is counted once per
    distinct node (memoised, iteratively): the check costs the size of the file, not of the
    expansion. Counts saturate just above the limit.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            size[key] = min(MAX_YAML_NODES + 1, 1 + sum(size[id(c)] for c in children))
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            continue
        if key in size:
            continue
        if key in on_path:
            raise _LimitError(
                None, None,
                "Expected YAML without recursive aliases. Received an alias inside its own anchor "
                "here; a config cannot contain itself, write the value out.",
                node.start_mark,
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in size)
    if size[id(root)] > MAX_YAML_NODES:
        raise _LimitError(
            None, None,
            f"Expected at most {MAX_YAML_NODES:,} YAML values once anchors and aliases are expanded. "
            "Received aliases that expand to more (a 'billion laughs' document); write the values "
            "out, or alias only small blocks such as `<<: *defaults`.",
            None,
        )
    if depth[id(root)] > MAX_YAML_DEPTH:
        raise _LimitError(
            None, None,
            f"Expected YAML nested at most {MAX_YAML_DEPTH} levels deep once aliases are expanded. "
            "Received aliases nested inside each other deeper than that; write the values out.",
            None,
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping, with limits.

    PyYAML silently keeps the last value, so ``end: c3`` and a later ``end: c1`` in the same
    backbone would cut somewhere the reader of the file does not expect. Merge keys
    (``<<: *defaults``) work as in YAML 1.1: the keys written out override merged ones.
    Nesting deeper than :data:`MAX_YAML_DEPTH` and integers longer than :data:`MAX_INT_DIGITS`
    are refused while the file is read (PyYAML composes recursively, and ``int()`` refuses
    4300+ digits with a bare ``ValueError``).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _LimitError(
                    None, None,
                    f"Expected YAML nested at most {MAX_YAML_DEPTH} levels deep. Received deeper "
                    "nesting here; flatten it (a config needs about 6 levels).",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # e.g. the date 2024-13-45
            if isinstance(node, yaml.ScalarNode):
                value = short_repr(node.value, 60)
            else:  # a SequenceNode or MappingNode: "<sequence>", "<mapping>"
                value = f"<{getattr(node, 'id', 'node')}>"
            raise yaml.constructor.ConstructorError(
                None, None, f"the value {value} cannot be read ({clip(str(exc), 100)})", node.start_mark,
            ) from None

    def _construct_int(self, node: yaml.ScalarNode) -> int:
        text = str(node.value)
        if len(text) > MAX_INT_DIGITS:
            raise _LimitError(
                None, None,
                f"Expected integers of at most {MAX_INT_DIGITS} digits. Received an integer of "
                f"{len(text):,} characters here; use a sensible number.",
                node.start_mark,
            )
        return self.construct_yaml_int(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: the base class merges, and explicit keys win
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"found the key {short_repr(key)} twice in one mapping; keep one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader._construct_int)
