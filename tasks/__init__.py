"""Thin Prefect tasks over ``kerascut_core``, one core function each.

| task | wraps | kind |
| --- | --- | --- |
| ``kerascut.tasks.freshness.check_freshness`` | ``fingerprint`` + ``compute_version`` + store lookups | I/O |
| ``kerascut.tasks.fetch.fetch_source`` | ``fetch.resolve_local`` (download cache) | I/O |
| ``kerascut.tasks.cut.cut_backbone`` | ``load_model`` + ``surgery.cut`` + save | compute |
| ``kerascut.tasks.stage.stage_candidate`` / ``discard_candidate`` / ``read_report`` | ``publish.stage_candidate``, store deletes/reads | I/O |
| ``kerascut.tasks.validate.validate_candidate`` | ``validation.validate`` | compute |
| ``kerascut.tasks.publish.publish_version`` / ``update_latest`` | ``publish.commit_version`` / ``publish.update_latest`` | I/O |

I/O tasks retry with exponential backoff on transient S3 errors only (``kerascut.tasks._common``);
every task has a timeout, logs through ``get_run_logger()``, and passes URIs and small dicts.
"""
