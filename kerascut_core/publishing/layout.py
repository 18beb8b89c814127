"""The store layout: every object name kerascut writes, and the keys built from them.

One module owns every key: the rest of kerascut, the tasks and flows included,
builds keys here and never spells ``manifest.json`` or ``.staging`` itself. The layout is fixed;
consumers rely on it::

    <store>/.kerascut-store.json                      the root marker (the first publish writes it)
    <store>/<name>/<version>/model.keras              (+ saved_model/..., model.onnx, model.tflite,
                                                      graph.svg when configured)
    <store>/<name>/<version>/README.md                the model card, made from the manifest alone
    <store>/<name>/<version>/manifest.json            written last: its presence commits the version
    <store>/<name>/latest.json                        {"version": ..., ...}: the built-in pointer
    <store>/<name>/aliases/<alias>.json               a named pointer (same fields as latest.json)
    <store>/<name>/history/<stamp>-<8 hex>.json       one create-only entry per pointer move
    <store>/<name>/consumers/<id>.json                a registered consumer (what it relies on)
    <store>/.staging/<name>/<version>/<run_id>/...    candidates, then staged.json (written last)
    <store>/.staging/<name>/<version>/<run_id>/report.json   the validation report of that candidate
    <store>/.staging/<name>/<version>/<run_id>/run.json      its run record, written first
    <store>/.staging/<name>/<version>/claim.json      the commit lease of that version

The pointers (``latest.json`` and the aliases) and the consumer registrations are the only
mutable objects; history entries are written once and never changed. ``aliases``, ``history``
and ``consumers`` are reserved: no version can be called that (:func:`version_dir` refuses
them), so ``<name>/aliases/``, ``<name>/history/`` and ``<name>/consumers/`` are never mistaken
for version directories. An alias is a name (:func:`check_name`) that does not look like
a version (16 lowercase hex digits) and is not ``latest`` (the built-in alias, ``latest.json``).

Pure Python: names are checked (:func:`kerascut_core.uris.check_name`), nothing is read.

    >>> manifest_key("mnv2", "3f9a0c1d2e4b5a69")
    'mnv2/3f9a0c1d2e4b5a69/manifest.json'
    >>> run_prefix("mnv2", "3f9a0c1d2e4b5a69", "run-1")
    '.staging/mnv2/3f9a0c1d2e4b5a69/run-1'
    >>> run_of(".staging/mnv2/3f9a0c1d2e4b5a69/run-1/model.keras")
    '.staging/mnv2/3f9a0c1d2e4b5a69/run-1'
    >>> artifact_format("saved_model/variables/variables.index"), artifact_format("model.keras")
    ('saved_model', 'keras')
    >>> artifact_format(ONNX), artifact_format(LITERT), FORMAT_FILES["litert"]
    ('onnx', 'litert', 'model.tflite')
    >>> alias_key("mnv2", "prod"), history_key("mnv2", "20250102T030405.000006Z-0a1b2c3d")
    ('mnv2/aliases/prod.json', 'mnv2/history/20250102T030405.000006Z-0a1b2c3d.json')
    >>> looks_like_version("3f9a0c1d2e4b5a69"), looks_like_version("prod")
    (True, False)
    >>> consumer_key("mnv2", "detector-v3")
    'mnv2/consumers/detector-v3.json'
    >>> version_dir("mnv2", "history")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    kerascut_core.errors.StoreError: Expected a version name other than 'aliases', 'history' and 'consumers' ...
"""

from __future__ import annotations

import re

from kerascut_core._names import short_repr
from kerascut_core.artifacts import (
    CARD,
    FORMAT_FILES,
    GRAPH,
    LITERT,
    MODEL,
    ONNX,
    SAVED_MODEL,
    artifact_format,
)
from kerascut_core.errors import StoreError
from kerascut_core.uris import check_name

__all__ = [
    "ALIASES",
    "CARD",
    "CLAIM",
    "CONSUMERS",
    "FORMAT_FILES",
    "GRAPH",
    "HISTORY",
    "LATEST",
    "LATEST_ALIAS",
    "LITERT",
    "MANIFEST",
    "MARKER",
    "MODEL",
    "ONNX",
    "REPORT",
    "RESERVED",
    "RUN_RECORD",
    "SAVED_MODEL",
    "STAGED_INDEX",
    "STAGING",
    "alias_key",
    "aliases_dir",
    "artifact_format",
    "artifact_key",
    "check_alias",
    "check_history_id",
    "claim_key",
    "consumer_key",
    "consumers_dir",
    "history_dir",
    "history_key",
    "latest_key",
    "looks_like_version",
    "manifest_key",
    "manifest_ref",
    "run_of",
    "run_prefix",
    "staging_dir",
    "version_dir",
]

#: the root marker: its presence makes a directory or prefix a kerascut store
MARKER = ".kerascut-store.json"
#: the staging area: candidates and claims, never listed as published
STAGING = ".staging"
#: the manifest of a version, written last (its presence commits the version)
MANIFEST = "manifest.json"
#: the pointer of a backbone: the version consumers get by default
LATEST = "latest.json"
#: the commit lease of a version, under its staging directory
CLAIM = "claim.json"
#: the index of a staged candidate (paths, sizes, sha256), written last
STAGED_INDEX = "staged.json"
#: the validation report, beside the candidate it validated
REPORT = "report.json"
#: the run record of a staged candidate, its first object (who stages it, until when)
RUN_RECORD = "run.json"
#: the directory of a backbone's named pointers, ``<name>/aliases/<alias>.json``
ALIASES = "aliases"
#: the directory of a backbone's pointer history, ``<name>/history/<stamp>-<8 hex>.json``
HISTORY = "history"
#: the directory of a backbone's registered consumers, ``<name>/consumers/<id>.json``
CONSUMERS = "consumers"
#: directory names under a backbone that are never versions
RESERVED = frozenset({ALIASES, HISTORY, CONSUMERS})
#: the built-in alias: ``@latest`` is ``latest.json``
LATEST_ALIAS = "latest"

_VERSION = re.compile(r"[0-9a-f]{16}")
_HISTORY_ID = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{6}Z-[0-9a-f]{8}")
# an alias whose object would carry the name of another store object (``aliases/manifest.json``)
_LEAF_NAMES = frozenset(n.rsplit(".", 1)[0] for n in (MANIFEST, LATEST, CLAIM, STAGED_INDEX, REPORT))
# alias names refused whatever their case: the names of the other objects and directories of a backbone
_RESERVED_ALIASES = frozenset({*_LEAF_NAMES, *RESERVED})
_VERSION_ANY_CASE = re.compile(r"[0-9a-fA-F]{16}")


def looks_like_version(value: str) -> bool:
    """Whether ``value`` has the shape of a version (16 lowercase hex digits), which no alias may."""
    return isinstance(value, str) and _VERSION.fullmatch(value) is not None


def version_dir(name: str, version: str) -> str:
    """``<name>/<version>``: the directory of a published version (``aliases``, ``history`` and
    ``consumers`` are refused: they are the backbone's pointer and consumer directories)."""
    check_name(version, "version")
    if version in RESERVED:
        raise StoreError(
            f"Expected a version name other than {ALIASES!r}, {HISTORY!r} and {CONSUMERS!r} (reserved for the "
            f"aliases, the pointer history and the consumers of a backbone). Received {version!r}; publish under "
            "another version name."
        )
    return f"{check_name(name)}/{version}"


def manifest_key(name: str, version: str) -> str:
    """``<name>/<version>/manifest.json``."""
    return f"{version_dir(name, version)}/{MANIFEST}"


def artifact_key(name: str, version: str, path: str) -> str:
    """``<name>/<version>/<path>``: an artifact of a published version (``path`` is checked by
    the caller, see :func:`kerascut_core.uris.check_key`)."""
    return f"{version_dir(name, version)}/{path}"


def manifest_ref(version: str) -> str:
    """``<version>/manifest.json``: the manifest as ``latest.json`` names it (relative to the backbone)."""
    return f"{version}/{MANIFEST}"


def latest_key(name: str) -> str:
    """``<name>/latest.json``."""
    return f"{check_name(name)}/{LATEST}"


def check_alias(alias: str) -> str:
    """``alias`` when it can name an alias; else a one-line StoreError naming the alias and the rule.

    An alias is one name segment that cannot be confused with anything else ``@x`` or a store
    key can mean: not shaped like a version in any case (16 hex digits: ``@0123456789ABCDEF``
    must not hide a version on a case-insensitive eye or file system), and not, case-folded,
    ``latest`` (built in) or the name of another store object or directory (``Manifest``,
    ``HISTORY``, ``Aliases``, ``claim``, ...)."""
    check_name(alias, "alias")
    if _VERSION_ANY_CASE.fullmatch(alias):
        raise StoreError(
            f"Expected an alias name that does not look like a version (16 hex digits, in any case). Received "
            f"{alias!r}; `@{alias.lower()}` must keep meaning that version, so pick a word such as prod or staging."
        )
    folded = alias.casefold()
    if folded == LATEST_ALIAS or folded in _RESERVED_ALIASES:
        what = "the built-in alias (latest.json)" if folded == LATEST_ALIAS else "reserved for a store object"
        raise StoreError(
            f"Expected an alias name other than {alias!r}: {folded!r} is {what}, and reserved names are compared "
            "without case. Received "
            f"{alias!r}; " + ("promote without --alias to move latest." if folded == LATEST_ALIAS else "pick another name.")
        )
    return alias


def aliases_dir(name: str) -> str:
    """``<name>/aliases``."""
    return f"{check_name(name)}/{ALIASES}"


def alias_key(name: str, alias: str) -> str:
    """``<name>/aliases/<alias>.json`` (``alias`` checked by :func:`check_alias`)."""
    return f"{aliases_dir(name)}/{check_alias(alias)}.json"


def history_dir(name: str) -> str:
    """``<name>/history``."""
    return f"{check_name(name)}/{HISTORY}"


def check_history_id(entry_id: str) -> str:
    """``entry_id`` when it is ``<YYYYmmddTHHMMSS.ffffffZ>-<8 hex>`` (UTC), else a one-line StoreError."""
    if not isinstance(entry_id, str) or not _HISTORY_ID.fullmatch(entry_id):
        raise StoreError(
            "Expected a history entry id such as 20250102T030405.000006Z-0a1b2c3d (UTC time, then 8 hex "
            f"digits). Received {short_repr(entry_id)}; history entries are named by kerascut only."
        )
    return entry_id


def history_key(name: str, entry_id: str) -> str:
    """``<name>/history/<entry_id>.json``: one pointer move (written once, never changed)."""
    return f"{history_dir(name)}/{check_history_id(entry_id)}.json"


def consumers_dir(name: str) -> str:
    """``<name>/consumers``."""
    return f"{check_name(name)}/{CONSUMERS}"


def consumer_key(name: str, consumer: str) -> str:
    """``<name>/consumers/<consumer>.json``: one registered consumer (``consumer`` is a name,
    :func:`kerascut_core.uris.check_name`)."""
    return f"{consumers_dir(name)}/{check_name(consumer, 'consumer')}.json"


def staging_dir(name: str, version: str) -> str:
    """``.staging/<name>/<version>``: the candidates and the claim of a version."""
    return f"{STAGING}/{version_dir(name, version)}"


def claim_key(name: str, version: str) -> str:
    """``.staging/<name>/<version>/claim.json``."""
    return f"{staging_dir(name, version)}/{CLAIM}"


def run_prefix(name: str, version: str, run_id: str) -> str:
    """``.staging/<name>/<version>/<run_id>``: the directory of one run's candidate."""
    return f"{staging_dir(name, version)}/{check_name(run_id, 'run id')}"


def run_of(key: str) -> str | None:
    """The run directory (``.staging/<name>/<version>/<run_id>``) of ``key`` (a key inside it,
    or the directory itself), or ``None`` when ``key`` is not under a run of the staging area."""
    parts = key.split("/")
    if len(parts) < 4 or parts[0] != STAGING:
        return None
    return "/".join(parts[:4])
