"""Pictures of a model's graph: the SVG's structure (nodes and classes), not its pixels."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from kerascut_core.errors import DrawError
from kerascut_core.surgery import dot_source, draw, stage_of
from tests.fixtures.models import residual

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")

_SVG = "{http://www.w3.org/2000/svg}"


def _nodes(path) -> dict[str, set[str]]:
    """title (the graphviz node key) -> classes, for every node group of an SVG."""
    found = {}
    for g in ET.parse(path).getroot().iter(f"{_SVG}g"):
        classes = set(g.get("class", "").split())
        if "node" in classes:
            found[g.find(f"{_SVG}title").text] = classes - {"node"}
    return found


def _edges(path) -> list[set[str]]:
    return [
        set(g.get("class", "").split())
        for g in ET.parse(path).getroot().iter(f"{_SVG}g")
        if "edge" in g.get("class", "").split()
    ]


@pytest.fixture(scope="module")
def model():
    return residual(blocks=3)


def test_stage_names_of_keras_applications():
    assert stage_of("conv4_block2_1_conv") == "conv4_block2"
    assert stage_of("block_3_expand_relu") == "block_3"
    assert stage_of("block2a_expand_conv") == "block2a"
    assert stage_of("outer/conv2_block1_out") == "outer/conv2_block1"
    assert stage_of("predictions") is None


def test_every_op_is_drawn_and_cut_points_are_marked(model, tmp_path):
    from kerascut_core.surgery import cut_points, graph_view

    path = draw(model, tmp_path / "m.svg")
    nodes = [c for c in _nodes(path).values() if "op" in c]
    assert len(nodes) == len(graph_view(model).ops)
    assert sum("cut-point" in c for c in nodes) == len(cut_points(model))
    assert not any({"kept", "dropped"} & c for c in nodes)  # no cut given: no regions


def test_a_cut_marks_kept_dropped_start_and_output(model, tmp_path):
    from kerascut_core.surgery import cut_points, plan_cut

    points = cut_points(model)
    start = points[2]
    plan = plan_cut(model, start=start)
    path = draw(model, tmp_path / "cut.svg", start=start)
    nodes = [c for c in _nodes(path).values() if "op" in c]
    assert sum("kept" in c for c in nodes) == len(plan.kept)
    assert sum("start" in c for c in nodes) == 1
    assert sum("output" in c for c in nodes) == 1
    assert any("dropped" in c for c in nodes)
    assert not any("crossing" in e for e in _edges(path))


def test_a_crossing_cut_draws_the_crossing_skip(model, tmp_path):
    from kerascut_core.surgery import cut_points, graph_view

    view = graph_view(model)
    points = set(cut_points(model))
    inside = next(t.address for t in view.tensors[1:] if t.address not in points)
    path = draw(model, tmp_path / "cross.svg", start=inside)
    assert any("crossing" in e for e in _edges(path))


def test_collapse_folds_stages_and_keeps_the_cut_visible(tmp_path):
    import keras

    keras.backend.clear_session()
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    full = dot_source(model)
    folded = dot_source(model, start="conv3_block2_1_relu", end="conv4_block6_out", collapse=True)
    assert folded.source.count("\tn") * 5 < full.source.count("\tn")
    path = draw(model, tmp_path / "r.svg", start="conv3_block2_1_relu", end="conv4_block6_out",
                collapse=True)
    nodes = _nodes(path)
    assert any("stage" in c and "kept" in c for c in nodes.values())
    assert any("stage" in c and "dropped" in c for c in nodes.values())
    assert any("crossing" in e for e in _edges(path))
    png = draw(model, tmp_path / "r.png", collapse=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_format_is_a_one_line_error(model, tmp_path):
    with pytest.raises(DrawError, match=r"\.svg or \.png"):
        draw(model, tmp_path / "m.pdf")


def test_cli_inspect_draws_svg_and_png(tmp_path):
    from tests.support.cli import kerascut

    svg, png = tmp_path / "r.svg", tmp_path / "r.png"
    out = kerascut("inspect", "keras.applications/ResNet50", "--weights", "none", "--input-shape", "64,64,3",
                   "--svg", str(svg), "--png", str(png), "--start", "conv3_block1_out", "--end", "conv4_block6_out",
                   "--collapse", timeout=300)
    assert out.returncode == 0, out.stderr
    nodes = _nodes(svg)
    assert any("start" in c for c in nodes.values()) and any("output" in c for c in nodes.values())
    assert any("cut-point" in c for c in nodes.values())
    assert png.read_bytes()[:4] == b"\x89PNG"
