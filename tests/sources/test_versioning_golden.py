"""Golden content addresses: the versions that published backbones already carry.

A version is the store key of every published backbone. If one of these values changes, every
backbone of every team is republished on its next scheduled refresh. Change them only on
purpose: say why in the commit message and in the release notes, never to make a test pass.
"""

from __future__ import annotations

import pytest

from kerascut_core.publishing.versioning import compute_version

GOLDEN = [
    (("sha256:ab12", {"end": "block_13_expand_relu"}, [224, 224, 3], "3.15.1", "0.1.0"), "dacbebb99180baec"),
    (
        ("app:MobileNetV2:keras3.15:weights=none:shape=96x96x3",
         {"end": ["block_3_expand_relu", "block_6_expand_relu"]}, [96, 96, 3], "3.15.1", "0.1.0"),
        "f2979f292474673f",
    ),
    (('s3:etag="abc":size=123', {"start": "conv3_block1_out", "end": "conv4_block6_out"}, None, "3.15.1", "0.1.0"),
     "83bd52d27bd1d28d"),
    (("fp#formats=keras+saved_model", {"drop_first": 3, "end": "out"}, [None, 32, 32, 3], "3.15.1", "0.1.0"),
     "cd0b293863664d8e"),
    (("fp", {"start": "a", "end": {"p3": "x", "p4": "y"}, "extra_inputs": "auto"}, [64, 64, 3], "3.10.0", "0.1.0"),
     "d32a517afbd816e4"),
]


@pytest.mark.parametrize(("args", "expected"), GOLDEN, ids=[g[1] for g in GOLDEN])
def test_compute_version_golden(args, expected):
    assert compute_version(*args) == expected


MNV2 = {"name": "mnv2", "source": "keras.applications/MobileNetV2", "weights": "none",
        "input_shape": [96, 96, 3], "end": "block_13_expand_relu"}
# Computed with the pipeline's code before backbone_version existed (tasks/freshness.py folded
# the formats into the fingerprint itself): the versions already published with these configs.
BACKBONE_GOLDEN = [
    (MNV2, "app:MobileNetV2:weights=none", "eede319b6cd4f913"),
    ({**MNV2, "formats": ["keras"]}, "app:MobileNetV2:weights=none", "eede319b6cd4f913"),
    ({**MNV2, "formats": ["keras", "saved_model"]}, "app:MobileNetV2:weights=none", "123af801b1ce21a8"),
    ({**MNV2, "formats": ["saved_model"]}, "app:MobileNetV2:weights=none", "123af801b1ce21a8"),  # keras is always first
    ({"name": "det", "source": "s3://team/det.keras", "start": "conv3_block1_out", "end": {"p3": "x", "p4": "y"},
      "extra_inputs": "auto", "formats": ["keras", "saved_model"]}, 's3:etag="abc":size=123', "b45ce5aab2250d38"),
]


@pytest.mark.parametrize(("config", "fingerprint", "expected"), BACKBONE_GOLDEN, ids=[g[2] + "-" + "+".join(g[0].get("formats", ["default"])) for g in BACKBONE_GOLDEN])
def test_backbone_version_golden(config, fingerprint, expected):
    import kerascut_core as kc
    from kerascut_core.config import BackboneConfig

    backbone = BackboneConfig.model_validate(config)
    assert kc.backbone_version(backbone, fingerprint, keras_version="3.15.1", kerascut_version="0.1.0") == expected
