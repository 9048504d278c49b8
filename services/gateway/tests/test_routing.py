"""The routing recipe (docs/gateway.md): an action's queue, set by the project's routing rules,
decides which worker serves the jobs the gateway schedules; a module gets a worker of its own by
routing alone."""

from __future__ import annotations

from switchyard_gateway_testkit import wait_for

ROUTING = """
[tool.switchyard]
default-queue = "default"

[tool.switchyard.routing]
"gtest.echo" = "solo"
"""


def test_a_routed_action_runs_only_on_its_own_workers(
    start_gateway, start_worker, redis_db, tmp_path
):
    (tmp_path / "pyproject.toml").write_text(ROUTING)  # the gateway's and workers' project
    gw = start_gateway()
    listed = {a["name"]: a["queue"] for a in gw.request("GET", "/v1/actions")[2]["actions"]}
    assert listed["gtest.echo"] == "solo"
    assert listed["gtest.aecho"] == "default"
    prefer = {"Prefer": "respond-async"}
    routed = gw.request("POST", "/v1/actions/gtest.echo", {"text": "solo"}, prefer)[2]["url"]
    other = gw.request("POST", "/v1/actions/gtest.aecho", {"text": "shared"}, prefer)[2]["url"]
    assert gw.request("GET", routed)[2]["queue"] == "solo"

    start_worker(redis_db, "default")  # the shared workers, kept off the module's queue
    wait_for(lambda: gw.request("GET", other)[2]["status"] == "finished", what="the shared job")
    assert gw.request("GET", routed)[2]["status"] == "queued"  # nobody serves "solo" yet

    start_worker(redis_db, "solo")  # the module's own worker (a slice in production)
    job = wait_for(
        lambda: (j := gw.request("GET", routed)[2])["status"] == "finished" and j,
        what="the routed job",
    )
    assert job["result"] == {"text": "solo"}
