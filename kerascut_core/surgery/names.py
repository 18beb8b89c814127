"""The flattened-name rule: how a layer or tensor of a (nested) model is addressed.

One rule, used by the graph view, the cut and validation alike:

- a layer inside a nested model is ``outer/inner`` (the nested model's address, ``/``, the
  layer's name), at any depth;
- the k-th call (0-based, in call order) of a layer called at several sites is ``name@k``;
- the i-th output of an operation with several outputs is ``name:i``.

A cut model has no nested models, and Keras layer names cannot hold ``/``: when a kept layer
must be renamed (two kept layers of different nested models share a name), it is named after
its address with ``/`` and ``@`` written as ``_`` (:func:`layer_name`).

    >>> from kerascut_core.surgery.names import flat_name, layer_name, leaf
    >>> flat_name("block_6_expand_relu", within="mobilenetv2_1.00_96")
    'mobilenetv2_1.00_96/block_6_expand_relu'
    >>> flat_name("dense", call=1), flat_name("split", output=0)
    ('dense@1', 'split:0')
    >>> layer_name("outer@1/conv:0"), leaf("outer/inner/conv")
    ('outer_1_conv', 'conv')
"""

from __future__ import annotations

__all__ = ["SEP", "flat_name", "layer_name", "leaf"]

SEP = "/"


def flat_name(
    name: str, *, within: str = "", call: int | None = None, output: int | None = None
) -> str:
    """The address of ``name`` inside the nested model at address ``within`` (``""``: the top).

    ``call`` is the call index of a shared layer (``name@k``); ``output`` the output index of a
    multi-output operation (``name:i``). ``flat_name(address, output=i)`` addresses output
    ``i`` of the operation at ``address``.
    """
    address = f"{within}{SEP}{name}" if within else name
    if call is not None:
        address = f"{address}@{call}"
    if output is not None:
        address = f"{address}:{output}"
    return address


def leaf(address: str) -> str:
    """The last part of an address: the name inside the innermost nested model."""
    return address.rsplit(SEP, 1)[-1]


def layer_name(address: str) -> str:
    """The Keras layer name for an operation's address: no output index, ``/`` and ``@`` as ``_``."""
    return address.split(":", 1)[0].replace(SEP, "_").replace("@", "_")
