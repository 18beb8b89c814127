"""The names of kerascut's Prefect flows, deployments and work pools: the one place they live.

Strings only: the core imports nothing of Prefect. ``kerascut.flows`` names its flows and
deployments with these, ``kerascut deploy`` defaults its pools to them, and the core's messages
(``device.check_gpu``) point at them. ``deployments/prefect.yaml`` declares the same names
(tests/test_packaging.py checks that it agrees).

    >>> from kerascut_core.pipeline_names import VALIDATE_DEPLOYMENT, GPU_POOL
    >>> VALIDATE_DEPLOYMENT, GPU_POOL, PREPARE_DEPLOYMENT
    ('validate-backbone/gpu', 'kerascut-gpu', 'prepare-backbone/cpu')
"""

from __future__ import annotations

__all__ = [
    "CPU_POOL",
    "GPU_POOL",
    "PREPARE_DEPLOYMENT",
    "PREPARE_FLOW",
    "REFRESH_DEPLOYMENT",
    "REFRESH_FLOW",
    "VALIDATE_DEPLOYMENT",
    "VALIDATE_FLOW",
    "prepare_limit_name",
]

#: The scheduled parent flow, the per-backbone subflow and the validation flow.
REFRESH_FLOW = "refresh-backbones"
PREPARE_FLOW = "prepare-backbone"
VALIDATE_FLOW = "validate-backbone"

#: The default work pools: CPU workers run the refresh, GPU workers run validation.
CPU_POOL = "kerascut-cpu"
GPU_POOL = "kerascut-gpu"

#: What ``kerascut deploy`` registers, as ``FLOW/DEPLOYMENT``.
REFRESH_DEPLOYMENT = f"{REFRESH_FLOW}/cpu"
PREPARE_DEPLOYMENT = f"{PREPARE_FLOW}/cpu"
VALIDATE_DEPLOYMENT = f"{VALIDATE_FLOW}/gpu"


def prepare_limit_name(deployment: str) -> str:
    """The Prefect global concurrency limit that bounds the remote prepares of ``deployment``.

    One slot per ``prepare-backbone`` run in flight, over every refresh at once (so two
    overlapping refreshes cannot oversubscribe the pool); ``deployments/setup_work_pools.sh``
    creates it. A ``/`` cannot be part of a limit's name (it is a URL path segment).

        >>> prepare_limit_name("prepare-backbone/cpu")
        'kerascut-prepare-backbone-cpu'
    """
    return "kerascut-" + deployment.replace("/", "-")
