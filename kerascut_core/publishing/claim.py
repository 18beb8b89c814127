"""The claim: one writer per version at a time (rule 3 of the protocol in ``commit.py``).

``.staging/<name>/<version>/claim.json`` is created put-if-absent with the run id, host, pid
and a lease (renewed after every artifact). A claim is stale when its lease expired, or at
once when its host is this host and its process is dead (a SIGKILLed run); a stale claim is
taken over with a conditional write (S3 ``If-Match`` on its ETag; locally, a compare under
``flock`` plus rename), so exactly one of several rerunning writers takes it over. ``gc``
removes stale claims by the same rule (:func:`claim_is_stale`).

The same claim makes pointer moves and retention exclude each other (see
:mod:`kerascut_core.publishing.exclusion`): a claim records its ``purpose`` (``commit``,
``remove`` or ``move``) so a holder's refusal says what is going on.

A claim file that is not a claim kerascut writes (not JSON, too deep, a huge integer, an
``expires_at`` that is not a finite number of seconds) is *malformed*: :func:`read_claim` says so
in one line naming the file. A malformed claim is stale only when that can be proved: its host
is this host and its pid is a dead process, or nobody has rewritten it for a whole default lease
(a live holder renews its claim with a well-formed body after every step, so a malformed body
that old is not being renewed). Until then it is held, and a commit waits for it as for any
live claim.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
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

__all__ = ["DEFAULT_LEASE_SECONDS", "Claim", "acquire_claim", "claim_is_stale", "holder_alive", "read_claim", "valid_claim"]

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


def valid_claim(claim: Any) -> str | None:
    """Why ``claim`` (a parsed ``claim.json``) is not a claim kerascut writes, or ``None`` when it is."""
    if not isinstance(claim, dict):
        return f"expected a JSON object, received {type(claim).__name__}"
    expires = claim.get("expires_at")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        return f"expected expires_at to be a number of seconds, received {type(expires).__name__}"
    if (isinstance(expires, float) and not math.isfinite(expires)) or abs(expires) > 1 << 53:
        return "expected expires_at to be a finite number of seconds, received a non-finite or huge one"
    for field_name in ("run_id", "token", "host"):
        if field_name in claim and claim[field_name] is not None and not isinstance(claim[field_name], str):
            return f"expected {field_name} to be a string, received {type(claim[field_name]).__name__}"
    if "pid" in claim and (isinstance(claim["pid"], bool) or not isinstance(claim["pid"], int)
                           or not 0 < claim["pid"] < 1 << 31):
        return "expected pid to be a process id"
    return None


def read_claim(store: Store, key: str) -> dict[str, Any]:
    """The claim at ``key``; :class:`ObjectNotFoundError` when there is none, and a one-line
    :class:`StoreError` naming the file when it is not a claim kerascut writes."""
    try:
        data = store.read_json(key)
    except (ObjectNotFoundError, StoreError):
        raise
    except (ValueError, RecursionError, TypeError) as exc:  # a parse the store did not bound
        raise StoreError(f"Cannot read the claim {store.uri(key)}: not a claim kerascut writes "
                         f"({type(exc).__name__}). Delete it, or let `kerascut gc` remove it.") from None
    why = valid_claim(data)
    if why is not None:
        raise StoreError(f"Cannot read the claim {store.uri(key)}: {why}. Delete it, or let `kerascut gc` remove it.")
    return data


def holder_alive(record: Any) -> bool | None:
    """Whether the process a record names (``host``, ``pid``, ``proc_start``) is alive: ``True``
    or ``False`` when it ran on this host, ``None`` when that cannot be told (another host, or
    no pid)."""
    if not isinstance(record, dict) or record.get("host") != _HOST:
        return None
    pid = record.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 1 << 31:
        return None
    start = record.get("proc_start")
    return _pid_alive(pid, start if isinstance(start, str) else None)


def claim_is_stale(claim: Any, modified: dt.datetime | None = None) -> bool:
    """Whether a claim (the parsed ``claim.json``, or ``None`` when unreadable) may be taken over.

    ``modified`` is when the claim object was last written, as the store reports it; a malformed
    claim is stale only when its holder is provably dead or it is older than a default lease
    (see the module docstring). Without ``modified`` a malformed claim is stale.
    """
    if valid_claim(claim) is not None:
        if holder_alive(claim) is False:
            return True
        if modified is None:
            return True
        return (dt.datetime.now(dt.timezone.utc) - modified).total_seconds() > DEFAULT_LEASE_SECONDS
    if float(claim["expires_at"]) < now():
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
    purpose: str | None = None,
) -> Claim | None:
    """The claim of ``name/version``, or ``None`` once the version got committed meanwhile.

    ``committed=True`` claims a version that is committed (retention removing it, or a pointer
    moving onto it, holds the claim, so neither runs while the other does and no commit of that
    version runs meanwhile); it never returns ``None``. ``purpose`` (``commit``, ``remove`` or
    ``move``; by default ``remove`` when ``committed`` else ``commit``) is recorded in the claim
    and named when another run has to wait for it.
    """
    key = claim_key(name, version)
    purpose = purpose or ("remove" if committed else "commit")
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
            "purpose": purpose,
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
        modified: dt.datetime | None = None
        try:
            current, etag = store.read_json_with_etag(key)
        except ObjectNotFoundError:
            _ACTIVE_TOKENS.discard(token)
            continue  # released meanwhile: try again
        except (StoreError, ValueError, RecursionError):  # not JSON kerascut writes (a hand edit)
            current, etag = None, None
        if etag is None or valid_claim(current) is not None:
            info = store.head(key)
            if info is None:
                _ACTIVE_TOKENS.discard(token)
                continue
            etag, modified = etag or info.etag, info.last_modified
        if claim_is_stale(current, modified):
            body["took_over_from"] = current.get("run_id") if isinstance(current, dict) else None
            try:
                store.put_bytes(key, _json_bytes(body), if_match=etag)
                return Claim(store, key, token, lease)
            except (PreconditionFailedError, ObjectNotFoundError):
                _ACTIVE_TOKENS.discard(token)
                continue  # someone else took it over first
        _ACTIVE_TOKENS.discard(token)
        if now() >= deadline:
            raise PreconditionFailedError(_held_message(store, key, name, version, purpose, current))
        time.sleep(delay)
        delay = min(1.0, delay * 1.5)


_DOING = {"commit": "committing", "remove": "removing", "move": "moving a pointer onto"}
_ACTION = {"commit": "commit", "remove": "remove", "move": "move a pointer onto"}


def _held_message(store: Store, key: str, name: str, version: str, purpose: str, current: Any) -> str:
    if valid_claim(current) is not None:
        return (f"Cannot {_ACTION.get(purpose, purpose)} {name}/{version}: its claim {store.uri(key)} is not a claim "
                "kerascut writes and is not provably stale yet. Delete it if no run holds it, or wait for "
                "`kerascut gc` to remove it.")
    holder = current
    return (f"Cannot {_ACTION.get(purpose, purpose)} {name}/{version}: run {holder.get('run_id')} on {holder.get('host')} "
            f"(pid {holder.get('pid')}) is {_DOING.get(str(holder.get('purpose', 'commit')), 'committing')} it until "
            f"{iso(float(holder['expires_at']))}. Wait for it, or rerun after its lease expires.")


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()
