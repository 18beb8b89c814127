"""The bad-input corpus through the CLI: one line, no traceback, the problem and the fix named,
and the stores byte for byte unchanged. The ``tier: ci`` cases run in CI; all with ``-m slow``.
"""

from __future__ import annotations

import pytest

from tests.bad_inputs.runner import Corpus, load_cases
from tests.reliability.figures import record

CASES = load_cases()

# The categories the reliability issue requires, each by at least one case id.
REQUIRED = {
    "corrupt/truncated .keras and .h5": ["keras-truncated", "h5-truncated", "keras-corrupt-config", "h5-corrupt"],
    "text named .keras, empty file, zip bomb": ["keras-is-text", "keras-empty", "keras-zipbomb"],
    "Lambda, custom layer, subclassed": ["lambda-refused-safe-mode", "custom-layer-unregistered", "subclassed-model"],
    "cut names and ranges": ["cut-unknown-end", "cut-crossing-skip", "cut-end-before-start", "cut-drop-first-out-of-range"],
    "imagenet offline, input_shape": ["imagenet-offline-inspect", "input-shape-too-small", "config-input-shape-wrong"],
    "YAML and config": ["yaml-unclosed-bracket", "config-unknown-backbone-key", "config-samples-wrong-type"],
    "S3 and keys": ["s3-source-missing-bucket", "s3-source-missing-key", "s3-no-credentials", "s3-access-denied",
                    "s3-source-key-dotdot", "pull-version-dotdot"],
}


def test_corpus_is_complete():
    ids = {case["id"] for case in CASES}
    assert len(ids) >= 60
    for category, needed in REQUIRED.items():
        assert set(needed) <= ids, category
    for case in CASES:
        assert case.get("expect"), f"{case['id']} names no problem or fix"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    with Corpus(tmp_path_factory.mktemp("badinputs")) as world:
        yield world


def _param(case):
    marks = [pytest.mark.integration]
    if case.get("tier") != "ci":
        marks.append(pytest.mark.slow)
    return pytest.param(case, id=case["id"], marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case, corpus):
    result = corpus.run(case)
    record("bad_input", id=case["id"], ok=result.ok, exit=result.exit_code, seconds=result.seconds,
           problems=result.problems, message=result.stderr.strip()[-300:])
    assert result.ok, f"{case['id']}: {result.problems}; stderr: {result.stderr.strip()[-600:]}"
