"""The claim: one writer per version at a time (rule 3 of the protocol in ``commit.py``).

``.staging/<name>/<version>/claim.json`` is created put-if-absent with the run id, host, pid
and a lease (renewed after every artifact). A claim is stale when its lease expired, or at
once when its host is this host and its process is dead (a SIGKILLed run); a stale claim is
taken over with a conditional write (S3 ``If-Match`` on its ETag; locally, a compare under
``flock`` plus rename), so exactly one of several rerunning writers takes it over. ``gc``
removes stale claims by the same rule (:func:`claim_is_stale`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kerascut_core.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StoreError,
)
from kerascut_core.publishing._clock import iso, now
from kerascut_core.publishing.layout import claim_key, manifest_key
from kerascut_core.stores import Store

__all__ = ["DEFAULT_LEASE_SECONDS", "Claim", "acquire_claim", "claim_is_stale"]

DEFAULT_LEASE_SECONDS = float(os.environ.get("KERASCUT_LEASE_SECONDS", "300"))

_HOST = socket.gethostname()
_ACTIVE_TOKENS: set[str] = set()  # claims held by commits running in this process


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start is None or _proc_start(pid) in (None, start)


def claim_is_stale(claim: Any) -> bool:
    """Whether a claim (the parsed ``claim.json``, or ``None`` when unreadable) may be taken over."""
    if not isinstance(claim, dict):
        return True  # unreadable: nobody can renew it
    if float(claim.get("expires_at", 0)) < now():
        return True
    if claim.get("host") == _HOST and isinstance(claim.get("pid"), int):
        if claim["pid"] == os.getpid():
            return claim.get("token") not in _ACTIVE_TOKENS
        return not _pid_alive(claim["pid"], claim.get("proc_start"))
    return False


@dataclass
class Claim:
    """A claim this process holds: renew it after every step, release it at the end."""

    store: Store
    key: str
    token: str
    lease: float

    def renew(self) -> None:
        """Extend the lease; :class:`PreconditionFailedError` if another run took it over."""

        def extend(current: Any) -> Any:
            if not isinstance(current, dict) or current.get("token") != self.token:
                raise PreconditionFailedError(
                    f"Lost the commit claim {self.store.uri(self.key)} to another run (our lease expired). "
                    "Nothing was published by this run; rerun to complete."
                )
            return {**current, "expires_at": now() + self.lease, "renewed_at": iso()}

        self.store.update_json(self.key, extend)

    def release(self) -> None:
        _ACTIVE_TOKENS.discard(self.token)
        with contextlib.suppress(StoreError):
            current = self.store.read_json(self.key)
            if isinstance(current, dict) and current.get("token") == self.token:
                self.store.delete(self.key)


def acquire_claim(
    store: Store,
    name: str,
    version: str,
    run_id: str,
    lease: float,
    wait_seconds: float,
    *,
    committed: bool = False,
) -> Claim | None:
    """The claim of ``name/version``, or ``None`` once the version got committed meanwhile.

    ``committed=True`` claims a version that is committed (retention removing it holds the claim,
    so no commit of that version runs while its objects go); it never returns ``None``.
    """
    key = claim_key(name, version)
    deadline = now() + wait_seconds
    delay = 0.05
    while True:
        if not committed and store.exists(manifest_key(name, version)):
            return None
        token = uuid.uuid4().hex
        body = {
            "run_id": run_id,
            "token": token,
            "host": _HOST,
            "pid": os.getpid(),
            "proc_start": _proc_start(os.getpid()),
            "acquired_at": iso(),
            "expires_at": now() + lease,
            "lease_seconds": lease,
        }
        _ACTIVE_TOKENS.add(token)
        try:
            store.put_json(key, body)
            return Claim(store, key, token, lease)
        except ObjectExistsError:
            pass
        except BaseException:
            _ACTIVE_TOKENS.discard(token)
            raise
        current: Any
        etag: str | None
        try:
            current, etag = store._read_json_etag(key)
        except ObjectNotFoundError:
            _ACTIVE_TOKENS.discard(token)
            continue  # released meanwhile: try again
        except StoreError:  # unreadable claim (a torn write cannot happen, but a hand edit can)
            info = store.head(key)
            current, etag = None, info.etag if info else None
            if etag is None:
                _ACTIVE_TOKENS.discard(token)
                continue
        if claim_is_stale(current):
            body["took_over_from"] = current.get("run_id") if isinstance(current, dict) else None
            try:
                store.put_bytes(key, _json_bytes(body), if_match=etag)
                return Claim(store, key, token, lease)
            except (PreconditionFailedError, ObjectNotFoundError):
                _ACTIVE_TOKENS.discard(token)
                continue  # someone else took it over first
        _ACTIVE_TOKENS.discard(token)
        if now() >= deadline:
            holder = current if isinstance(current, dict) else {}
            raise PreconditionFailedError(
                f"Cannot {'remove' if committed else 'commit'} {name}/{version}: run {holder.get('run_id')} on {holder.get('host')} "
                f"(pid {holder.get('pid')}) is committing it until {iso(float(holder.get('expires_at', 0)))}. "
                "Wait for it, or rerun after its lease expires."
            )
        time.sleep(delay)
        delay = min(1.0, delay * 1.5)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()
