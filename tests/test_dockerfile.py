"""deployments/Dockerfile: what can be checked without a container engine.

Both targets exist and install the kerascut wheel built in the builder stage with
``-c constraints.txt``; every version the file names, and every package it installs by name,
is the one constraints.txt pins (so are the ``gpu`` extra and the CUDA libraries TensorFlow's
``and-cuda`` extra brings); the final user is not root; the default command is a Prefect worker
on the pool ``kerascut_core.pipeline_names`` names; the documented tags are the images
deployments/prefect.yaml names.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from kerascut_core import pipeline_names

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deployments" / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, rest in _instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest, re.I)
            assert match, f"every stage is named: FROM {rest}"
            current = stages.setdefault(match.group(2), [("FROM", match.group(1))])
        else:
            current.append((word, rest))
    return stages


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def _chain(stages: dict[str, list[tuple[str, str]]], name: str) -> list[tuple[str, str]]:
    """The instructions of stage ``name`` and of the stages it is built FROM, base first."""
    base = stages[name][0][1]
    return (_chain(stages, base) if base in stages else []) + stages[name]


def _pip_installs(instructions: list[tuple[str, str]]) -> list[str]:
    return [part.strip() for word, rest in instructions if word == "RUN"
            for part in re.split(r"&&|;", rest) if re.search(r"\bpip install\b", part)]


def test_both_targets_exist_and_install_the_built_wheel() -> None:
    stages = _stages()
    assert {"builder", "cpu", "gpu"} <= set(stages)
    builder = " ".join(rest for word, rest in stages["builder"] if word in ("COPY", "RUN"))
    assert "pip wheel" in builder and "--no-deps" in builder
    copied = {rest.split()[0] for word, rest in stages["builder"] if word == "COPY"}
    folders = {"src", "kerascut_core", "flows", "tasks"}  # setup.py's ROOTS
    assert folders <= copied and {"pyproject.toml", "setup.py", PYPROJECT["project"]["readme"]} <= {
        p for rest in (r for w, r in stages["builder"] if w == "COPY") for p in rest.split()[:-1]}
    ignore = (ROOT / "deployments" / "Dockerfile.dockerignore").read_text().splitlines()
    assert {f"!{f}/" for f in folders} | {"!constraints.txt", "!pyproject.toml", "!setup.py"} <= set(ignore)
    for target in ("cpu", "gpu"):
        chain = _chain(stages, target)
        assert any(w == "COPY" and "--from=builder" in r for w, r in chain), target
        installs = _pip_installs(stages[target])
        assert installs and any("kerascut-*.whl" in i or "${wheel}" in i for i in installs), target


def test_every_install_uses_the_constraints_and_every_named_version_is_pinned() -> None:
    stages, pins = _stages(), _pins()
    text = DOCKERFILE.read_text()
    copied = [rest.split() for word, rest in _instructions(text) if word == "COPY" and "constraints.txt" in rest]
    assert copied and copied[0][0] == "constraints.txt"
    target = copied[0][1]
    installs = _pip_installs(_chain(stages, "cpu")) + _pip_installs(stages["gpu"])
    assert installs
    for install in installs:
        assert f"-c {target}" in install, f"not constrained: {install}"
        names = [t for t in install.split()[install.split().index("install") + 1:]
                 if not t.startswith("-") and t != target and ".whl" not in t and "${wheel}" not in t]
        for name in names:  # installed by name: constraints.txt must pin it
            assert canonicalize_name(Requirement(name.strip('"')).name) in pins, name
    for name, version in re.findall(r"\b([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s\"'\]]*)", text):
        assert pins.get(canonicalize_name(name)) == version, f"{name}=={version} is not constraints.txt's pin"
    match = re.search(r"^ARG PYTHON_VERSION=(\S+)$", text, re.M)
    assert match and SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(match.group(1) + ".0")


def test_the_gpu_extra_and_the_cuda_libraries_are_pinned() -> None:
    pins = _pins()
    gpu = _pip_installs(_stages()["gpu"])
    assert any("[gpu]" in i for i in gpu)
    extra = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["gpu"]]
    cuda: list[Requirement] = []
    for req in extra:
        name = canonicalize_name(req.name)
        assert name in pins and req.specifier.contains(pins[name]), (req, pins.get(name))
        for wanted in req.extras:  # tensorflow[and-cuda]: the CUDA wheels, read from TensorFlow's metadata
            dist = metadata.distribution("tensorflow-cpu")  # the same requirements as tensorflow's
            assert dist.version == pins[name]
            for line in dist.requires or []:
                dep = Requirement(line)
                if dep.marker is not None and dep.marker.evaluate({"extra": wanted}) and "extra" in str(dep.marker):
                    cuda.append(dep)
    assert len(cuda) >= 10
    for dep in cuda:
        name = canonicalize_name(dep.name)
        assert name in pins and dep.specifier.contains(pins[name]), (str(dep), pins.get(name))


@pytest.mark.parametrize("target,pool", [("cpu", pipeline_names.CPU_POOL), ("gpu", pipeline_names.GPU_POOL)])
def test_targets_run_a_prefect_worker_on_their_pool_as_a_non_root_user(target: str, pool: str) -> None:
    stage = _stages()[target]
    users = [i for i, (w, _) in enumerate(stage) if w == "USER"]
    runs = [i for i, (w, _) in enumerate(stage) if w == "RUN"]
    assert users and users[-1] > max(runs), "USER comes after the installs"
    user = stage[users[-1]][1].split(":")[0]
    assert user not in ("root", "0")
    assert any(w == "RUN" and "useradd" in r and user in r for w, r in _chain(_stages(), "runtime"))
    (cmd,) = [r for w, r in stage if w == "CMD"]
    argv = json.loads(cmd)
    assert argv == ["prefect", "worker", "start", "--pool", pool]
    scripts = {ep.name: ep for ep in metadata.entry_points(group="console_scripts")}
    assert scripts["prefect"].dist is not None and canonicalize_name(scripts["prefect"].dist.name) == "prefect"
    assert canonicalize_name("prefect") in _pins()


def test_documented_tags_are_the_images_prefect_yaml_names() -> None:
    header = DOCKERFILE.read_text().split("\nARG ", 1)[0]
    tags = dict(re.findall(r"docker build -f deployments/Dockerfile --target (\w+) -t (\S+) \.", header))
    assert set(tags) == {"cpu", "gpu"}
    version = ".".join(PYPROJECT["project"]["version"].split(".")[:2])
    assert tags["cpu"].endswith(f":{version}") and tags["gpu"].endswith(f":{version}-gpu")
    for tag in tags.values():
        assert f"docker push {tag}" in header
    prefect_yaml = (ROOT / "deployments" / "prefect.yaml").read_text()
    named = set(re.findall(r"registry\.example/kerascut:[\w.-]+", prefect_yaml))
    assert named == set(tags.values())
    gpu_section = prefect_yaml.split("- name: gpu", 1)[1]
    cpu_section = prefect_yaml.split("- name: cpu", 1)[1].split("- name: gpu", 1)[0]
    assert tags["gpu"] in gpu_section and tags["cpu"] in cpu_section
    readme = (ROOT / "README.md").read_text()
    for target, tag in tags.items():
        assert f"--target {target} -t {tag}" in readme and f"docker push {tag}" in readme
