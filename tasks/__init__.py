"""Thin Prefect tasks over ``kerascut_core``, one core function each.

Each task is named for what it does, never after the core function it wraps (their
signatures differ: a task takes a store URI and JSON-ready values); the Prefect names (what
the UI shows) are in brackets.

| task | wraps | returns |
| --- | --- | --- |
| ``freshness.check_backbone_freshness`` (``check-freshness``) | ``pipeline.freshness.check_freshness`` (fingerprint, ``backbone_version``, store lookups) | ``Freshness`` |
| ``fetch.fetch_backbone_source`` (``fetch-source``) | ``pipeline.candidate.fetch_source`` (``sources.resolve_local``, download cache) | ``FetchedSource`` |
| ``cut.cut_backbone`` (``cut``) | ``pipeline.candidate.cut_candidate`` (``load_model`` + ``surgery.cut`` + ``surgery.save_candidate``) | ``Candidate`` |
| ``stage.stage_candidate_files`` (``stage-candidate``) | ``publishing.staging.stage_candidate`` | ``StagedCandidate`` |
| ``stage.read_validation_report`` (``read-report``) | ``pipeline.reports.read_report`` | report dict or ``None`` |
| ``stage.discard_staged_candidate`` (``discard-candidate``) | ``publishing.staging.discard_candidate`` | count of objects removed |
| ``validate.validate_candidate`` (``validate``) | ``pipeline.reports.validate_staged`` (``validation.validate``, ``report.json`` beside the candidate) | report dict |
| ``publish.publish_version`` (``publish``) | ``pipeline.assemble.publish_candidate`` (``build_manifest`` + ``commit_version``) | ``PublishResult`` |
| ``publish.move_latest_pointer`` (``update-latest``) | ``publishing.holding.advance_latest`` | pointer |
| ``retention.apply_retention`` (``apply-retention``) | ``publishing.retain_after_publish`` (never raises: a failure is logged and reported) | ``RetentionReport`` |

(Module paths above are under ``kerascut.tasks`` and ``kerascut_core``.)

A task is a logger, retries and a timeout around one core call: the domain logic is in
``kerascut_core`` (the typed results are pydantic models of ``kerascut_core.pipeline`` and ``publishing``).
I/O tasks retry with exponential backoff on transient S3 errors only (``kerascut.tasks.common``);
every task logs through ``get_run_logger()`` and passes URIs and typed models, never Keras models.
"""
