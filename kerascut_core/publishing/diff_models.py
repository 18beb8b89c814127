"""The model half of a version diff: weights bitwise, layer by layer, and the numbers on the
same seeded inputs. Imports Keras (when called); :mod:`kerascut_core.publishing.diff` calls it
only when ``samples`` is not 0.

Both versions are loaded with :func:`~kerascut_core.publishing.consumer.load_backbone` (every
sha256 checked, ``safe_mode``). Variables are matched by their path (``layer/variable``); a
layer changed when any of its variables differs in shape, dtype or any bit, or exists on one
side only. The inputs are those validation uses (:func:`kerascut_core.validation.inputs.random_inputs`
with the seed), built for ``a``; when the two versions' inputs differ in shape or dtype the
numbers are not compared (the interface already says why).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from kerascut_core.publishing.diff_parts import NumbersDiff, WeightsDiff
from kerascut_core.publishing.manifest import Manifest

if TYPE_CHECKING:
    from kerascut_core.publishing.diff import VersionDiff

__all__ = ["compare_models", "compare_numbers", "compare_weights", "load_version"]


def load_version(ref: str, manifest: Manifest, cache_dir: str | os.PathLike[str] | None) -> Any:
    """The ``keras.Model`` of ``manifest``'s version of the backbone ``ref`` names."""
    from kerascut_core.publishing.consumer import load_backbone
    from kerascut_core.uris import split_backbone_ref

    store_uri, name, _ = split_backbone_ref(ref)
    return load_backbone(f"{store_uri}/{name}@{manifest.version}", cache_dir=cache_dir)


def _variables(model: Any) -> dict[str, Any]:
    import numpy as np

    found: dict[str, Any] = {}
    for var in model.weights:
        path = str(getattr(var, "path", None) or var.name)
        key, k = path, 1
        while key in found:  # the same path twice: told apart by order
            key, k = f"{path}#{k}", k + 1
        found[key] = np.asarray(var.numpy() if hasattr(var, "numpy") else var)
    return found


def _layer(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else path


def compare_weights(model_a: Any, model_b: Any) -> WeightsDiff:
    """Every variable of ``a`` against ``b``'s of the same path, bitwise."""
    import numpy as np

    va, vb = _variables(model_a), _variables(model_b)
    layers = {_layer(p) for p in (*va, *vb)}
    changed: set[str] = set()
    largest: float | None = None
    largest_layer: str | None = None
    for path in sorted(set(va) | set(vb)):
        x, y = va.get(path), vb.get(path)
        if x is None or y is None or x.shape != y.shape or x.dtype != y.dtype:
            changed.add(_layer(path))
            continue
        if x.tobytes() == y.tobytes():
            continue
        changed.add(_layer(path))
        if x.dtype.kind in "fiu" and x.size:
            delta = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
            if largest is None or (math.isnan(delta) or delta > largest):
                largest, largest_layer = delta, _layer(path)
    return WeightsDiff(compared=True, layers=len(layers), changed_layers=sorted(changed),
                       largest=largest, largest_layer=largest_layer)


def _outputs(model: Any, arrays: list[Any], names: list[str], batch: int) -> list[Any]:
    import numpy as np

    from kerascut_core.validation.forward import flatten_outputs

    parts: list[list[Any]] = []
    for lo in range(0, len(arrays[0]), batch):
        chunk = [a[lo : lo + batch] for a in arrays]
        result = model(chunk if len(chunk) > 1 else chunk[0], training=False)
        parts.append([np.asarray(r) for r in flatten_outputs(result, names)])
    return [np.concatenate([p[i] for p in parts], axis=0) for i in range(len(parts[0]))]


def compare_numbers(model_a: Any, model_b: Any, a: Manifest, b: Manifest, *, samples: int, seed: int,
                    batch: int = 8) -> list[NumbersDiff]:
    """Per output both versions have (same name, same shape), the max abs difference of their
    activations on ``samples`` seeded inputs, and the relative one: the max abs difference over
    the largest magnitude of ``a``'s activation (elementwise ratios blow up near zero)."""
    import numpy as np

    from kerascut_core.validation.comparisons import compare
    from kerascut_core.validation.inputs import random_inputs

    arrays = random_inputs(model_a, samples, seed)
    outs_a = _outputs(model_a, arrays, [o.name for o in a.outputs], batch)
    outs_b = _outputs(model_b, arrays, [o.name for o in b.outputs], batch)
    by_name_b = dict(zip((o.name for o in b.outputs), outs_b, strict=False))
    rows = []
    for info, x in zip(a.outputs, outs_a, strict=False):
        y = by_name_b.get(info.name)
        if y is None or x.shape != y.shape:
            continue
        max_abs = compare(y, x, 0.0, 0.0)[0]
        scale = float(np.max(np.abs(x.astype(np.float64)))) if x.size else 0.0
        max_rel = 0.0 if max_abs == 0.0 else (max_abs / scale if scale > 0 else math.inf)
        rows.append(NumbersDiff(output=info.name, max_abs_diff=max_abs, max_rel_diff=max_rel, samples=samples))
    return rows


def compare_models(
    result: VersionDiff,
    a: tuple[str, Manifest],
    b: tuple[str, Manifest],
    *,
    samples: int,
    seed: int,
    cache_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Fill ``result.weights`` (unless already known identical) and ``result.numbers``."""
    (ref_a, ma), (ref_b, mb) = a, b
    model_a = load_version(ref_a, ma, cache_dir)
    model_b = model_a if (ma.name, ma.version) == (mb.name, mb.version) else load_version(ref_b, mb, cache_dir)
    if result.weights is None:
        result.weights = compare_weights(model_a, model_b)
    same_inputs = [(t.shape, t.dtype) for t in ma.inputs] == [(t.shape, t.dtype) for t in mb.inputs]
    if not same_inputs:
        result.notes.append("the inputs differ, so the numbers were not compared")
        return
    result.numbers = compare_numbers(model_a, model_b, ma, mb, samples=samples, seed=seed)
