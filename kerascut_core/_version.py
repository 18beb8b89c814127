"""kerascut's version, in a base module so that every layer can read it without the package facade."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
