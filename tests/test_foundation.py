"""The foundation: cheap imports, the spec, the CLI's error contract."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kerascut_core as kc
from kerascut_core._names import closest, did_you_mean
from tests.support.cli import kerascut as run_kerascut


def test_import_is_cheap():
    code = "import sys, kerascut_core; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cut_error_is_a_value_error():
    assert issubclass(kc.CutError, ValueError)
    assert issubclass(kc.CutError, kc.KerascutError)


def test_spec_round_trip():
    spec = kc.CutSpec(start=["a", "b"], end={"P3": "c"}, extra_inputs="auto")
    assert kc.CutSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict() == {"start": ["a", "b"], "end": {"P3": "c"}, "drop_first": None, "extra_inputs": "auto"}


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"start": "a", "drop_first": 2}, "not both"),
        ({"drop_first": 0}, "positive integer"),
        ({"drop_first": True}, "positive integer"),
        ({"extra_inputs": "maybe"}, "['error', 'auto']"),
        ({"end": []}, "at least one"),
        ({"start": ""}, "empty string"),
        ({"end": {"P3": 3}}, "dict of output names"),
    ],
)
def test_spec_rejects_bad_input(kwargs, fragment):
    with pytest.raises(kc.CutError, match=None) as info:
        kc.CutSpec(**kwargs)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_suggestions():
    names = ["block_1_expand_relu", "block_2_expand_relu", "block_13_expand_relu", "out_relu"]
    assert closest("block_2_expand_rel", names)[0] == "block_2_expand_relu"
    assert "Did you mean" in did_you_mean("out_rel", names)
    assert did_you_mean("zzzz", names) == ""


def _cli(*args: str, process: bool = False):
    return run_kerascut(*args, timeout=120, process=process)


def test_cli_usage_error_is_one_line_exit_2():
    out = _cli("no-such-command", process=True)  # the real `python -m kerascut_core`'s exit code
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "No such command" in out.stderr and "Traceback" not in out.stderr


def test_cli_help_shows_an_example():
    out = _cli("--help")
    assert out.returncode == 0
    assert "kerascut run deployments/quickstart.yaml" in out.stdout
