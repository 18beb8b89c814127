"""kerascut: the Prefect side of the distribution, next to the Prefect-free ``kerascut_core``.

- ``kerascut.flows``: the flows (``refresh-backbones``, ``prepare-backbone``, ``validate-backbone``),
  ``kerascut deploy``'s deployments, and the ``run``/``deploy`` CLI commands;
- ``kerascut.tasks``: the thin Prefect tasks over ``kerascut_core`` that the flows compose.

In the repository they are the top-level ``flows/`` and ``tasks/`` folders; setup.py maps
them here, so a project with its own ``flows`` and ``tasks`` packages can install kerascut.
This file lives in ``src/kerascut/`` (never on ``sys.path``) so that no ``./kerascut/`` folder
at the repository root shadows the installed mapping. Importing it imports nothing else.
"""

from __future__ import annotations

__all__: list[str] = []
