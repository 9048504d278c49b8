"""The command line's workflows: ``switchyard schedule --chain A B C`` and ``--workflow FILE``
(TOML or JSON), ``switchyard workflows show | cancel ID``.

A workflow file::

    on_failure = "cancel"          # or "keep" (optional)
    data = {x = 1}                 # the first steps' input (optional)

    [[steps]]                      # one step...
    action = "lj.add"
    data = {add = 2}               # its own data (optional)

    [[steps]]                      # ...or a group of steps run in parallel
    group = [{action = "lj.add"}, {action = "lj.add", data = {add = 5}}]

    [[steps]]                      # after a group: gets their outputs as `results`
    action = "lj.total"
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any, Final

from switchyard_rq._errors import WorkflowError, WorkflowFailedError
from switchyard_rq._producer.workflow import (
    Policy,
    Step,
    Workflow,
    chain,
    group,
    schedule_workflow,
    step,
)
from switchyard_rq._producer.workflow_handle import WorkflowHandle

__all__ = ["load_workflow", "register", "schedule_from_args"]

_TOP: Final = ("steps", "data", "on_failure")


def _fail(where: str, message: str) -> WorkflowError:
    return WorkflowError(f"{where}: {message}")


def _step(where: str, raw: Any) -> Step:
    if not isinstance(raw, dict):
        raise _fail(where, f"a step is a table with 'action' (and 'data'), not {raw!r}")
    unknown = sorted(set(raw) - {"action", "data"})
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r} (a step has 'action' and 'data')")
    if not isinstance(raw.get("action"), str) or not raw["action"]:
        raise _fail(where, "a step needs 'action', the action's name")
    data = raw.get("data", {})
    if not isinstance(data, dict):
        raise _fail(where, f"'data' must be a table (JSON object), not {type(data).__name__}")
    return step(raw["action"], data)


def load_workflow(path: str) -> tuple[Workflow, dict[str, Any] | None, Policy]:
    """A workflow file's workflow, first data and failure policy; WorkflowError (naming the
    file and the entry) when it is not one."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        raise WorkflowError(f"cannot read workflow file {path}: {detail}") from None
    try:
        if file.suffix == ".toml":
            raw: Any = tomllib.loads(text)
        elif file.suffix == ".json":
            raw = json.loads(text)
        else:
            raise WorkflowError(f"workflow file {path}: name it .toml or .json")
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowError(f"workflow file {path} is not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise WorkflowError(
            f"workflow file {path} is not valid JSON: {exc.msg} ({where})"
        ) from None
    if not isinstance(raw, dict):
        raise WorkflowError(f"workflow file {path}: the top level must be a table (an object)")
    unknown = sorted(set(raw) - set(_TOP))
    if unknown:
        raise WorkflowError(
            f"workflow file {path}: unknown key {unknown[0]!r} (known: {', '.join(_TOP)})"
        )
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        raise WorkflowError(f"workflow file {path}: 'steps' must be a non-empty list")
    parts: list[Any] = []
    for n, entry in enumerate(steps, 1):
        where = f"workflow file {path}, steps[{n}]"
        if isinstance(entry, dict) and "group" in entry:
            if set(entry) != {"group"}:
                raise _fail(where, "a group entry has only 'group' (a list of steps)")
            members = entry["group"]
            if not isinstance(members, list) or not members:
                raise _fail(where, "'group' must be a non-empty list of steps")
            parts.append(group([_step(f"{where}.group[{m}]", s) for m, s in enumerate(members, 1)]))
        else:
            parts.append(_step(where, entry))
    data = raw.get("data")
    if data is not None and not isinstance(data, dict):
        raise WorkflowError(f"workflow file {path}: 'data' must be a table (a JSON object)")
    policy = raw.get("on_failure", "cancel")
    if policy not in ("cancel", "keep"):
        raise WorkflowError(
            f"workflow file {path}: on_failure must be 'cancel' or 'keep', not {policy!r}"
        )
    return chain(*parts), data, policy


def schedule_from_args(args: argparse.Namespace) -> int:
    """``schedule --chain`` / ``--workflow``: print the workflow's id, or wait and print its
    result."""
    for option in ("delay", "key", "priority"):
        if getattr(args, option) is not None:
            raise WorkflowError(f"--{option} is for one job: a workflow's steps take neither")
    if args.chain:
        workflow = chain(*args.chain)
        data: dict[str, Any] | None = json.loads(args.data)
        policy: Policy = args.on_failure or "cancel"
    else:
        workflow, data, policy = load_workflow(args.workflow)
        if args.data != "{}":
            data = {**(data or {}), **json.loads(args.data)}
        policy = args.on_failure or policy
    handle = schedule_workflow(workflow, data, on_failure=policy)
    if args.wait is None:
        print(handle.id)
        return 0
    try:
        result = handle.result(timeout=args.wait)
    except WorkflowFailedError as exc:
        import sys

        print(f"error: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, list):
        print(json.dumps([json.loads(r.model_dump_json()) for r in result]))
    else:
        print(result.model_dump_json())
    return 0


def register(subparsers: Any) -> None:
    """Add ``workflows`` to the ``switchyard`` command."""
    workflows = subparsers.add_parser("workflows", help="inspect and cancel workflows")
    commands = workflows.add_subparsers(dest="workflows_command", metavar="SUBCOMMAND")
    show = commands.add_parser("show", help="a workflow's status, each step's, its result")
    show.add_argument("id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_show)
    cancel = commands.add_parser(
        "cancel", help="cancel every step not ended (running ones are asked to stop)"
    )
    cancel.add_argument("id", metavar="ID")
    cancel.set_defaults(func=_cancel)


def _show(args: argparse.Namespace) -> int:
    handle = WorkflowHandle(args.id)
    status = handle.status
    info: dict[str, Any] = {"id": handle.id, "kind": handle.kind, "status": status}
    info["steps"] = [s.to_dict() for s in handle.steps()]
    error = handle.error
    if error is not None:
        info["error"] = error.to_dict()
        info["failed_step"] = handle.failed_step
    if status == "succeeded":
        result = handle.result(timeout=0)
        info["result"] = (
            [json.loads(r.model_dump_json()) for r in result]
            if isinstance(result, list)
            else json.loads(result.model_dump_json())
        )
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"workflow {info['id']}  {info['kind']}  {status}")
    for n, item in enumerate(info["steps"], 1):
        print(f"  {n:>3}. stage {item['stage']}  {item['action']:<28} {item['status']:<9} "
              f"{item['job_id']}")  # fmt: skip
    if error is not None:
        print(f"error: {error} (step {info['failed_step'] or '-'})")
    if "result" in info:
        print(f"result: {json.dumps(info['result'])}")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    handle = WorkflowHandle(args.id)
    if not handle.cancel():
        raise WorkflowError(
            f"workflow {args.id} is {handle.status}: it has ended, there is nothing to cancel"
        )
    print(f"canceled workflow {args.id} (running steps are asked to stop)")
    return 0
