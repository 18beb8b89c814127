"""kerascut's Prefect flows; they read like the path of a backbone.

- ``kerascut.flows.refresh_backbones.refresh_backbones``: the scheduled parent flow (CPU pool).
- ``kerascut.flows.prepare_backbone.prepare_backbone``: fetch, cut, stage, validate, publish one backbone.
- ``kerascut.flows.validate_backbone.validate_backbone``: validation, in-process or on the GPU pool.
- ``kerascut.flows.deployments.deploy_config``: what ``kerascut deploy`` registers.
"""
