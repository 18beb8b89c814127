"""A store in ``s3://bucket/prefix`` (or any S3-compatible server) through boto3.

Every write is all-or-nothing: a put without overwrite sends ``If-None-Match: *`` (on the
single PUT or on ``CompleteMultipartUpload``), a conditional update sends ``If-Match: <etag>``.
A write whose response was lost and that botocore retried is recognised as our own by its
sha256. Transfers over ``KERASCUT_S3_MULTIPART_THRESHOLD`` are multipart
(:mod:`kerascut_core.stores._s3_transfer`); a failed multipart upload is aborted, and
``kerascut gc`` aborts any left behind (:class:`~.capabilities.IncompleteUploads`). Errors are one line
(:func:`kerascut_core.aws.client.map_error`); transient ones carry ``transient = True``.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kerascut_core.aws import client as _s3
from kerascut_core.errors import (
    ObjectNotFoundError,
    PreconditionFailedError,
    StoreError,
)
from kerascut_core.stores._s3_transfer import S3Object, download_file, get_object, multipart_upload
from kerascut_core.stores.base import (
    ObjectInfo,
    ScanResult,
    Store,
    exists_error,
    sha256_file,
    too_large,
)
from kerascut_core.stores.capabilities import (
    IncompleteUpload,
    IncompleteUploads,
    ObjectVersion,
    ObjectVersions,
)
from kerascut_core.uris import check_key, parse_s3

__all__ = ["S3Store"]


class S3Store(Store, IncompleteUploads, ObjectVersions):
    """``s3://bucket/prefix`` through boto3 (see the module docstring for the guarantees)."""

    def __init__(self, uri: str, *, endpoint_url: str | None = None) -> None:
        bucket, prefix = parse_s3(uri.rstrip("/") if uri.rstrip("/") != "s3:/" else uri)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root_uri = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._endpoint = endpoint_url
        self._bucket_checked = False

    @property
    def client(self) -> Any:
        return _s3.client(self._endpoint)

    def uri(self, key: str = "") -> str:
        return f"{self.root_uri}/{check_key(key)}" if key else self.root_uri

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _object(self, key: str) -> S3Object:
        """The S3 object of ``key``, for the transfer functions."""
        return S3Object(self.client, self.bucket, self._key(key), self.uri(key))

    def _call(self, action: str, key: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            raise _s3.map_error(exc, self.uri(key) if key else self.root_uri, action) from exc

    # -- writes ---------------------------------------------------------------------------
    def put_bytes(self, key, data, *, overwrite=False, if_match=None, metadata=None):
        data = bytes(data)
        meta = {"sha256": hashlib.sha256(data).hexdigest(), **(metadata or {})}
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": data, "Metadata": meta}
        if key.endswith(".json"):
            kwargs["ContentType"] = "application/json"
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        elif not overwrite:
            kwargs["IfNoneMatch"] = "*"
        try:
            response = self.client.put_object(**kwargs)
        except Exception as exc:
            mine = self._retried_own_write(exc, key, meta["sha256"], len(data))
            if mine is not None:
                return mine
            raise self._write_error(exc, key, if_match is None and not overwrite) from exc
        return ObjectInfo(
            key=key,
            size=len(data),
            etag=response.get("ETag", ""),
            last_modified=dt.datetime.now(dt.timezone.utc),
            version_id=response.get("VersionId"),
            metadata=meta,
        )

    def _retried_own_write(self, exc: Exception, key: str, sha256: str, size: int) -> ObjectInfo | None:
        """Our own earlier attempt, when botocore retried a write whose response was lost.

        A conditional write that succeeded on the server but whose response was lost (a reset
        connection) is retried by botocore and then fails its own precondition. When the object
        now there has our sha256 and size, that first attempt succeeded: the write is done.
        """
        response = getattr(exc, "response", None) or {}
        if not response.get("ResponseMetadata", {}).get("RetryAttempts"):
            return None
        if _s3.map_error(exc, self.uri(key)).__class__ not in (PreconditionFailedError, ObjectNotFoundError) \
                and response.get("Error", {}).get("Code") != "NoSuchUpload":
            return None
        info = self.head(key)
        return info if info is not None and info.sha256 == sha256 and info.size == size else None

    def _write_error(self, exc: Exception, key: str, if_none_match: bool) -> Exception:
        mapped = _s3.map_error(exc, self.uri(key), "write")
        if if_none_match and isinstance(mapped, PreconditionFailedError):
            return exists_error(self.uri(key))
        if isinstance(mapped, ObjectNotFoundError):
            # If-Match on a key that was deleted meanwhile
            return ObjectNotFoundError(f"Cannot update {self.uri(key)}: it does not exist (it was deleted).")
        return mapped

    def put_file(self, key, path, *, overwrite=False, progress=None, metadata=None):
        path = Path(path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise StoreError(f"Cannot upload {path}: no such file.") from None
        meta = dict(metadata or {})
        if "sha256" not in meta:  # callers that hashed the file already (staging) pass it
            meta["sha256"] = sha256_file(path)
        if not overwrite and self.exists(key):
            # cheap early refusal; the conditional write below is what guarantees it
            raise exists_error(self.uri(key))
        if size < _s3.MULTIPART_THRESHOLD:
            with open(path, "rb") as handle:
                data = handle.read()
            info = self.put_bytes(key, data, overwrite=overwrite, metadata=meta)
            if progress:
                progress(size)
            return info
        try:
            response = multipart_upload(self._object(key), path, size, meta, overwrite, progress)
        except StoreError:
            raise  # the upload never started
        except Exception as exc:
            mine = self._retried_own_write(exc, key, meta["sha256"], size)
            if mine is not None:
                return mine
            raise self._write_error(exc, key, not overwrite) from exc
        return ObjectInfo(
            key=key,
            size=size,
            etag=response.get("ETag", ""),
            last_modified=dt.datetime.now(dt.timezone.utc),
            version_id=response.get("VersionId"),
            metadata=meta,
        )

    def copy(self, src, dst, *, overwrite=False):
        source = self.head(src)
        if source is None:
            raise ObjectNotFoundError(f"Cannot copy {self.uri(src)}: no such object.")
        if not overwrite and self.exists(dst):
            raise exists_error(self.uri(dst))
        copy_source = {"Bucket": self.bucket, "Key": self._key(src)}
        if source.version_id:
            copy_source["VersionId"] = source.version_id
        kwargs: dict[str, Any] = {} if overwrite else {"IfNoneMatch": "*"}
        if source.size <= 5 * (1 << 30) - 1:
            try:
                response = self.client.copy_object(
                    Bucket=self.bucket, Key=self._key(dst), CopySource=copy_source,
                    MetadataDirective="COPY", **kwargs,
                )
            except Exception as exc:
                mine = self._retried_own_write(exc, dst, source.sha256 or "", source.size) if source.sha256 else None
                if mine is not None:
                    return mine
                raise self._write_error(exc, dst, not overwrite) from exc
            etag = response.get("CopyObjectResult", {}).get("ETag", "")
            version_id = response.get("VersionId")
        else:  # > 5 GiB: managed multipart copy (the claim protocol in publish.py guards it)
            from boto3.s3.transfer import TransferConfig

            self._call(
                "copy", dst,
                lambda: self.client.copy(
                    copy_source, self.bucket, self._key(dst),
                    ExtraArgs={"Metadata": source.metadata, "MetadataDirective": "REPLACE"},
                    Config=TransferConfig(max_concurrency=_s3.MAX_CONCURRENCY),
                ),
            )
            etag, version_id = "", None
        return ObjectInfo(dst, source.size, etag, dt.datetime.now(dt.timezone.utc), version_id, dict(source.metadata))

    def delete(self, key):
        client, s3_key = self.client, self._key(key)
        versions: list[dict[str, str]] = []
        try:  # on a versioned bucket remove every version, so nothing of a staging object lingers
            for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=s3_key):
                for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    if item["Key"] == s3_key and item.get("VersionId") not in (None, "null"):
                        versions.append({"Key": s3_key, "VersionId": item["VersionId"]})
        except Exception:  # no s3:ListBucketVersions: a plain delete is still right
            versions = []
        if not versions:
            self._call("delete", key, lambda: client.delete_object(Bucket=self.bucket, Key=s3_key))
            return
        for start in range(0, len(versions), 1000):
            batch = versions[start : start + 1000]

            def delete_batch(batch: list[dict[str, str]] = batch) -> Any:
                return client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

            response = self._call("delete", key, delete_batch)
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StoreError(f"Cannot delete {self.uri(key)}: {first.get('Code')}: {first.get('Message')}")

    # -- reads ----------------------------------------------------------------------------
    def get_bytes_with_etag(self, key, *, max_bytes=None):
        """A body cut short is read again (see :func:`get_object`)."""
        try:
            return get_object(self._object(key), max_bytes)
        except ObjectNotFoundError:
            self._check_bucket()  # a missing bucket is not a missing object
            raise

    def get_file(self, key, dest, progress=None, *, max_bytes=None):
        info = self.head(key)
        if info is None:
            raise ObjectNotFoundError(f"Cannot read {self.uri(key)}: no such object.")
        if max_bytes is not None and info.size > max_bytes:
            raise too_large(self.uri(key), info.size, max_bytes)
        return download_file(self._object(key), info.size, Path(dest), progress, version_id=info.version_id)

    def head(self, key):
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _s3.is_not_found(exc):
                self._check_bucket()
                return None
            raise _s3.map_error(exc, self.uri(key), "read") from exc
        version = response.get("VersionId")
        return ObjectInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            etag=response.get("ETag", ""),
            last_modified=response.get("LastModified") or dt.datetime.now(dt.timezone.utc),
            version_id=version if version and version != "null" else None,
            metadata=dict(response.get("Metadata") or {}),
        )

    def check(self) -> None:
        _s3.check_bucket(self.bucket, "open", self._endpoint)

    def _check_bucket(self) -> None:
        """A 404 on an object could be a missing bucket: ask once, so that is never taken as 'absent'."""
        if self._bucket_checked:
            return
        _s3.check_bucket(self.bucket, "open", self._endpoint)
        self._bucket_checked = True

    def sha256(self, key):
        info = self.head(key)
        return None if info is None else info.sha256

    def _dir_prefix(self, prefix: str) -> str:
        """The S3 prefix of the "directory" ``prefix`` (always ending in ``/`` unless the root)."""
        rel = prefix.strip("/")
        if not rel:
            return f"{self.prefix}/" if self.prefix else ""
        return self._key(rel) + "/"

    def _list(self, prefix: str, delimiter: str | None) -> tuple[list[dict], list[str]]:
        s3_prefix = self._dir_prefix(prefix)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": s3_prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        objects: list[dict] = []
        dirs: list[str] = []

        def run() -> None:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                objects.extend(page.get("Contents", []))
                dirs.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))

        try:
            run()
        except Exception as exc:
            raise _s3.map_error(exc, self.uri(prefix.strip("/")) if prefix.strip("/") else self.root_uri, "list") from exc
        return objects, [d[len(s3_prefix) :].rstrip("/") for d in dirs]

    def _rel(self, s3_key: str) -> str:
        return s3_key[len(self.prefix) + 1 :] if self.prefix else s3_key

    def scan(self, prefix=""):
        """One listing, no HEADs. Keys no store operation can address (``..``, ``.`` or empty
        segments, a trailing ``/`` folder marker) are skipped and reported, never fatal."""
        objects, _ = self._list(prefix, None)
        result = ScanResult()
        for o in objects:
            rel = self._rel(o["Key"])
            try:
                check_key(rel)
                if "" in rel.split("/"):
                    raise StoreError("empty segment")
            except StoreError:
                result.skipped.append((f"s3://{self.bucket}/{o['Key']}", "a key with '..', '.' or empty segments"))
                continue
            result.objects.append(ObjectInfo(rel, int(o.get("Size", 0)), o.get("ETag", ""), o["LastModified"]))
        result.objects.sort(key=lambda o: o.key)
        return result

    def list(self, prefix=""):
        return [o.key for o in self.scan(prefix).objects]

    def parent(self) -> S3Store | None:
        if not self.prefix:
            return None
        up = self.prefix.rpartition("/")[0]
        return S3Store(f"s3://{self.bucket}" + (f"/{up}" if up else ""), endpoint_url=self._endpoint)

    def child(self, name: str) -> S3Store:
        return S3Store(self.uri(name), endpoint_url=self._endpoint)

    def list_dirs(self, prefix=""):
        _, dirs = self._list(prefix, "/")
        return sorted(d for d in dirs if d and d not in (".", "..") and "/" not in d)

    def incomplete_uploads(self, prefix: str = "") -> builtins.list[IncompleteUpload]:  # `list`: the method above
        found: list[IncompleteUpload] = []
        s3_prefix = self._dir_prefix(prefix)

        def run() -> None:
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=s3_prefix):
                for up in page.get("Uploads", []):
                    found.append(IncompleteUpload(self._rel(up["Key"]), up["UploadId"], up["Initiated"]))

        self._call("list uploads under", prefix, run)
        return found

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._call(
            "abort upload of", key,
            lambda: self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(key), UploadId=upload_id),
        )

    def object_versions(self, key: str) -> builtins.list[ObjectVersion] | None:
        s3_key = self._key(key)
        found: list[ObjectVersion] = []
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=s3_key):
                for item in page.get("Versions", []):
                    if item.get("Key") == s3_key and isinstance(item.get("VersionId"), str):
                        found.append(ObjectVersion(key, item["VersionId"], item.get("LastModified"),
                                                   bool(item.get("IsLatest"))))
        except Exception:  # no s3:ListBucketVersions: the store's deletes are plain deletes then
            return None
        return found

    def restore_command(self, version: ObjectVersion) -> str:
        bucket, s3_key = self.bucket, self._key(version.key)
        return (f'aws s3api copy-object --bucket {bucket} --copy-source "{bucket}/{s3_key}?versionId={version.version_id}" '
                f'--key "{s3_key}"')
