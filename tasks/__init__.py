"""Thin Prefect tasks over ``kerascut_core``, one core function each.

| task | wraps | returns |
| --- | --- | --- |
| ``kerascut.tasks.freshness.check_freshness`` | ``publishing.check_freshness`` (fingerprint, ``backbone_version``, store lookups) | ``Freshness`` |
| ``kerascut.tasks.fetch.fetch_source`` | ``publishing.fetch_source`` (``sources.resolve_local``, download cache) | ``FetchedSource`` |
| ``kerascut.tasks.cut.cut_backbone`` | ``publishing.cut_candidate`` (``load_model`` + ``surgery.cut`` + ``surgery.save_candidate``) | ``Candidate`` |
| ``kerascut.tasks.stage.stage_candidate`` / ``read_report`` / ``discard_candidate`` | ``publishing.stage_candidate`` / ``read_report`` / ``discard_candidate`` | ``StagedCandidate`` / report dict / count |
| ``kerascut.tasks.validate.validate_candidate`` | ``publishing.validate_staged`` (``validation.validate``, ``report.json`` beside the candidate) | report dict |
| ``kerascut.tasks.publish.publish_version`` / ``update_latest`` | ``publishing.publish_candidate`` (``build_manifest`` + ``commit_version``) / ``publishing.update_latest`` | ``PublishResult`` / pointer |
| ``kerascut.tasks.retention.apply_retention`` | ``publishing.retain_after_publish`` (never raises: a failure is logged and reported) | ``RetentionReport`` |

A task is a logger, retries and a timeout around one core call: the domain logic is in
``kerascut_core`` (the typed results are pydantic models of ``kerascut_core.publishing``).
I/O tasks retry with exponential backoff on transient S3 errors only (``kerascut.tasks.common``);
every task logs through ``get_run_logger()`` and passes URIs and typed models, never Keras models.
"""
