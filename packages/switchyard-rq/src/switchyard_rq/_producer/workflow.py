"""Workflows: ``chain`` (each step's output feeds the next), ``group`` (steps in parallel) and
``chord`` (a group, then a callback that gets the list of their outputs), scheduled in one
atomic write; the scripts that store a step's outcome move the workflow on (see
_wire/workflow.py), so a workflow survives any worker's crash.

A workflow is a list of stages, each a list of steps: a chain's step is a stage of one, a group
a stage of several. A step's input is its own data (a dict), merged after the previous stage's
output: that output itself after a single step, ``{"results": [...]}`` (in the group's order)
after a group. Everything that can be checked is checked before anything reaches Redis: every
action is known, the first steps' input is valid, and each step's input model can take the
previous stage's output model (required fields present, types that agree, no field its model
forbids).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, final

import redis
from switchyard import Registry, SwitchyardError, default_registry

from switchyard_rq._config import current_config
from switchyard_rq._errors import PayloadTooLargeError, WorkflowError
from switchyard_rq._producer.schedule import route
from switchyard_rq._producer.workflow_handle import WorkflowHandle
from switchyard_rq._settings import TransportSettings
from switchyard_rq._tracing import current_carrier
from switchyard_rq._wire import keys
from switchyard_rq._wire.cluster import is_cluster, wire_queue
from switchyard_rq._wire.connection import (
    cluster_configured,
    get_connection,
    redis_errors,
    redis_url,
)
from switchyard_rq._wire.flow import directives
from switchyard_rq._wire.jobs import job_shape, utcformat

if TYPE_CHECKING:
    from pydantic import BaseModel
    from switchyard import Action

__all__ = ["Step", "Workflow", "chain", "chord", "group", "schedule_workflow", "step"]

Policy = Literal["cancel", "keep"]
_POLICIES: Final = ("cancel", "keep")
_MAX_STEPS: Final = 100_000


@final
@dataclass(frozen=True, slots=True)
class Step:
    """One job of a workflow: an action and its own data (merged after the previous stage's
    output; the whole input of a first step)."""

    action: str
    data: Mapping[str, Any] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class Stage:
    steps: tuple[Step, ...]
    group: bool  # its output is the list of its steps' outputs


@final
@dataclass(frozen=True, slots=True)
class Workflow:
    """A chain of stages (build it with :func:`chain`, :func:`group`, :func:`chord`); immutable.
    :meth:`schedule` validates it and writes it to Redis."""

    stages: tuple[Stage, ...]

    @property
    def kind(self) -> str:
        if len(self.stages) == 1:
            return "group" if self.stages[0].group else "chain"
        if len(self.stages) == 2 and self.stages[0].group and not self.stages[1].group:
            return "chord"
        return "chain"

    def validate(self, *, registry: Registry | None = None, data: Any = None) -> None:
        """Raise :class:`WorkflowError` (one line, naming the step) if it cannot run."""
        _plan(self, registry if registry is not None else default_registry(), data)

    def schedule(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        on_failure: Policy = "cancel",
        registry: Registry | None = None,
        connection: redis.Redis | None = None,
    ) -> WorkflowHandle:
        """See :func:`schedule_workflow`."""
        return schedule_workflow(
            self, data, on_failure=on_failure, registry=registry, connection=connection
        )


StepLike = Step | str | tuple[str, Mapping[str, Any]]


def step(action: str, data: Mapping[str, Any] | None = None) -> Step:
    """A workflow step: ``action`` with its own ``data`` (a dict)."""
    if not isinstance(action, str) or not action:
        raise WorkflowError(f"a step's action must be a name, not {action!r}")
    if data is not None and not isinstance(data, Mapping):
        raise WorkflowError(
            f"a step's data must be a dict, not {type(data).__name__}", action=action
        )
    return Step(action, dict(data or {}))


def _as_step(item: Any) -> Step:
    if isinstance(item, Step):
        return item
    if isinstance(item, str):
        return step(item)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return step(item[0], item[1])
    raise WorkflowError(f"a step is an action name, (name, data) or step(name, data), not {item!r}")


def chain(*items: StepLike | Workflow) -> Workflow:
    """Steps (or groups, chords, chains) one after another: each one's output feeds the next."""
    stages: list[Stage] = []
    for item in items:
        if isinstance(item, Workflow):
            stages.extend(item.stages)
        else:
            stages.append(Stage((_as_step(item),), group=False))
    if not stages:
        raise WorkflowError("a chain needs at least one step")
    return Workflow(tuple(stages))


def group(*items: StepLike | Iterable[StepLike]) -> Workflow:
    """Steps that run in parallel; the group's output is the list of their outputs, in order.
    ``group(a, b)`` or ``group([a, b])``."""
    if len(items) == 1 and not isinstance(items[0], str | tuple | Step | Workflow):
        items = tuple(items[0])
    steps: list[Step] = []
    for item in items:
        if isinstance(item, Workflow):
            raise WorkflowError(
                "a group's members are single steps (a chain or group inside a group is not "
                "supported: chain a group after it instead)"
            )
        steps.append(_as_step(item))
    if not steps:
        raise WorkflowError("a group needs at least one step")
    return Workflow((Stage(tuple(steps), group=True),))


def chord(header: Workflow | Iterable[StepLike], callback: StepLike) -> Workflow:
    """A group, then ``callback``, whose input gets the group's outputs as ``results``."""
    found = header if isinstance(header, Workflow) else group(list(header))
    if len(found.stages) != 1 or not found.stages[0].group:
        raise WorkflowError("a chord's header is a group: chord(group(a, b), callback)")
    return Workflow((*found.stages, Stage((_as_step(callback),), group=False)))


# -- checking --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Planned:
    step: Step
    action: Action
    number: int  # 1-based, in stage order
    payload: str | None  # first stage: the validated input's JSON
    fixed: str | None  # later stages: its own data as JSON


def _resolve(registry: Registry, item: Step, number: int) -> Action:
    try:
        return registry.resolve(item.action)
    except SwitchyardError as exc:
        raise WorkflowError(exc.message, step=number, action=item.action) from None


def _plan(workflow: Workflow, registry: Registry, data: Any) -> list[list[_Planned]]:
    if data is not None and not isinstance(data, Mapping):
        raise WorkflowError(f"the workflow's data must be a dict, not {type(data).__name__}")
    total = sum(len(s.steps) for s in workflow.stages)
    if total > _MAX_STEPS:
        raise WorkflowError(f"{total} steps: at most {_MAX_STEPS} in one workflow")
    planned: list[list[_Planned]] = []
    number = 0
    for index, stage in enumerate(workflow.stages):
        row: list[_Planned] = []
        for item in stage.steps:
            number += 1
            action = _resolve(registry, item, number)
            if index == 0:
                try:
                    model = action.validate_input({**(data or {}), **item.data})
                except SwitchyardError as exc:
                    raise WorkflowError(exc.message, step=number, action=action.name) from None
                row.append(_Planned(item, action, number, model.model_dump_json(), None))
                continue
            policy = action.policy
            if policy.concurrency_key is not None or policy.rate_key is not None:
                raise WorkflowError(
                    "its limiter is keyed on a field of its input, which is not known before "
                    "the previous step ends: only a first step may have one",
                    step=number,
                    action=action.name,
                )
            previous = workflow.stages[index - 1]
            problem = _feeds(planned[index - 1], previous.group, action, item.data)
            if problem:
                raise WorkflowError(problem, step=number, action=action.name)
            fixed = json.dumps(dict(item.data), separators=(",", ":")) if item.data else None
            row.append(_Planned(item, action, number, None, fixed))
        planned.append(row)
    return planned


def _kind(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    return kind if isinstance(kind, str) else None


def _fields(model: type[BaseModel]) -> tuple[dict[str, Any], set[str], bool] | None:
    """A model's properties (JSON schema), required fields and whether it forbids others; None
    when its schema is not a plain object (a root model, a union)."""
    try:
        schema = model.model_json_schema()
    except Exception:  # a type pydantic cannot describe: nothing to check
        return None
    if schema.get("type") != "object" or "properties" not in schema:
        return None
    forbids = model.model_config.get("extra") == "forbid"
    return schema["properties"], set(schema.get("required", ())), forbids


def _feeds(
    before: list[_Planned], was_group: bool, action: Action, own: Mapping[str, Any]
) -> str | None:
    """Why ``action``'s input cannot take the previous stage's output (and its own data), or
    None when it can (or the models say too little to tell)."""
    target = _fields(action.input_model)
    if target is None:
        return None
    props, required, forbids = target
    if forbids:
        extra = sorted(set(own) - set(props))
        if extra:
            return f"its own data has field {extra[0]!r}, which its input model forbids"
    if was_group:
        if "results" not in props:
            return (
                "it follows a group, so its input gets the group's outputs as a list named "
                "'results', but its input model has no field 'results'"
            )
        if _kind(props["results"]) not in (None, "array"):
            return "its input field 'results' must be a list: it gets the group's outputs"
        return None
    source = before[0]
    if own and _fields(source.action.output_model) is None:
        return (
            f"its own data must be merged with the output of step {source.number} "
            f"({source.action.name}), which is not an object"
        )
    found = _fields(source.action.output_model)
    if found is None:
        return None
    out_props = found[0]  # every field of an output model is in its JSON
    for name in sorted(required - set(own)):
        if name not in out_props:
            return (
                f"its input needs field {name!r}, which the output of step {source.number} "
                f"({source.action.name}) does not have (and its own data does not give)"
            )
    for name, schema in sorted(out_props.items()):
        if name in own:
            continue  # its own data wins
        if name not in props:
            if forbids:
                return (
                    f"the output of step {source.number} ({source.action.name}) has field "
                    f"{name!r}, which its input model forbids"
                )
            continue
        have, want = _kind(schema), _kind(props[name])
        if have and want and have != want and not (have == "integer" and want == "number"):
            return (
                f"field {name!r} is {have!r} in the output of step {source.number} "
                f"({source.action.name}) but {want!r} in its input"
            )
    return None


# -- scheduling ------------------------------------------------------------------------------


def schedule_workflow(
    workflow: Workflow,
    data: Mapping[str, Any] | None = None,
    *,
    on_failure: Policy = "cancel",
    registry: Registry | None = None,
    connection: redis.Redis | None = None,
) -> WorkflowHandle:
    """Validate ``workflow`` here, then write every step's job and the workflow's state in one
    atomic transaction: the first stage's jobs are queued, the others wait for the stage before
    them. ``data`` is merged under the first stage's own data. ``on_failure``: when a step
    fails (after its retries), ``cancel`` the other steps of its stage (queued ones canceled,
    running ones asked to stop) or ``keep`` them running; the later stages never run either way.
    Bad workflows raise :class:`WorkflowError` and nothing reaches Redis."""
    if on_failure not in _POLICIES:
        raise WorkflowError(f"on_failure must be 'cancel' or 'keep', not {on_failure!r}")
    reg = registry if registry is not None else default_registry()
    planned = _plan(workflow, reg, data)
    config = current_config()
    settings = TransportSettings.from_env()
    cluster = is_cluster(connection) if connection is not None else cluster_configured(config)
    if cluster:
        raise WorkflowError(
            "workflows need a single Redis server or Sentinel (on a cluster a step's outcome "
            "and the next step may live in different slots)"
        )
    client = connection if connection is not None else get_connection(redis_url(config))
    now = time.time()
    stamp = utcformat(datetime.fromtimestamp(now, UTC))
    trace = current_carrier()
    workflow_id = os.urandom(16).hex()
    stage_ids: list[list[str]] = [[os.urandom(16).hex() for _ in row] for row in planned]
    with redis_errors(client), client.pipeline(transaction=True) as pipe:
        queued: dict[tuple[str, str], list[str]] = {}
        for index, row in enumerate(planned):
            for item, job_id in zip(row, stage_ids[index], strict=True):
                queue, priority = _write_step(
                    pipe, item, job_id, workflow_id, index, stamp, trace, settings, config
                )
                if index == 0:
                    queued.setdefault((queue, priority), []).append(job_id)
                    if settings.events:
                        pipe.xadd(
                            keys.events(queue),
                            {"event": "scheduled", "job": job_id, "action": item.action.name,
                             "workflow": workflow_id},
                            maxlen=keys.EVENTS_MAXLEN,
                            approximate=True,
                        )  # fmt: skip
        state: dict[Any, Any] = {
            "status": "running",
            "kind": workflow.kind,
            "n": len(planned),
            "stage": 0,
            "left": len(planned[0]),
            "policy": on_failure,
            "ttl": _keep(settings),
            "created_at": stamp,
        }
        for index, ids in enumerate(stage_ids):
            state[f"s{index}"] = json.dumps(ids, separators=(",", ":"))
            if workflow.stages[index].group:
                state[f"g{index}"] = "1"
        pipe.hset(keys.workflow(workflow_id), mapping=state)
        for (queue, priority), ids in queued.items():
            pipe.sadd(keys.QUEUES_SET, keys.queue(queue))
            pipe.rpush(keys.queue_list(queue, priority), *ids)
            pipe.rpush(keys.wake(queue), *["1"] * min(len(ids), 256))
        pipe.execute()
    return WorkflowHandle(workflow_id, connection=client, registry=reg)


def _keep(settings: TransportSettings) -> int:
    """How long a workflow's state is kept after it ends (0: forever)."""
    if -1 in (settings.result_ttl, settings.failure_ttl):
        return 0
    return max(settings.result_ttl, settings.failure_ttl)


def _write_step(
    pipe: Any,
    item: _Planned,
    job_id: str,
    workflow_id: str,
    stage: int,
    stamp: str,
    trace: str | None,
    settings: TransportSettings,
    config: Any,
) -> tuple[str, str]:
    action = item.action
    policy = action.policy
    queue = wire_queue(route(action.name, policy.queue, config=config), False)
    shape = job_shape(
        action=action.name, queue=queue, scheduled=False, policy=policy, settings=settings
    )
    payload = item.payload if item.payload is not None else (item.fixed or "{}")
    size = len(payload.encode())
    if size > config.max_payload_bytes:
        raise PayloadTooLargeError(action.name, size, config.max_payload_bytes)
    flow = None
    if policy.flow_controlled:
        model = action.validate_input(json.loads(item.payload)) if item.payload else None
        flow = directives(action.name, policy, model)
    mapping = shape.mapping(payload, stamp, trace, flow)
    mapping["sy_wf"] = workflow_id
    if stage > 0:
        mapping["status"] = "deferred"
        if item.fixed is not None:
            mapping["sy_fixed"] = item.fixed
    if policy.result_ttl == 0:  # the next step (or the workflow's result) needs it
        mapping["result_ttl"] = settings.result_ttl
    pipe.hset(keys.job(job_id), mapping=mapping)
    return queue, shape.priority
