"""Issue 10, validation sample data with limits: object arrays (pickles) are refused with one
line, and only the rows ``samples`` needs are read, so a small ``.npz`` that inflates to 1 GiB
costs a few rows, not a gigabyte.
"""

from __future__ import annotations

import pickle
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from kerascut_core.errors import ValidationError
from kerascut_core.validation import validate
from kerascut_core.validation.sample_data import load_data
from tests.bad_inputs.make_corpus import write_npz_bomb

SHAPE = (4, 4, 3)


@pytest.fixture(scope="module")
def model():
    import keras

    keras.backend.clear_session()
    inputs = keras.Input(SHAPE, name="image")
    x = keras.layers.Conv2D(2, 3, padding="same", name="c1")(inputs)
    outputs = keras.layers.ReLU(name="r1")(x)
    built = keras.Model(inputs, outputs, name="tiny")
    yield built
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def two_inputs():
    import keras

    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b", dtype="int32")
    embedded = keras.layers.Flatten(name="flat")(keras.layers.Embedding(4, 2, name="emb")(b))
    merged = keras.layers.Concatenate(name="cat")([a, embedded])
    return keras.Model([a, b], keras.layers.Dense(1, name="d")(merged))


def _rows(n: int = 10) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (n, *SHAPE)).astype("float32")


def _refused(path, model, samples: int = 2) -> str:
    with pytest.raises(ValidationError) as info:
        load_data(path, model, samples)
    message = str(info.value)
    assert "\n" not in message and len(message) < 1000
    return message


def test_object_arrays_are_refused_in_one_line(tmp_path: Path, model) -> None:
    np.savez(tmp_path / "obj.npz", image=np.array([{"a": 1}, None], dtype=object))
    message = _refused(tmp_path / "obj.npz", model)
    assert "obj.npz" in message and "object array" in message and "pickle" in message
    assert "numeric arrays" in message
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    assert "object array" in _refused(tmp_path / "obj.npy", model)


def test_a_pickle_is_not_read(tmp_path: Path, model) -> None:
    (tmp_path / "p.npy").write_bytes(pickle.dumps(_rows()))
    message = _refused(tmp_path / "p.npy", model)
    assert "p.npy" in message and "pickles are refused" in message


def test_npz_bomb_reads_only_the_rows_samples_needs(tmp_path: Path, model) -> None:
    bomb = write_npz_bomb(tmp_path / "bomb.npz", row_shape=SHAPE, total_bytes=1024**3)
    assert bomb.stat().st_size < 2 * 1024 * 1024  # 1 MB on disk, 1 GiB inflated
    tracemalloc.start()
    started = time.monotonic()
    try:
        (array,) = load_data(bomb, model, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 2
    assert peak < 16 * 1024 * 1024
    assert array.shape == (2, *SHAPE) and array.dtype == np.float32 and not array.any()


def test_bytes_over_the_limit_are_refused(tmp_path: Path, model, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = write_npz_bomb(tmp_path / "bomb.npz", row_shape=SHAPE, total_bytes=64 * 1024 * 1024)
    monkeypatch.setenv("KERASCUT_MAX_DATA_BYTES", "10000")
    assert load_data(bomb, model, 50)[0].shape == (50, *SHAPE)  # 50 rows of 192 bytes fit
    message = _refused(bomb, model, samples=1000)
    assert "bomb.npz" in message and "192,000 bytes" in message and "KERASCUT_MAX_DATA_BYTES" in message
    monkeypatch.setenv("KERASCUT_MAX_DATA_BYTES", "lots")
    assert "Expected KERASCUT_MAX_DATA_BYTES to be a positive number" in _refused(bomb, model)


def test_the_default_limit_is_two_gib(tmp_path: Path, model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERASCUT_MAX_DATA_BYTES", raising=False)
    path = tmp_path / "huge.npy"  # a header that promises 2**25 rows of 192 bytes (6 GiB)
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": True, "shape": (2**25, *SHAPE)})
    message = _refused(path, model)  # Fortran order: the whole array would be read
    assert "at most 2,147,483,648 bytes" in message and "np.ascontiguousarray" in message


def test_formats_orders_and_names(tmp_path: Path, model, two_inputs) -> None:
    x = _rows()
    np.save(tmp_path / "c.npy", x)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    np.savez(tmp_path / "named.npz", image=x)
    np.savez(tmp_path / "arr.npz", x)
    np.savez_compressed(tmp_path / "z.npz", image=x.astype(">f4"))
    for name in ("c.npy", "f.npy", "named.npz", "arr.npz", "z.npz"):
        (array,) = load_data(tmp_path / name, model, 3)
        assert array.dtype == np.float32 and array.flags.c_contiguous and array.flags.writeable
        np.testing.assert_array_equal(array, x[:3])
    (array,) = load_data(f"file://{tmp_path}/named.npz", model, 20)  # fewer rows than samples
    assert array.shape == (10, *SHAPE)
    np.savez(tmp_path / "two.npz", b=np.ones((5, 2), "int32"), a=np.zeros((5, 3), "float64"))
    a, b = load_data(tmp_path / "two.npz", two_inputs, 4)
    assert (a.shape, a.dtype, b.shape, b.dtype) == ((4, 3), np.float32, (4, 2), np.int32)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: np.save(p / "d.npy", _rows()[:, :2]), "to have shape (None, 4, 4, 3)"),
        (lambda p: np.save(p / "d.npy", _rows().astype("complex64")), "to have dtype float32"),
        (lambda p: np.save(p / "d.npy", np.float32(1.0)), "non-zero number of rows"),
        (lambda p: np.savez(p / "d.npz", other=_rows(), more=_rows()), "Received arrays ['other', 'more']"),
        (lambda p: (p / "d.npz").write_bytes(b"PK\x03\x04 not a zip"), "written by numpy"),
        (lambda p: (p / "d.npy").write_bytes(b""), "which is neither"),
    ],
)
def test_wrong_data_is_refused_from_its_header(tmp_path: Path, model, make, fragment: str) -> None:
    make(tmp_path)
    (path,) = tmp_path.iterdir()
    assert fragment in _refused(path, model)


def test_truncated_and_misplaced_files(tmp_path: Path, model) -> None:
    np.save(tmp_path / "t.npy", _rows())
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:300])
    assert "ends early (truncated)" in _refused(tmp_path / "t.npy", model, samples=8)
    assert "Received host 'fileserver'" in _refused("file://fileserver/data/x.npz", model)
    assert "existing .npz or .npy file" in _refused(tmp_path / "absent.npz", model)


def test_validate_end_to_end_with_the_bomb(tmp_path: Path, model) -> None:
    model.save(tmp_path / "candidate.keras")
    bomb = write_npz_bomb(tmp_path / "bomb.npz", row_shape=SHAPE, total_bytes=1024**3)
    report = validate(tmp_path / "candidate.keras", model, None, samples=2, batch_size=2, data=bomb)
    assert report.passed, report.failures
    np.savez(tmp_path / "obj.npz", image=np.array([None, None], dtype=object))
    with pytest.raises(ValidationError, match="object array"):
        validate(tmp_path / "candidate.keras", model, None, samples=2, data=tmp_path / "obj.npz")
