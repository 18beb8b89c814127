"""The wheel's packages, under their installed names; everything else is in pyproject.toml.

The repository keeps ``flows/`` and ``tasks/`` at its root, but they install as
``kerascut.flows`` and ``kerascut.tasks`` (and ``src/kerascut/`` as ``kerascut``), so the
wheel's top level is ``kerascut`` and ``kerascut_core`` only. ``packages.find`` in
pyproject.toml cannot install a folder under another name, and a static ``packages`` list
would miss the next subpackage, so the list is found here, under each folder of ``ROOTS``.
pyproject.toml explains the layout; tests/test_packaging.py checks the built wheel.
"""

from __future__ import annotations

from setuptools import find_namespace_packages, setup

#: Installed package -> the folder it is built from.
ROOTS = {
    "kerascut": "src/kerascut",
    "kerascut.flows": "flows",
    "kerascut.tasks": "tasks",
    "kerascut_core": "kerascut_core",
}


def packages() -> list[str]:
    """Every package and data folder (such as ``kerascut_core/schemas``) under ``ROOTS``."""
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        subpackages = find_namespace_packages(folder, exclude=["__pycache__", "*.__pycache__"])
        found += [f"{name}.{sub}" for sub in subpackages]
    return found


setup(packages=packages(), package_dir=dict(ROOTS))
