"""Cheap checks of a model file before Keras opens it: the right kind of file, whole, and sane.

Keras reports an empty, truncated or text file named ``.keras`` as "File not found", and inflates
whatever a ``.keras`` zip declares, so a small archive can make it allocate gigabytes. These
checks read only headers (the zip's central directory, the HDF5 signature) and raise a
:class:`~kerascut_core.errors.SourceError` that names the file, the problem and the fix. What
Keras itself raises once it has opened a file is explained by :mod:`.load_errors`.

    >>> check_model_file("resnet50.keras")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from kerascut_core.errors import SourceError

__all__ = ["MAX_INFLATE_RATIO", "MAX_JSON_BYTES", "check_model_file"]

#: ``config.json`` and ``metadata.json`` larger than this are refused (real ones are kilobytes).
MAX_JSON_BYTES = int(os.environ.get("KERASCUT_MAX_CONFIG_BYTES", str(64 * 2**20)))
#: Keras stores members uncompressed; an archive inflating to more than this many times its size
#: (and to more than ``MAX_JSON_BYTES``) is refused as a zip bomb.
MAX_INFLATE_RATIO = 20
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_RESAVE = "Download it again, or save it again with model.save(...)"


def check_model_file(path: str | os.PathLike[str]) -> None:
    """Raise ``SourceError`` unless ``path`` looks like a whole ``.keras`` zip or HDF5 file."""
    path = Path(path)
    size = path.stat().st_size
    shown = str(path)
    if size == 0:
        raise SourceError(f"Cannot load {shown!r}: the file is empty (0 bytes). {_RESAVE}.")
    if path.suffix.lower() == ".keras":
        _check_zip(path, shown, size)
    elif path.suffix.lower() in (".h5", ".hdf5"):
        with path.open("rb") as handle:
            head = handle.read(len(_HDF5_SIGNATURE))
        if head != _HDF5_SIGNATURE:
            raise SourceError(
                f"Cannot load {shown!r}: it is not an HDF5 file (no HDF5 signature); it may be a "
                f"renamed file or corrupt. {_RESAVE}."
            )


def _check_zip(path: Path, shown: str, size: int) -> None:
    if not zipfile.is_zipfile(path):
        with path.open("rb") as handle:
            head = handle.read(4)
        why = ("it is truncated or corrupt (a zip header but no readable end of archive)"
               if head.startswith(b"PK") else "it is not a zip archive (a text or other file renamed .keras?)")
        raise SourceError(f"Cannot load {shown!r} as a .keras model: {why}. {_RESAVE}.")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"Cannot load {shown!r} as a .keras model: the archive is corrupt ({exc}). {_RESAVE}.") from None
    names = {m.filename for m in members}
    if "config.json" not in names:
        raise SourceError(
            f"Cannot load {shown!r} as a .keras model: the archive has no config.json (members: "
            f"{', '.join(sorted(names)[:5]) or 'none'}). {_RESAVE}."
        )
    inflated = sum(m.file_size for m in members)
    for member in members:
        if member.filename.endswith(".json") and member.file_size > MAX_JSON_BYTES:
            raise SourceError(
                f"Cannot load {shown!r}: its {member.filename} inflates to {member.file_size / 2**20:.0f} MiB "
                f"(limit {MAX_JSON_BYTES / 2**20:.0f} MiB), which no real model has: a zip bomb or a corrupt "
                "archive. Do not use this file; raise KERASCUT_MAX_CONFIG_BYTES only if you trust it."
            )
    if inflated > MAX_JSON_BYTES and inflated > MAX_INFLATE_RATIO * size:
        raise SourceError(
            f"Cannot load {shown!r}: its {size} bytes inflate to {inflated / 2**20:.0f} MiB, more than "
            f"{MAX_INFLATE_RATIO}x (Keras stores members uncompressed): a zip bomb or a corrupt "
            "archive. Do not use this file."
        )
