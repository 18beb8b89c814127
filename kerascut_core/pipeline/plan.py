"""The plan of a refresh: what ``kerascut run`` would publish, and why, before it runs.

For every backbone of a config, :func:`plan_backbones` runs the refresh's own freshness step
(:func:`~kerascut_core.pipeline.freshness.check_freshness`, the very function the
``check-freshness`` task calls, so a plan and the refresh that follows cannot disagree) and
says:

- ``up-to-date``: its version is published; the refresh publishes nothing (it may move
  ``latest`` to it, which ``latest_after`` shows);
- ``new``: nothing is published under ``latest`` yet; the refresh publishes ``version``;
- ``stale``: ``latest`` names another version; the refresh publishes ``version``, and
  ``reasons`` say what changed since: the latest manifest's recorded source fingerprint, cut,
  input shape, formats and Keras and kerascut major.minor against the config and the installed
  versions (the inputs of :func:`~kerascut_core.publishing.versioning.backbone_version`);
- ``error``: the check failed (a source that vanished, a store that cannot be read); the
  refresh fails that backbone.

Nothing is downloaded but ``latest.json`` and the latest manifest, and TensorFlow, Keras and
Prefect are not imported.

    >>> entries = plan_backbones(load_config("backbones.yaml"))     # doctest: +SKIP
    >>> [(e.name, e.status, e.version, e.latest) for e in entries]  # doctest: +SKIP
    [('tiny', 'stale', '3f9a0c1d2e4b5a69', '0a1b2c3d4e5f6071')]
    >>> str(Reason(what=INPUT_SHAPE, before="64x64x3", after="96x96x3"))
    'input shape changed (64x64x3 -> 96x96x3)'
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kerascut_core._names import clip
from kerascut_core.config import BackboneConfig, KerascutConfig
from kerascut_core.config.backbone import FORMAT_NAMES
from kerascut_core.errors import KerascutError
from kerascut_core.pipeline.freshness import Freshness, check_freshness
from kerascut_core.publishing.listing import read_manifest
from kerascut_core.publishing.manifest import Manifest
from kerascut_core.publishing.versioning import backbone_version, major_minor
from kerascut_core.stores import Store, open_store
from kerascut_core.text import one_line
from kerascut_core.uris import APPLICATIONS_PREFIX

__all__ = [
    "CUT",
    "FORMATS",
    "INPUT_SHAPE",
    "KERAS",
    "KERASCUT",
    "SOURCE",
    "UNEXPLAINED",
    "UNREADABLE",
    "PlanEntry",
    "PlanStatus",
    "Reason",
    "plan_backbones",
]

#: what can change between the latest published version and the one a refresh would publish
SOURCE = "source changed"
CUT = "cut spec changed"
INPUT_SHAPE = "input shape changed"
FORMATS = "formats changed"
KERAS = "Keras major.minor changed"
KERASCUT = "kerascut major.minor changed"
#: the latest manifest does not record what its version was derived from (published by an older
#: kerascut, or edited): the versions differ, but not for a reason the record shows
UNEXPLAINED = "version derivation changed"
#: the latest manifest could not be read, so nothing can be compared
UNREADABLE = "latest manifest unreadable"

PlanStatus = Literal["up-to-date", "new", "stale", "error"]

#: the formats a config can ask for, in the order BackboneConfig keeps them
_FORMATS = FORMAT_NAMES
#: how many backbones are checked at once (each check is a few HEAD/GET requests)
_WORKERS = 8


class Reason(BaseModel):
    """One difference between the latest published version and the current config."""

    model_config = ConfigDict(frozen=True)

    what: str
    before: str | None = None
    after: str | None = None

    def __str__(self) -> str:
        if self.before is None and self.after is None:
            return self.what
        return f"{self.what} ({self.before} -> {self.after})"


class PlanEntry(BaseModel):
    """What the next refresh does with one backbone (see the module docstring)."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: PlanStatus
    #: the version the refresh publishes, or keeps when up to date (None: the check failed)
    version: str | None = None
    #: the version ``latest.json`` names now
    latest: str | None = None
    #: the version ``latest.json`` names once the refresh succeeded (a pinned latest stays)
    latest_after: str | None = None
    pinned: bool = False
    reasons: list[Reason] = Field(default_factory=list)
    message: str = ""

    @property
    def publishes(self) -> bool:
        """Whether the refresh publishes a version of this backbone."""
        return self.status in ("new", "stale")


def plan_backbones(
    config: KerascutConfig, only: Sequence[str] | None = None, *, max_workers: int = _WORKERS
) -> list[PlanEntry]:
    """The plan of every backbone of ``config`` (or of those named in ``only``), in config order."""
    selected = config.select(list(only) if only else None)
    store = open_store(config.store)
    if not selected:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(selected)))) as pool:
        return list(pool.map(lambda b: _plan_one(store, b), selected))


def _plan_one(store: Store, backbone: BackboneConfig) -> PlanEntry:
    try:
        fresh = check_freshness(backbone, store)  # the refresh's freshness step, as it runs it
        pinned = fresh.pinned and fresh.latest not in (None, fresh.version)
        if fresh.up_to_date:
            status: PlanStatus = "up-to-date"
            reasons: list[Reason] = []
        elif fresh.latest is None:
            status, reasons = "new", []
        else:
            status, reasons = "stale", explain(store, backbone, fresh)
    except Exception as exc:  # the refresh fails this backbone alone; so does the plan
        return PlanEntry(name=backbone.name, status="error", message=one_line(exc, None))
    return PlanEntry(
        name=backbone.name,
        status=status,
        version=fresh.version,
        latest=fresh.latest,
        latest_after=fresh.latest if pinned else fresh.version,
        pinned=pinned,
        reasons=reasons,
    )


def explain(store: Store, backbone: BackboneConfig, fresh: Freshness) -> list[Reason]:
    """Why ``fresh.version`` differs from the version ``latest`` names: what the latest manifest
    recorded against the config (and the installed Keras and kerascut)."""
    assert fresh.latest is not None
    try:
        manifest = read_manifest(store, backbone.name, fresh.latest, check=False)
    except (KerascutError, ValueError) as exc:
        return [Reason(what=UNREADABLE, before=fresh.latest, after=one_line(exc, 300))]
    reasons = _differences(backbone, fresh, manifest)
    recorded = _recorded_version(backbone, manifest)
    if recorded != manifest.version or not reasons:
        # the record does not give the latest version, so the differences above may not be all
        reasons.append(Reason(what=UNEXPLAINED, before=manifest.version, after=fresh.version))
    return reasons


def _differences(backbone: BackboneConfig, fresh: Freshness, manifest: Manifest) -> list[Reason]:
    from kerascut_core._version import __version__
    from kerascut_core.sources import keras_version

    reasons = []
    old_fp, new_fp = manifest.source.fingerprint, fresh.fingerprint
    old_fields, new_fields = _app_fields(old_fp), _app_fields(new_fp)
    # keras.applications fingerprints also hold the input shape and the Keras version, which
    # have reasons of their own: the source changed when anything else in them did
    ignored = {"input_shape", "keras"}
    if _strip(old_fp, old_fields, ignored) != _strip(new_fp, new_fields, ignored):
        reasons.append(Reason(what=SOURCE, before=_short(old_fp), after=_short(new_fp)))
    old_cut = _cut_of(manifest)
    new_cut = backbone.cut_spec().to_dict()
    changed = [k for k in new_cut if old_cut.get(k) != new_cut[k]]
    if changed:
        reasons.append(Reason(
            what=CUT,
            before=", ".join(f"{k}={old_cut.get(k)!r}" for k in changed),
            after=", ".join(f"{k}={new_cut[k]!r}" for k in changed),
        ))
    old_shape, new_shape = old_fields.get("input_shape", "default"), new_fields.get("input_shape", "default")
    if old_shape != new_shape:
        reasons.append(Reason(what=INPUT_SHAPE, before=old_shape, after=new_shape))
    old_formats, new_formats = _formats_of(manifest), list(backbone.formats)
    if old_formats != new_formats:
        reasons.append(Reason(what=FORMATS, before="+".join(old_formats), after="+".join(new_formats)))
    old_keras, new_keras = major_minor(manifest.software.keras), major_minor(keras_version())
    if old_keras != new_keras:
        reasons.append(Reason(what=KERAS, before=old_keras, after=new_keras))
    old_kc, new_kc = major_minor(manifest.software.kerascut), major_minor(__version__)
    if old_kc != new_kc:
        reasons.append(Reason(what=KERASCUT, before=old_kc, after=new_kc))
    return reasons


def _recorded_version(backbone: BackboneConfig, manifest: Manifest) -> str | None:
    """The version :func:`backbone_version` gives for what ``manifest`` recorded (``None`` when
    the record cannot be read back as a backbone)."""
    shape = _app_fields(manifest.source.fingerprint).get("input_shape", "default")
    try:
        recorded = BackboneConfig.model_validate({
            **backbone.model_dump(),
            **_cut_of(manifest),
            "formats": _formats_of(manifest),
            "input_shape": None if shape == "default" else [int(d) for d in shape.split("x")],
        })
        return backbone_version(
            recorded,
            manifest.source.fingerprint,
            keras_version=manifest.software.keras,
            kerascut_version=manifest.software.kerascut,
        )
    except (KerascutError, ValueError):
        return None


def _cut_of(manifest: Manifest) -> dict[str, Any]:
    return manifest.cut.model_dump()


def _formats_of(manifest: Manifest) -> list[str]:
    present = {a.format for a in manifest.artifacts}
    return [f for f in _FORMATS if f in present]


def _app_fields(fp: str) -> dict[str, str]:
    """The fields of a ``keras.applications`` fingerprint (``{}`` for other sources)."""
    if not fp.startswith(APPLICATIONS_PREFIX) or "?" not in fp:
        return {}
    query = fp.split("?", 1)[1]
    return dict(part.split("=", 1) for part in query.split("&") if "=" in part)


def _strip(fp: str, fields: dict[str, str], ignored: set[str]) -> str:
    if not fields:
        return fp
    kept = "&".join(f"{k}={v}" for k, v in sorted(fields.items()) if k not in ignored)
    return f"{fp.split('?', 1)[0]}?{kept}"


def _short(fp: str) -> str:
    """A fingerprint short enough for a table: a sha256 to 12 hex digits, others clipped."""
    for prefix in ("sha256:", "sha256-dir:"):
        if fp.startswith(prefix):
            return fp[: len(prefix) + 12]
    return clip(fp, 120)
