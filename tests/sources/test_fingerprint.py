"""Fingerprints: cheap (HEAD only, no TensorFlow), stable, and sensitive to any change of bytes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kerascut_core import fingerprint
from kerascut_core.errors import SourceError, StoreError


def test_local_file_is_its_sha256(tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"abc")
    fp = fingerprint(str(path))
    assert fp == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert fingerprint(f"file://{path}") == fp
    path.write_bytes(b"abd")
    assert fingerprint(str(path)) != fp


def test_missing_local_file(tmp_path):
    with pytest.raises(SourceError, match="no such file") as info:
        fingerprint(str(tmp_path / "nope.keras"))
    assert "\n" not in str(info.value)


def test_applications_identity():
    base = fingerprint("keras.applications/MobileNetV2", weights="none", input_shape=[96, 96, 3], include_top=False)
    assert base.startswith("keras.applications/MobileNetV2?")
    assert "weights=none" in base and "input_shape=96x96x3" in base and "keras=" in base
    assert fingerprint("keras.applications/MobileNetV2", weights="none", input_shape=(96, 96, 3), include_top=False) == base
    assert fingerprint("keras.applications/MobileNetV2", weights="imagenet", input_shape=[96, 96, 3], include_top=False) != base
    assert fingerprint("keras.applications/MobileNetV2", weights="none", input_shape=[128, 128, 3], include_top=False) != base
    assert fingerprint("keras.applications/ResNet50", weights="none", input_shape=[96, 96, 3], include_top=False) != base
    # options that do not change the model do not change the identity
    assert fingerprint("keras.applications/MobileNetV2", weights="none", input_shape=[96, 96, 3], include_top=False,
                       allow_unsafe=True, cache_dir="/tmp/x") == base


def test_applications_weights_file_identity(tmp_path):
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"w1")
    one = fingerprint("keras.applications/MobileNetV2", weights=str(weights))
    weights.write_bytes(b"w2")
    assert fingerprint("keras.applications/MobileNetV2", weights=str(weights)) != one


def test_bad_options_are_one_line():
    with pytest.raises(SourceError, match="input_shape"):
        fingerprint("keras.applications/MobileNetV2", input_shape=[96, -1, 3])
    with pytest.raises(SourceError, match="unknown"):
        fingerprint("keras.applications/MobileNetV2", pooling="avg")
    with pytest.raises(SourceError, match="scheme 'gs'"):
        fingerprint("gs://b/k.keras")


def test_fingerprint_does_not_import_tensorflow(tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"abc")
    code = (
        "import sys; from kerascut_core import fingerprint; "
        f"fingerprint({str(path)!r}); fingerprint('keras.applications/ResNet50', weights='none'); "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_s3_unversioned_is_etag_and_size(s3_client, s3_bucket):
    s3_client.put_object(Bucket=s3_bucket, Key="src/m.keras", Body=b"one")
    fp = fingerprint(f"s3://{s3_bucket}/src/m.keras")
    assert "etag=" in fp and "size=3" in fp and "versionId" not in fp
    assert fingerprint(f"s3://{s3_bucket}/src/m.keras") == fp
    s3_client.put_object(Bucket=s3_bucket, Key="src/m.keras", Body=b"two")
    assert fingerprint(f"s3://{s3_bucket}/src/m.keras") != fp


def test_s3_versioned_is_version_id(s3_client, s3_versioned_bucket):
    first = s3_client.put_object(Bucket=s3_versioned_bucket, Key="m.keras", Body=b"one")["VersionId"]
    fp = fingerprint(f"s3://{s3_versioned_bucket}/m.keras")
    assert fp.endswith(f"versionId={first}")
    s3_client.put_object(Bucket=s3_versioned_bucket, Key="m.keras", Body=b"one")  # same bytes, new version
    assert fingerprint(f"s3://{s3_versioned_bucket}/m.keras") != fp


def test_s3_missing_object_and_bucket(s3_bucket, s3_env):
    with pytest.raises(SourceError, match="no such object") as info:
        fingerprint(f"s3://{s3_bucket}/missing.keras")
    assert "\n" not in str(info.value)
    with pytest.raises(StoreError, match="bucket does not exist"):
        fingerprint("s3://no-such-bucket-kc/m.keras")


def test_s3_key_with_dotdot_is_refused(s3_env):
    with pytest.raises(SourceError, match=r"'\.\.'"):
        fingerprint("s3://bucket/a/../b.keras")


def test_fingerprint_many_keeps_order(s3_client, s3_bucket, tmp_path):
    from kerascut_core.sources import fingerprint_many

    uris = []
    for i in range(5):
        s3_client.put_object(Bucket=s3_bucket, Key=f"m{i}.keras", Body=bytes([i]))
        uris.append(f"s3://{s3_bucket}/m{i}.keras")
    local = tmp_path / "m.keras"
    local.write_bytes(b"x")
    items = [*uris, str(local), ("keras.applications/ResNet50", {"weights": "none"})]
    assert fingerprint_many(items) == [fingerprint(u) if isinstance(u, str) else fingerprint(u[0], **u[1]) for u in items]


def test_package_names_stay_functions_whatever_is_imported_first():
    code = (
        "import kerascut_core.sources.fingerprints, kerascut_core.sources.fetching, kerascut_core.publishing; "
        "import kerascut_core as kc, kerascut_core.sources as src; import types; "
        "print(not any(isinstance(f, types.ModuleType) for f in (kc.fingerprint, kc.fetch, src.fingerprint, src.fetch)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
