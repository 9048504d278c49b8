"""Switchyard's Redis transport: schedule actions as RQ jobs, run them with a lean, reliable
consumer, on pooled connections (or an embedded Redis when none is configured)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._consumer.consumer import Consumer
from ._consumer.recovery import QueueStats, queue_stats, recover_orphans
from ._consumer.source import JobSource
from ._dispatch import dispatch
from ._errors import (
    ActionTimeoutError,
    JobError,
    JobFailedError,
    JobNotFoundError,
    NotReplicatedError,
    PayloadTooLargeError,
    RedisUnavailableError,
    ResultTimeoutError,
    TransportError,
    WorkflowError,
    WorkflowFailedError,
    WorkflowNotFoundError,
)
from ._observe import JobObserver, JobReport
from ._ops.dbstats import publish_db_stats
from ._ops.flow import FlowState, flow_stats
from ._ops.jobs import describe_job, failed_jobs
from ._ops.stats import JobStats, StatsSnapshot, publish_pool_stats, read_snapshot
from ._ops.view import build_view as stats_view
from ._producer.handle import CachedHandle, JobHandle, Progress
from ._producer.results import agather, gather
from ._producer.schedule import Call, route, schedule_action, schedule_many
from ._producer.workflow import Step, Workflow, chain, chord, group, schedule_workflow, step
from ._producer.workflow_handle import StepState, WorkflowHandle
from ._serializer import JSONSerializer
from ._wire.connection import (
    RedisCheck,
    RedisConfigError,
    check_redis,
    check_url,
    get_connection,
    redact_url,
    redis_origin,
    redis_url,
)
from ._wire.edge import BreakerGate, breaker_enter, breaker_exit, client_rate_wait

if TYPE_CHECKING:
    from ._scheduler.loop import Scheduler
    from ._scheduler.state import (
        ScheduleState,
        pause_schedule,
        schedule_states,
        trigger_schedule,
    )

__all__ = [
    "ActionTimeoutError",
    "BreakerGate",
    "CachedHandle",
    "Call",
    "Consumer",
    "FlowState",
    "JSONSerializer",
    "JobError",
    "JobFailedError",
    "JobHandle",
    "JobNotFoundError",
    "JobObserver",
    "JobReport",
    "JobSource",
    "JobStats",
    "NotReplicatedError",
    "PayloadTooLargeError",
    "Progress",
    "QueueStats",
    "RedisCheck",
    "RedisConfigError",
    "RedisUnavailableError",
    "ResultTimeoutError",
    "ScheduleState",
    "Scheduler",
    "StatsSnapshot",
    "Step",
    "StepState",
    "TransportError",
    "Workflow",
    "WorkflowError",
    "WorkflowFailedError",
    "WorkflowHandle",
    "WorkflowNotFoundError",
    "agather",
    "breaker_enter",
    "breaker_exit",
    "chain",
    "check_redis",
    "check_url",
    "chord",
    "client_rate_wait",
    "describe_job",
    "dispatch",
    "failed_jobs",
    "flow_stats",
    "gather",
    "get_connection",
    "group",
    "pause_schedule",
    "publish_db_stats",
    "publish_pool_stats",
    "queue_stats",
    "read_snapshot",
    "recover_orphans",
    "redact_url",
    "redis_origin",
    "redis_url",
    "route",
    "schedule_action",
    "schedule_many",
    "schedule_states",
    "schedule_workflow",
    "stats_view",
    "step",
    "trigger_schedule",
]

# the scheduler's names load on first use: a pool process never needs them
_LAZY = {
    "Scheduler": "_scheduler.loop",
    "ScheduleState": "_scheduler.state",
    "pause_schedule": "_scheduler.state",
    "schedule_states": "_scheduler.state",
    "trigger_schedule": "_scheduler.state",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'switchyard_rq' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"switchyard_rq.{module}"), name)
    globals()[name] = value
    return value
