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
- ``samples_bad.npz``: not an npz.
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

__all__ = ["make_corpus"]

BOMB_BYTES = 256 * 1024 * 1024


def _raw_files(out: Path) -> None:
    (out / "text.keras").write_text("This is a README, not a model. Saved with the wrong name.\n")
    (out / "empty.keras").write_bytes(b"")
    (out / "empty.h5").write_bytes(b"")
    (out / "notes.txt").write_text("not a model at all\n")
    (out / "directory.keras").mkdir(exist_ok=True)
    (out / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 64)
    (out / "samples_bad.npz").write_bytes(b"PK\x03\x04 definitely not numpy")
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
