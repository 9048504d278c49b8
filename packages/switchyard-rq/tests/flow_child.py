"""A consumer of the flow-control test actions in its own process: python flow_child.py URL."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from switchyard_rq_flowkit import REG

import switchyard_rq

if __name__ == "__main__":
    consumer = switchyard_rq.Consumer(
        switchyard_rq.get_connection(sys.argv[1]), ["default"], registry=REG, concurrency=8
    )
    consumer.run(idle_timeout=0.2)
