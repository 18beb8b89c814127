"""Registered consumers: the downstream models that follow a pointer, and what each relies on.

``<name>/consumers/<ID>.json`` (the key is :func:`~kerascut_core.publishing.layout.consumer_key`)
records a consumer: the pointer it ``follows`` (``latest``, an alias, or a version it pins), the
outputs it uses with their shape, dtype, channels and stride at registration, the
preprocessing, an optional relative drift bound (``max_drift``) and the ``version`` the pointer
named when it registered (the numbers it was trained on)::

    {"consumer": "detector-v3", "follows": "latest", "version": "3f9a0c1d2e4b5a69",
     "outputs": {"C4": {"shape": [null, 14, 14, 1024], "dtype": "float32", "channels": 1024, "stride": [16, 16]}},
     "preprocessing": {"mode": "caffe", ...}, "max_drift": 0.01, "reason": "...",
     "registered_at": "...", "by": {"user": "ana", "host": "ws-12"}}

It is written like a pointer, with a conditional read-modify-write (``store.update_json``). A
registration then touches the pointer it follows (a conditional rewrite of the same version),
so a move that read the consumers before this registration loses its precondition and checks
again (:mod:`kerascut_core.publishing.gate`): a registration and a move are ordered, whichever
comes second sees the first. A registration whose pointer moved in between onto a version that
breaks it is refused with one line (the record stays: it says what the model relies on).

    >>> register_consumer(store, "mnv2", "detector-v3", follows="prod", outputs=["C4", "C5"])   # doctest: +SKIP
    >>> [c.consumer for c in list_consumers(store, "mnv2")[0]]                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from kerascut_core._names import did_you_mean, format_options, short_repr
from kerascut_core.errors import ConsumerBreakError, ObjectNotFoundError, StoreError
from kerascut_core.publishing._clock import iso
from kerascut_core.publishing.diff_parts import Change, compare_preprocessing, output_changes
from kerascut_core.publishing.history import actor, check_reason
from kerascut_core.publishing.layout import (
    LATEST_ALIAS,
    alias_key,
    consumer_key,
    consumers_dir,
    latest_key,
)
from kerascut_core.publishing.listing import read_manifest
from kerascut_core.publishing.manifest import Manifest, OutputInfo, Preprocessing
from kerascut_core.publishing.pointer_files import resolve_pointer
from kerascut_core.publishing.root import ensure_store_root
from kerascut_core.stores import Store, parse_json
from kerascut_core.uris import check_name

__all__ = [
    "ConsumerRecord",
    "RelyOn",
    "list_consumers",
    "pointer_key",
    "register_consumer",
    "remove_consumer",
]

#: the most bytes a consumer record may have (real ones are a few kilobytes)
_MAX_RECORD_BYTES = 1 << 18
#: the most outputs one consumer may list
_MAX_OUTPUTS = 256


class RelyOn(BaseModel):
    """What a consumer relies on in one output: its shape, dtype, channels and stride."""

    model_config = ConfigDict(extra="forbid")

    shape: list[int | None]
    dtype: str
    channels: int | None = None
    stride: list[int | None] | None = None

    @classmethod
    def of(cls, output: OutputInfo) -> RelyOn:
        return cls(shape=list(output.shape), dtype=output.dtype, channels=output.channels,
                   stride=None if output.stride is None else list(output.stride))


class ConsumerRecord(BaseModel):
    """A registered consumer, as ``<name>/consumers/<ID>.json`` stores it."""

    model_config = ConfigDict(extra="ignore")

    consumer: str
    follows: str
    version: str
    outputs: dict[str, RelyOn] = Field(max_length=_MAX_OUTPUTS)
    preprocessing: Preprocessing | None = None
    max_drift: float | None = Field(default=None, ge=0)
    reason: str | None = None
    registered_at: str | None = None
    by: dict[str, str | None] = Field(default_factory=dict)

    def breaks(self, manifest: Manifest) -> list[str]:
        """One line per way ``manifest`` breaks what this consumer relies on: an output removed,
        or with another shape, dtype, channels or stride; the preprocessing changed. (The drift
        bound needs the models: :mod:`kerascut_core.publishing.gate` checks it.)"""
        by_name = {o.name: o for o in manifest.outputs}
        found = []
        for name, relied in self.outputs.items():
            now = by_name.get(name)
            if now is None:
                found.append(Change("output", name, "removed").line())
                continue
            found += [c.line() for c in output_changes(name, _as_output(name, relied), now)]
        found += [c.line() for c in compare_preprocessing(self.preprocessing, manifest.preprocessing)]
        return found

    @property
    def pins(self) -> bool:
        """Whether it follows a version (a pin) rather than ``latest`` or an alias."""
        return self.follows == self.version


def _as_output(name: str, relied: RelyOn) -> OutputInfo:
    return OutputInfo(name=name, **relied.model_dump())


def pointer_key(name: str, pointer: str) -> str:
    """The key of ``latest`` or an alias."""
    return latest_key(name) if pointer == LATEST_ALIAS else alias_key(name, pointer)


def _check_drift(max_drift: float | None) -> float | None:
    if max_drift is not None and (isinstance(max_drift, bool) or not isinstance(max_drift, (int, float))
                                  or not math.isfinite(max_drift) or max_drift < 0):
        raise StoreError(f"Expected --max-drift to be a number of at least 0 (a relative difference, e.g. 0.01). "
                         f"Received {short_repr(max_drift)}.")
    return None if max_drift is None else float(max_drift)


def _relied_on(manifest: Manifest, outputs: Sequence[str], where: str) -> dict[str, RelyOn]:
    by_name = {o.name: o for o in manifest.outputs}
    if not outputs:
        raise StoreError(f"Expected at least one output a consumer of {where} relies on. Received none; pass "
                         f"--outputs with some of {format_options(list(by_name))}.")
    found = {}
    for name in outputs:
        if name not in by_name:
            raise StoreError(f"Expected outputs of {where} ({format_options(list(by_name))}). Received {short_repr(name)}."
                             + did_you_mean(name, list(by_name)))
        found[name] = RelyOn.of(by_name[name])
    return found


def register_consumer(
    store: Store,
    name: str,
    consumer: str,
    *,
    follows: str = LATEST_ALIAS,
    outputs: Sequence[str],
    max_drift: float | None = None,
    reason: str | None = None,
) -> ConsumerRecord:
    """Record that ``consumer`` follows ``follows`` of ``name`` and relies on ``outputs`` as the
    version the pointer names now has them (a second registration of the same id replaces the
    first). Raises :class:`ConsumerBreakError` when the pointer moved meanwhile onto a version
    that breaks it (the record is kept)."""
    check_name(name)
    check_name(consumer, "consumer")
    reason = check_reason(reason)
    max_drift = _check_drift(max_drift)
    ensure_store_root(store)
    version, pointer = resolve_pointer(store, name, follows)
    manifest = read_manifest(store, name, version)
    where = f"{name}@{follows}"
    record = ConsumerRecord(
        consumer=consumer, follows=follows if pointer is not None else version, version=version,
        outputs=_relied_on(manifest, list(dict.fromkeys(outputs)), where), preprocessing=manifest.preprocessing,
        max_drift=max_drift, reason=reason, registered_at=iso(), by=actor(),
    )
    data = record.model_dump(mode="json")
    store.update_json(consumer_key(name, consumer), lambda _current: data)
    if pointer is None:
        return record
    seen: list[str] = []

    def touch(current: Any) -> Any:
        seen.clear()
        if not isinstance(current, dict) or not isinstance(current.get("version"), str):
            return None
        seen.append(current["version"])
        return {**current, "consumers_seen": secrets.token_hex(4)}

    store.update_json(pointer_key(name, pointer), touch)
    if seen and seen[0] != version:
        breaks = record.breaks(read_manifest(store, name, seen[0]))
        if breaks:
            raise ConsumerBreakError(
                f"Registered consumer {consumer!r} of {where}, but {follows} moved meanwhile to {seen[0]}, which "
                f"breaks it: {'; '.join(breaks)}. Move {follows} back with `kerascut promote`, or register again."
            )
    return record


def _read(store: Store, key: str) -> ConsumerRecord:
    parsed = parse_json(store.get_bytes(key, max_bytes=_MAX_RECORD_BYTES), store.uri(key))
    try:
        return ConsumerRecord.model_validate(parsed)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "the record"
        raise StoreError(f"Cannot read {store.uri(key)}: {where}: {first.get('msg')}; not a consumer kerascut "
                         "writes. Register it again with `kerascut consumers add`.") from None


def list_consumers(store: Store, name: str, *, follows: str | None = None) -> tuple[list[ConsumerRecord], list[str]]:
    """The consumers of ``name`` (of the pointer ``follows`` only, when given), sorted by id, and
    one line per entry of ``<name>/consumers/`` that was skipped."""
    scan = store.scan(consumers_dir(name))
    problems = [f"skipped {where}: {why}" for where, why in scan.skipped]
    found = []
    for obj in scan.objects:
        leaf = obj.key.split("/", 2)[-1]
        ident = leaf.removesuffix(".json")
        try:
            if "/" in leaf or ident == leaf:
                raise StoreError("not a consumer record")
            check_name(ident, "consumer")
        except StoreError:
            problems.append(f"skipped {store.uri(obj.key)}: not a consumer record kerascut writes")
            continue
        try:
            record = _read(store, obj.key)
        except ObjectNotFoundError:
            continue  # removed meanwhile
        except StoreError as exc:
            problems.append(str(exc))
            continue
        if record.consumer != ident:
            problems.append(f"skipped {store.uri(obj.key)}: it names consumer {short_repr(record.consumer)}")
            continue
        if follows is None or record.follows == follows:
            found.append(record)
    return sorted(found, key=lambda r: r.consumer), problems


def remove_consumer(store: Store, name: str, consumer: str) -> None:
    """Remove the registration of ``consumer`` (:class:`ObjectNotFoundError` naming the
    registered ones when there is none)."""
    key = consumer_key(name, consumer)
    if not store.exists(key):
        known = [r.consumer for r in list_consumers(store, name)[0]]
        raise ObjectNotFoundError(
            f"Expected a consumer of {name} ({format_options(known) if known else 'none is registered'}). Received "
            f"{short_repr(consumer)}." + did_you_mean(consumer, known)
        )
    store.delete(key)
