"""A small corpus of real-world-shaped models: what users bring that the tiny graphs do not.

- :func:`custom_layer_model`: a token model with the team's own layers (``kc_layers.Scale``,
  ``kc_layers.TokenMix``, registered as ``kerascut_tests>...``), loaded through ``--import`` /
  ``imports:``; :func:`install_user_module` copies ``kc_layers.py`` where a test needs it;
- :func:`broken_config_model`: a model whose custom layer saves but does not reload;
- :func:`text_lstm`: a Sequential text model, integer token ids into an ``Embedding`` and two
  ``LSTM`` layers;
- :func:`legacy_h5`: a Keras 2 style ``.h5`` file, compiled with an optimizer whose config uses
  the old keys (``lr``, ``decay``) and says it was written by Keras 2.4;
- :func:`long_crop`: a ``Conv1D`` signal model with a ``Cropping1D((5000, 5000))``, which needs
  inputs longer than 10,000 steps;
- :func:`image_metadata`: two inputs, an image tower and a metadata MLP joined before the head
  (a cut to the image tower uses one of them);
- :func:`two_branch_lstm`: two sequence inputs, one ``LSTM`` branch each, joined before the head;
- :func:`parallel_convs`: 31 parallel convolutions on one stem (an Inception-like block), where
  ``drop_first=2`` with ``extra_inputs="auto"`` drops far more than 2 layers;
- :func:`tiny_bert`: a BERT-like encoder from plain Keras layers whose learned position
  embedding holds ``max_sequence_length=32`` positions: longer inputs fail only when it runs.

Every builder is seeded and names its layers, so tests can address them.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "USER_MODULE",
    "USER_MODULES",
    "broken_config_model",
    "custom_layer_model",
    "image_metadata",
    "install_user_module",
    "legacy_h5",
    "long_crop",
    "parallel_convs",
    "text_lstm",
    "tiny_bert",
    "two_branch_lstm",
    "user_layers",
]

#: The directory holding ``kc_layers.py`` (not a package: tests import it as ``kc_layers``).
USER_MODULES = Path(__file__).resolve().parents[1] / "fixtures" / "user_modules"
USER_MODULE = "kc_layers"


def install_user_module(directory: Path) -> Path:
    """Copy ``kc_layers.py`` into ``directory`` (beside a config, or a working directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(USER_MODULES / f"{USER_MODULE}.py", directory / f"{USER_MODULE}.py"))


def user_layers() -> Any:
    """``kc_layers``, imported in this process under that name (its classes registered)."""
    if USER_MODULE not in sys.modules:
        sys.path.insert(0, str(USER_MODULES))
        try:
            importlib.import_module(USER_MODULE)
        finally:
            sys.path.remove(str(USER_MODULES))
    return sys.modules[USER_MODULE]


def _seed() -> None:
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(1234)


def custom_layer_model() -> Any:
    """tokens (None, 6) -> proj -> scale (Scale) -> mix (TokenMix) -> ffn -> pool -> head."""
    import keras

    layers = user_layers()
    _seed()
    x = keras.Input((None, 6), name="tokens")
    h = keras.layers.Dense(8, name="proj")(x)
    h = layers.Scale(factor=1.5, name="scale")(h)
    h = layers.TokenMix(name="mix")(h)
    h = keras.layers.Dense(8, activation="relu", name="ffn")(h)
    h = keras.layers.GlobalAveragePooling1D(name="pool")(h)
    return keras.Model(x, keras.layers.Dense(3, name="head")(h), name="custom_net")


def broken_config_model() -> Any:
    """x -> a -> broken (BrokenConfig: saves, never reloads) -> b."""
    import keras

    layers = user_layers()
    _seed()
    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(4, name="a")(x)
    h = layers.BrokenConfig(name="broken")(h)
    return keras.Model(x, keras.layers.Dense(2, name="b")(h), name="broken_net")


def text_lstm() -> Any:
    """Sequential: token ids (None,) int32 -> embed (1000 x 16) -> lstm1 -> lstm2 -> head."""
    import keras

    _seed()
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32", name="token_ids"),
            keras.layers.Embedding(1000, 16, name="embed"),
            keras.layers.LSTM(16, return_sequences=True, name="lstm1"),
            keras.layers.LSTM(8, name="lstm2"),
            keras.layers.Dense(4, name="head"),
        ],
        name="text_lstm",
    )


def legacy_h5(path: Path) -> Path:
    """Save a compiled conv net as ``.h5`` with a Keras 2.4 style optimizer config; return it."""
    import h5py
    import keras
    import numpy as np

    _seed()
    x = keras.Input((16, 16, 3), name="image")
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    h = keras.layers.MaxPooling2D(name="pool1")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    model = keras.Model(x, keras.layers.Dense(2, name="logits")(h), name="legacy_cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(np.zeros((2, 16, 16, 3)), np.zeros((2, 2)), epochs=1, verbose=0)
    model.save(path)
    with h5py.File(path, "r+") as f:  # what Keras 2.4 wrote: old optimizer keys, old version
        training = json.loads(f.attrs["training_config"])
        training["optimizer_config"] = {
            "class_name": "Adam",
            "config": {"name": "Adam", "lr": 0.001, "decay": 0.0, "beta_1": 0.9,
                       "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False},
        }
        f.attrs["training_config"] = json.dumps(training)
        f.attrs["keras_version"] = "2.4.0"
    return path


def long_crop() -> Any:
    """signal (None, 3) -> c1 (Conv1D) -> crop (Cropping1D 5000+5000) -> c2 -> pool -> head."""
    import keras

    _seed()
    x = keras.Input((None, 3), name="signal")
    h = keras.layers.Conv1D(4, 3, activation="relu", name="c1")(x)
    h = keras.layers.Cropping1D((5000, 5000), name="crop")(h)
    h = keras.layers.Conv1D(4, 3, name="c2")(h)
    h = keras.layers.GlobalAveragePooling1D(name="pool")(h)
    return keras.Model(x, keras.layers.Dense(2, name="head")(h), name="long_crop")


def image_metadata() -> Any:
    """image (16, 16, 3) -> conv1 -> conv2 -> gap; meta (5,) -> meta_dense; concat -> head."""
    import keras

    _seed()
    image = keras.Input((16, 16, 3), name="image")
    meta = keras.Input((5,), name="meta")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(image)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    m = keras.layers.Dense(4, activation="relu", name="meta_dense")(meta)
    h = keras.layers.Concatenate(name="concat")([x, m])
    return keras.Model([image, meta], keras.layers.Dense(2, name="head")(h), name="image_metadata")


def two_branch_lstm() -> Any:
    """words (None, 6) -> proj_a -> lstm_a; chars (None, 4) -> lstm_b; concat -> head."""
    import keras

    _seed()
    words = keras.Input((None, 6), name="words")
    chars = keras.Input((None, 4), name="chars")
    a = keras.layers.Dense(8, name="proj_a")(words)
    a = keras.layers.LSTM(8, name="lstm_a")(a)
    b = keras.layers.LSTM(4, name="lstm_b")(chars)
    h = keras.layers.Concatenate(name="concat")([a, b])
    return keras.Model([words, chars], keras.layers.Dense(3, name="head")(h), name="two_branch_lstm")


def parallel_convs(branches: int = 31) -> Any:
    """image (8, 8, 3) -> stem -> branch_0 ... branch_30 (1x1 convs, in parallel) -> concat -> mix -> gap -> head."""
    import keras

    _seed()
    image = keras.Input((8, 8, 3), name="image")
    stem = keras.layers.Conv2D(4, 3, padding="same", name="stem")(image)
    parts = [keras.layers.Conv2D(2, 1, name=f"branch_{i}")(stem) for i in range(branches)]
    h = keras.layers.Concatenate(name="concat")(parts)
    h = keras.layers.Conv2D(4, 1, name="mix")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(image, keras.layers.Dense(2, name="head")(h), name="parallel_convs")


def tiny_bert(max_sequence_length: int = 32) -> Any:
    """token_ids (None,) -> token + position embeddings -> embed_norm -> one encoder block
    (attention, attention_norm, ffn_in, ffn_out, ffn_norm) -> pool -> head.

    Position ids are ``cumsum(ones) - 1`` looked up in an ``Embedding(max_sequence_length, 16)``,
    as BERT's learned position embedding: shape inference accepts any length, the lookup fails
    beyond ``max_sequence_length``.
    """
    import keras

    _seed()
    tokens = keras.Input((None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(100, 16, name="token_embedding")(tokens)
    positions = keras.ops.cumsum(keras.ops.ones_like(tokens), axis=1) - 1
    x = x + keras.layers.Embedding(max_sequence_length, 16, name="position_embedding")(positions)
    x = keras.layers.LayerNormalization(name="embed_norm")(x)
    attended = keras.layers.MultiHeadAttention(2, 8, name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="attention_norm")(x + attended)
    h = keras.layers.Dense(32, activation="gelu", name="ffn_in")(x)
    x = keras.layers.LayerNormalization(name="ffn_norm")(x + keras.layers.Dense(16, name="ffn_out")(h))
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(tokens, keras.layers.Dense(2, name="head")(pooled), name="tiny_bert")
