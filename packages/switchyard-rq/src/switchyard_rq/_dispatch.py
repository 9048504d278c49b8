"""The one job function. Switchyard's Consumer never calls it through an import path; it is here
so that a job is a valid RQ job, and so that a stock RQ worker can run Switchyard jobs."""

from __future__ import annotations

import logging

from switchyard import default_registry, run_action

__all__ = ["dispatch"]


def dispatch(action_name: str, payload: str) -> str:
    """Run the registered action ``action_name`` on ``payload`` (its input as JSON text) through
    switchyard's ``run_action``; return the output model as JSON text."""
    from switchyard import Context

    job_id: str | None = None
    queue: str | None = None
    attempt = 1
    try:
        from rq import get_current_job

        job = get_current_job()
    except ImportError:  # pragma: no cover - rq is a dependency
        job = None
    if job is not None:
        job_id, queue = job.id, job.origin
        attempt = (job.number_of_retries or 0) + 1
    action = default_registry().resolve(action_name)
    context = Context(
        action=action_name,
        call_id=job_id or "local",
        attempt=attempt,
        logger=logging.getLogger(f"switchyard.action.{action_name}"),
        job_id=job_id,
        queue=queue,
    )
    return run_action(action, payload, context=context).model_dump_json()
