"""The S3 client helpers every S3 user in kerascut shares: stores, sources and tasks.

A base package (it imports only :mod:`kerascut_core.errors` and :mod:`kerascut_core.transient`):

- ``client``: one boto3 client per endpoint and identity, thread-safe; botocore errors as one
  line (:func:`~kerascut_core.aws.client.map_error`), marked transient by the one rule;
  the multipart sizes and the download ``TransferConfig``;
- ``credentials``: credentials handed to the client for one context
  (:func:`~kerascut_core.aws.credentials.s3_credentials`), never through ``os.environ``.

boto3 is imported on the first client, not here.
"""

from __future__ import annotations
