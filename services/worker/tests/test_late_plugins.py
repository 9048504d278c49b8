"""A plugin installed after the worker started is served without a restart; an action no
installed plugin has fails saying it is not installed where the worker runs."""

from __future__ import annotations

import textwrap

import pytest
import switchyard
import switchyard_rq
from pydantic import BaseModel
from switchyard import action
from switchyard.testing import make_registry

LATE = """
from pydantic import BaseModel
from switchyard import action


class Ping(BaseModel):
    n: int


@action("late.ping")
def ping(data: Ping) -> Ping:
    return Ping(n=data.n + 1)
"""


def install(folder, name: str, module: str, source: str, entry_points: str) -> None:
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    dist = folder / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)


class Ping(BaseModel):
    n: int


@pytest.fixture
def late(tmp_path):
    folder = tmp_path / "late"
    folder.mkdir()
    return folder


def test_a_plugin_installed_after_start_is_served(
    start_worker, plugin_dir, redis_db, late, monkeypatch
):
    worker = start_worker(
        "--min", "1", "--max", "1", extra_env={"PYTHONPATH": f"{late}:{plugin_dir}"}
    )
    worker.wait_ready(1, redis_db)
    install(
        late,
        "late-plugin",
        "late_plugin",
        LATE,
        "[switchyard.actions]\nlate.ping = late_plugin:ping\n",
    )
    monkeypatch.syspath_prepend(str(late))
    registry = switchyard.Registry.from_entry_points()
    handle = switchyard_rq.schedule_action("late.ping", {"n": 41}, registry=registry)
    assert handle.result(timeout=20).n == 42  # type: ignore[attr-defined]
    worker.wait_log("late.ping was installed after this worker started")
    assert worker.stop() == 0


def test_an_action_not_installed_where_the_worker_runs_says_so(start_worker, redis_db):
    @action("late.nowhere")
    def nowhere(data: Ping) -> Ping:
        return data

    worker = start_worker("--min", "1", "--max", "1", "--queues", "default")
    worker.wait_ready(1, redis_db)
    handle = switchyard_rq.schedule_action(
        "late.nowhere", {"n": 1}, registry=make_registry(nowhere)
    )
    with pytest.raises(switchyard_rq.JobFailedError) as failed:
        handle.result(timeout=20)
    error = failed.value.error
    assert error.type == "UnknownActionError"
    assert "unknown action 'late.nowhere'" in error.message
    assert "not installed where this worker runs" in error.message
    assert worker.stop() == 0
