"""A consumer in its own process (for crash tests): python consumer_child.py URL NAME."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from switchyard_rq_testkit import registry

import switchyard_rq

if __name__ == "__main__":
    url, name = sys.argv[1], sys.argv[2]
    consumer = switchyard_rq.Consumer(
        switchyard_rq.get_connection(url), ["default"], registry=registry(), name=name
    )
    print("ready", flush=True)
    consumer.run(idle_timeout=0.2)
