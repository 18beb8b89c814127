"""Make the binary fixtures of the bad-input corpus in a directory (they are never committed).

    python -m tests.bad_inputs.make_corpus /tmp/corpus            # everything
    python -m tests.bad_inputs.make_corpus /tmp/corpus --no-models  # only what needs no Keras

Files made (``{fx}`` in ``cases.yaml``):

- ``tiny.keras`` / ``tiny.h5``: a valid functional model with a residual skip (c1 -> r1 -> c2 ->
  add(r1, c2) -> c3 -> pool -> head); the reference the broken files are derived from;
- ``truncated.keras`` / ``truncated.h5``: the first half of the valid files;
- ``corrupt.keras``: a zip whose ``config.json`` is not JSON; ``bitrot.keras``: the valid file
  with bytes flipped inside its weights; ``corrupt.h5``: an HDF5 signature and then noise;
- ``text.keras``, ``empty.keras``, ``empty.h5``, ``notes.txt``, ``directory.keras/``;
- ``zipbomb.keras``: a 300 KB archive whose ``config.json`` inflates to 256 MiB;
- ``lambda.keras`` (a ``Lambda`` layer with Python code), ``custom.keras`` (a layer class
  registered only in the process that saved it), ``subclassed.keras`` (a subclassed model);
- ``tiny.weights.h5``: weights of ``tiny``, wrong for any keras.applications architecture;
- ``samples_bad.npz``: not an npz; ``samples_object.npz``: an object array (needs pickle);
  ``samples_bomb.npz``: 1 MB that inflates to 1 GiB of ``image`` rows shaped for ``tiny``;
- ``huge_name.yaml``: a config whose backbone name is 1 MB; ``huge_int.yaml``: a config with a
  5000-digit integer.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

__all__ = ["make_corpus"]

BOMB_BYTES = 256 * 1024 * 1024
NPZ_BOMB_BYTES = 1024 * 1024 * 1024


def write_npz_bomb(path: Path, name: str = "image", row_shape: tuple[int, ...] = (16, 16, 3),
                   total_bytes: int = NPZ_BOMB_BYTES) -> Path:
    """An ``.npz`` whose one float32 array inflates to about ``total_bytes`` of zeros.

    Built in well under a second without compressing a gigabyte: one deflate block of zeros,
    ended by a full flush (so it stands alone), is repeated, and the zip around it is written
    by hand (CRC included, so the archive is valid).
    """
    import numpy as np

    row = 4 * int(np.prod(row_shape))
    chunk_rows = max(1, (8 << 20) // row)
    repeats = max(1, total_bytes // (chunk_rows * row))
    header_io = io.BytesIO()
    np.lib.format.write_array_header_1_0(header_io, {
        "descr": "<f4", "fortran_order": False, "shape": (chunk_rows * repeats, *row_shape)})
    header, chunk = header_io.getvalue(), bytes(chunk_rows * row)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    data = head + block * repeats + deflate.flush(zlib.Z_FINISH)
    crc = zlib.crc32(header)
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    size = len(header) + len(chunk) * repeats
    member = f"{name}.npy".encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(member), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                          len(member), 0, 0, 0, 0, 0, 0)
    offset = len(local) + len(member) + len(data)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(member), offset, 0)
    path.write_bytes(local + member + data + central + member + end)
    return path


def _raw_files(out: Path) -> None:
    (out / "text.keras").write_text("This is a README, not a model. Saved with the wrong name.\n")
    (out / "empty.keras").write_bytes(b"")
    (out / "empty.h5").write_bytes(b"")
    (out / "notes.txt").write_text("not a model at all\n")
    (out / "directory.keras").mkdir(exist_ok=True)
    (out / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 64)
    (out / "samples_bad.npz").write_bytes(b"PK\x03\x04 definitely not numpy")
    _data_files(out)
    with zipfile.ZipFile(out / "corrupt.keras", "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", "{ this is : not json ]")
        zf.writestr("model.weights.h5", b"\x00" * 64)
    # zip-bomb-like: a small archive that inflates to 256 MiB (compressed once, in chunks)
    with zipfile.ZipFile(out / "zipbomb.keras", "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        with zf.open("config.json", "w", force_zip64=True) as member:
            chunk = b" " * (8 * 1024 * 1024)
            for _ in range(BOMB_BYTES // len(chunk)):
                member.write(chunk)
        zf.writestr("model.weights.h5", b"")


def _data_files(out: Path) -> None:
    import numpy as np

    np.savez(out / "samples_object.npz", image=np.array([{"rows": 2}, None], dtype=object))
    write_npz_bomb(out / "samples_bomb.npz")
    name = "a" * (1024 * 1024)
    (out / "huge_name.yaml").write_text(
        f"store: ./backbones\nbackbones:\n  - {{name: {name}, source: keras.applications/MobileNetV2}}\n")
    (out / "huge_int.yaml").write_text(
        "store: ./backbones\nconcurrency: " + "7" * 5000
        + "\nbackbones:\n  - {name: a, source: keras.applications/MobileNetV2}\n")


def _tiny(keras):
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    r = keras.layers.ReLU(name="r1")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="c2")(r)
    y = keras.layers.Add(name="add")([r, y])
    y = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c3")(y)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    outputs = keras.layers.Dense(5, name="head")(y)
    return keras.Model(inputs, outputs, name="tiny")


def _model_files(out: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = _tiny(keras)
    model.save(out / "tiny.keras")
    model.save(out / "tiny.h5")
    model.save_weights(out / "tiny.weights.h5")
    for name in ("tiny.keras", "tiny.h5"):
        data = (out / name).read_bytes()
        (out / f"truncated{Path(name).suffix}").write_bytes(data[: len(data) // 2])
    # bit rot inside the weights member: the zip's CRC no longer matches
    data = bytearray((out / "tiny.keras").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    for i in range(start, start + 64):
        data[i] ^= 0xFF
    (out / "bitrot.keras").write_bytes(bytes(data))

    inputs = keras.Input((8,), name="x")
    doubled = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    keras.Model(inputs, keras.layers.Dense(2, name="d")(doubled)).save(out / "lambda.keras")

    @keras.saving.register_keras_serializable(package="kerascut_corpus")
    class Scale(keras.layers.Layer):
        def call(self, t):
            return t * 3.0

    inputs = keras.Input((8,), name="x")
    keras.Model(inputs, keras.layers.Dense(2, name="d")(Scale(name="scale")(inputs))).save(out / "custom.keras")

    @keras.saving.register_keras_serializable(package="kerascut_corpus")
    class Sub(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.d1 = keras.layers.Dense(4, name="d1")
            self.d2 = keras.layers.Dense(2, name="d2")

        def call(self, t):
            return self.d2(self.d1(t))

    sub = Sub(name="sub")
    sub(keras.ops.zeros((1, 8)))
    sub.save(out / "subclassed.keras")
    keras.backend.clear_session()


def make_corpus(out: str | Path, *, models: bool = True) -> Path:
    """Write the corpus fixtures into ``out`` (created) and return it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _raw_files(out)
    if models:
        _model_files(out)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--no-models", action="store_true")
    args = parser.parse_args()
    print(make_corpus(args.out, models=not args.no_models))
