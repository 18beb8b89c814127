"""Find secret values in everything a run leaves behind.

Tests give kerascut credentials whose values are unique marker strings (moto accepts any
credentials), run it, then grep every output for those values: stdout and stderr, every file
under the store, the download cache and the Prefect home (whose SQLite database holds the
logs, artifacts, flow and task run parameters and states), and the objects of S3 buckets.
Each value is searched as is, URL-encoded, base64-encoded and JSON-escaped.

    leaks = scan({"stdout": out, "stderr": err}, [Path(store), Path(prefect_home)], SECRETS)
    assert leaks == []
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["SECRETS", "SECRET_ACCESS_KEY", "SECRET_KEY_ID", "SECRET_SESSION_TOKEN", "forms", "scan", "scan_s3"]

SECRET_KEY_ID = "AKIAKCSECRETID7Q3ZX9"
SECRET_ACCESS_KEY = "kcSecretAccessKey/Zq8+Vw2LpT0yN4rMxB6cJ"
SECRET_SESSION_TOKEN = "kcSessionToken//FwoGZXIvYXdzEJr8Q7+secret=="
SECRETS = (SECRET_KEY_ID, SECRET_ACCESS_KEY, SECRET_SESSION_TOKEN)


def forms(secret: str) -> set[bytes]:
    """The byte strings that would reveal ``secret``: raw, URL-, base64- and JSON-encoded."""
    raw = secret.encode()
    out = {raw, urllib.parse.quote(secret, safe="").encode(), urllib.parse.quote_plus(secret).encode(),
           json.dumps(secret)[1:-1].encode(), base64.b64encode(raw).rstrip(b"=")}
    # the middle of a secret, so a truncated or partly masked value is still caught
    if len(raw) >= 16:
        out.add(raw[4:-4])
    return out


def _hits(data: bytes, secrets: Iterable[str]) -> list[str]:
    return [secret for secret in secrets if any(form in data for form in forms(secret))]


def scan(
    texts: Mapping[str, str | bytes],
    paths: Iterable[Path] = (),
    secrets: Iterable[str] = SECRETS,
    *,
    skip: Iterable[str] = (),
) -> list[str]:
    """``["where: secret[:6]…"]`` for every secret found in ``texts`` or in files under ``paths``.

    ``skip`` holds path fragments not to read (e.g. a store that legitimately holds the secret).
    """
    secrets = list(secrets)
    skip = list(skip)
    leaks = []
    for where, text in texts.items():
        data = text.encode() if isinstance(text, str) else text
        leaks += [f"{where}: {s[:6]}…" for s in _hits(data, secrets)]
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if any(fragment in str(path) for fragment in skip):
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            leaks += [f"{path}: {s[:6]}…" for s in _hits(data, secrets)]
    return leaks


def scan_s3(client, buckets: Iterable[str], secrets: Iterable[str] = SECRETS) -> list[str]:
    """Secrets found in any object (key or body) of ``buckets``, read with ``client``."""
    secrets = list(secrets)
    leaks = []
    for bucket in buckets:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                leaks += [f"s3://{bucket}/{obj['Key']}: {s[:6]}…" for s in _hits(obj["Key"].encode() + body, secrets)]
    return leaks
