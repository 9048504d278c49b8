"""A consumer in its own process (for crash tests): python consumer_child.py URL NAME [QUEUES
[CONCURRENCY]] (QUEUES: comma-separated, default "default"; CONCURRENCY: default 1)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from switchyard_rq_testkit import registry

import switchyard_rq

if __name__ == "__main__":
    url, name = sys.argv[1], sys.argv[2]
    queues = sys.argv[3].split(",") if len(sys.argv) > 3 else ["default"]
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    consumer = switchyard_rq.Consumer(
        switchyard_rq.get_connection(url),
        queues,
        registry=registry(),
        name=name,
        concurrency=concurrency,
    )
    print("ready", flush=True)
    consumer.run(idle_timeout=0.2)
