"""User sample inputs for the source (``data=``): ``.npy`` / ``.npz`` files, read bounded.

Only what ``samples`` needs is read, headers first, and at most ``KERASCUT_MAX_DATA_BYTES``
(default 2 GiB) in all; pickles and object arrays are refused. The arrays must fit the
source's inputs (:func:`kerascut_core.validation.inputs.input_specs`): same rank, the known
dimensions, a dtype that casts safely.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerascut_core.errors import ValidationError
from kerascut_core.validation.inputs import input_specs
from kerascut_core.validation.locations import fetch_local, is_remote
from kerascut_core.validation.messages import one_line, shape_text

__all__ = ["load_data"]

#: Default of ``KERASCUT_MAX_DATA_BYTES``: the most bytes of sample data one validation reads.
_DEFAULT_MAX_DATA_BYTES = 2 * 1024**3
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def load_data(
    data: str | os.PathLike[str], model: Any, samples: int, used: Sequence[int] | None = None
) -> list[Any]:
    """User sample inputs from ``.npy`` (one input) or ``.npz`` (one array for each input).

    ``used`` are the positions, in ``model.inputs``, of the inputs to read (those a cut uses;
    default all): an ``.npz`` may hold only those, by name, or arrays for every input (by
    name, or ``arr_0``, ``arr_1``... in the order of all the inputs).

    Only what ``samples`` needs is read: every array's header first (shape, dtype, order, no
    data), then only its first ``samples`` rows, straight from the file or the compressed
    ``.npz`` member. A 1 MB ``.npz`` that inflates to 1 GiB costs two rows for ``samples=2``.

    Refused with a one-line :class:`ValidationError` naming the file and the fix:

    * object arrays (they need pickle, which is never allowed) and files that are not numpy's
      ``.npy`` / ``.npz`` (a pickle, a zip of something else);
    * arrays whose needed rows, all inputs together, exceed ``KERASCUT_MAX_DATA_BYTES``
      (default 2 GiB; Fortran-ordered arrays count whole, their rows are not contiguous);
    * arrays of the wrong shape, dtype or number of rows for the source's inputs.
    """
    import zipfile

    text = os.fspath(data)
    shown = _short_text(text)
    local = _data_path(text)
    every = input_specs(model)
    positions = list(range(len(every))) if used is None else list(used)
    specs = [every[i] for i in positions]
    names = [name for name, _, _ in specs]
    if not local.is_file():
        raise ValidationError(f"Expected `data` to be an existing .npz or .npy file. Received {shown}.")
    limit = _max_data_bytes()
    unreadable = (OSError, EOFError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError)
    try:
        with open(local, "rb") as handle:
            magic = handle.read(6)
            if magic == _NPY_MAGIC:
                handle.seek(0)
                if len(specs) != 1:
                    raise ValidationError(
                        f"Expected `data` to be an .npz with one array for each of the source's inputs "
                        f"{names}. Received one .npy array; save the inputs with np.savez(path, **arrays)."
                    )
                header = _npy_header(handle, local.name, shown)
                _check_headers([header], specs, samples, limit, shown)
                return [_read_rows(handle, header, samples, specs[0][2], shown)]
            if magic[:4] not in _ZIP_MAGICS:
                raise ValidationError(
                    f"Expected `data` to be a .npz or .npy file written by numpy. Received {shown}, "
                    "which is neither (pickles are refused); save numeric arrays with np.savez or np.save."
                )
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                members = _npz_members(archive, names, shown, positions=positions, count=len(every))
                streams = [archive.open(member) for member in members]
                try:
                    headers = [_npy_header(s, m, shown) for s, m in zip(streams, members, strict=True)]
                    _check_headers(headers, specs, samples, limit, shown)
                    return [
                        _read_rows(stream, header, samples, dtype, shown)
                        for stream, header, (_, _, dtype) in zip(streams, headers, specs, strict=True)
                    ]
                finally:
                    for stream in streams:
                        stream.close()
    except unreadable as exc:
        raise ValidationError(
            f"Expected `data` to be a .npz or .npy file written by numpy. Received {shown}: {one_line(exc)}"
        ) from None


def _short_text(text: str) -> str:
    from kerascut_core._names import short_repr

    return short_repr(text, 200)


def _data_path(text: str) -> Path:
    """The local file of ``data``: downloaded when remote; ``file://`` with a host refused."""
    if is_remote(text):
        return fetch_local(text)
    if text.startswith("file://"):
        from kerascut_core.uris import file_uri_path

        return file_uri_path(text, error=ValidationError)
    return Path(text).expanduser()


def _max_data_bytes() -> int:
    raw = os.environ.get("KERASCUT_MAX_DATA_BYTES", "").strip()
    if not raw:
        return _DEFAULT_MAX_DATA_BYTES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError(
            f"Expected KERASCUT_MAX_DATA_BYTES to be a positive number of bytes such as "
            f"{_DEFAULT_MAX_DATA_BYTES}. Received {_short_text(raw)}; fix or unset it."
        )
    return value


def _npz_members(
    archive: Any, names: list[str], shown: str, *, positions: Sequence[int], count: int
) -> list[str]:
    """The ``.npz`` members holding the inputs ``names`` (at ``positions`` among the ``count``
    inputs of the source), in input order (as ``np.load`` names them)."""
    members = {n[: -len(".npy")] if n.endswith(".npy") else n: n for n in archive.namelist()}
    keys = list(members)
    if all(n in members for n in names):
        chosen = names
    elif len(keys) == count and all(f"arr_{i}" in members for i in range(count)):
        chosen = [f"arr_{i}" for i in positions]  # one array for each input of the source
    elif len(keys) == len(names) and all(f"arr_{i}" in members for i in range(len(names))):
        chosen = [f"arr_{i}" for i in range(len(names))]
    elif len(names) == 1 and len(keys) == 1:
        chosen = keys
    else:
        from kerascut_core._names import format_options

        raise ValidationError(
            f"Expected `data` to hold arrays named after the source's inputs {names}. "
            f"Received arrays [{format_options(keys)}] in {shown}; rename them, or save them in input "
            "order as arr_0, arr_1, ..."
        )
    for key in chosen:
        if not members[key].endswith(".npy"):
            raise ValidationError(
                f"Expected `data` to be an .npz written by np.savez. Received {shown} whose member "
                f"{_short_text(members[key])} is not a .npy array; save the inputs with np.savez(path, **arrays)."
            )
    return [members[key] for key in chosen]


@dataclass(frozen=True)
class _NpyHeader:
    label: str
    shape: tuple[int, ...]
    fortran: bool
    dtype: Any


def _npy_header(stream: Any, label: str, shown: str) -> _NpyHeader:
    """Shape, order and dtype of one ``.npy`` stream, read without its data."""
    import numpy as np

    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValidationError(
            f"Expected `data` arrays in .npy format 1.0 or 2.0 (numeric arrays). Received format "
            f"{version[0]}.{version[1]} for {_short_text(label)} in {shown}; save numeric arrays with np.savez."
        )
    if dtype.hasobject:
        raise ValidationError(
            f"Expected `data` to hold numeric arrays. Received an object array {_short_text(label)} "
            f"in {shown}: object arrays need pickle, and pickles are refused; save numeric arrays, "
            "e.g. np.savez(path, image=x.astype('float32'))."
        )
    return _NpyHeader(label, tuple(int(d) for d in shape), bool(fortran), dtype)


def _check_headers(
    headers: list[_NpyHeader], specs: list[tuple[str, tuple[int | None, ...], str]], samples: int,
    limit: int, shown: str,
) -> None:
    """Rows, shapes and dtypes against the source's inputs, and the bytes to read against ``limit``."""
    import numpy as np

    rows = {h.shape[0] if h.shape else 0 for h in headers}
    if len(rows) != 1 or 0 in rows:
        raise ValidationError(
            f"Expected every array in `data` to have the same, non-zero number of rows. Received {sorted(rows)}."
        )
    needed = 0
    for header, (name, shape, dtype) in zip(headers, specs, strict=True):
        if len(header.shape) != len(shape) or any(
            d is not None and d != a for d, a in zip(shape[1:], header.shape[1:], strict=True)
        ):
            raise ValidationError(
                f"Expected `data` for input {name!r} to have shape {shape_text((None, *shape[1:]))}. "
                f"Received shape {shape_text(header.shape)}."
            )
        if not np.can_cast(header.dtype, np.dtype(dtype), casting="same_kind"):
            raise ValidationError(
                f"Expected `data` for input {name!r} to have dtype {dtype}. Received {header.dtype}."
            )
        needed += _bytes_to_read(header, samples)
    if needed > limit:
        raise ValidationError(
            f"Expected `data` to need at most {limit:,} bytes (KERASCUT_MAX_DATA_BYTES) for "
            f"{samples} sample(s). Received arrays in {shown} that need {needed:,} bytes; use fewer "
            "samples or smaller arrays (Fortran-ordered arrays are read whole: save them with "
            "np.ascontiguousarray), or raise KERASCUT_MAX_DATA_BYTES."
        )


def _bytes_to_read(header: _NpyHeader, samples: int) -> int:
    row = math.prod(header.shape[1:]) * header.dtype.itemsize
    whole = header.fortran and len(header.shape) > 1
    return header.shape[0] * row if whole else min(samples, header.shape[0]) * row


def _read_rows(stream: Any, header: _NpyHeader, samples: int, dtype: str, shown: str) -> Any:
    """The first ``samples`` rows of the array whose header was just read from ``stream``."""
    import numpy as np

    size = _bytes_to_read(header, samples)
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        got = stream.readinto(view[done:])
        if not got:
            raise ValidationError(
                f"Expected `data` array {_short_text(header.label)} in {shown} to hold "
                f"{shape_text(header.shape)} values. Received a file that ends early (truncated); "
                "save it again."
            )
        done += got
    rows = min(samples, header.shape[0])
    if header.fortran and len(header.shape) > 1:
        whole = np.frombuffer(buffer, dtype=header.dtype).reshape(header.shape[::-1]).transpose()
        array = np.ascontiguousarray(whole[:rows])
    else:
        array = np.frombuffer(buffer, dtype=header.dtype).reshape((rows, *header.shape[1:]))
    return array.astype(dtype, copy=False)
