"""The catalog: a static HTML site of a store a team can browse (``kerascut catalog STORE -o DIR``).

- ``build``: :func:`build_catalog` reads the store once, streaming, and writes the site;
- ``pages``: the index, one page per backbone (versions on a timeline, the alias history, the
  consumers), one page per version (the card's content, the picture, the contract, the
  validation, the diff to the previous version);
- ``html``: the page frame, the stylesheet and the escaping every value goes through.

Plain HTML and CSS, no script (each page forbids scripts with a Content-Security-Policy): any
static file server, or an S3 website bucket, serves it.

    >>> from kerascut_core.catalog import build_catalog
    >>> build_catalog(open_store("s3://team/backbones"), "./catalog")   # doctest: +SKIP
"""

from __future__ import annotations

from kerascut_core.catalog.build import CatalogReport, build_catalog

__all__ = ["CatalogReport", "build_catalog"]
