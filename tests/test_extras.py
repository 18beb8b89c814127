"""The optional extras: one-line errors without them, and a sane environment with them."""

from __future__ import annotations

import importlib.metadata
import re
import sys

import pytest

from kerascut_core.extras import EXTRAS, MissingExtraError, require
from tests.support.extras import needs


def test_missing_extra_is_one_line_naming_the_extra() -> None:
    with pytest.raises(MissingExtraError) as info:
        require("kerascut_no_such_runtime", extra="litert", purpose="the 'litert' format")
    message = str(info.value)
    assert "\n" not in message
    assert "pip install 'kerascut[litert]'" in message
    assert "kerascut_no_such_runtime" in message
    assert isinstance(info.value, ImportError)


def test_a_broken_dependency_inside_an_installed_module_is_not_called_a_missing_extra(
    tmp_path, monkeypatch
) -> None:
    (tmp_path / "kc_fake_runtime.py").write_text("import kc_fake_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        require("kc_fake_runtime", extra="onnx", purpose="the 'onnx' format")
    assert not isinstance(info.value, MissingExtraError)
    assert info.value.name == "kc_fake_missing_dependency"


def test_every_extra_is_declared_in_the_package_metadata() -> None:
    declared = set(importlib.metadata.metadata("kerascut").get_all("Provides-Extra") or [])
    assert set(EXTRAS) <= declared


def _tensorflow_distributions() -> list[str]:
    names = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in importlib.metadata.distributions()}
    return sorted(n for n in names if n in {"tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly"})


def test_one_tensorflow_distribution() -> None:
    assert len(_tensorflow_distributions()) == 1, _tensorflow_distributions()


@pytest.mark.extras
@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_extras_slice_has_every_extra_and_one_tensorflow(extra: str) -> None:
    if extra == "hub" and sys.version_info < (3, 11):
        pytest.skip("keras-hub needs Python >= 3.11")
    for module in EXTRAS[extra]:
        needs(module)
    assert len(_tensorflow_distributions()) == 1, _tensorflow_distributions()
