"""The docs' diagrams: where people read about the two paths, the worker's processes and yard's
pipeline, a Mermaid diagram shows them, written so that Mermaid can parse it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```mermaid\n(.*?)^```$", re.MULTILINE | re.DOTALL)
#: words Mermaid's flowchart grammar reads as keywords: a node named so breaks the diagram
RESERVED = {"graph", "flowchart", "subgraph", "end", "style", "class", "classDef", "click",
            "call", "href", "linkStyle", "direction", "default"}  # fmt: skip
NODE = re.compile(r"(?:^|&|-->|-\.->|--|<-->)\s*([A-Za-z_][\w-]*)\s*[\[(\"{]", re.MULTILINE)


def diagrams(doc: str) -> list[str]:
    return BLOCK.findall((ROOT / doc).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("doc", "shows"),
    [
        ("README.md", ["call_action", "schedule_action", "Redis queue", "handle.result()"]),
        ("docs/transport.md", ["sequenceDiagram", "processing list", "handle.result"]),
        ("docs/workers.md", ["forkserver", "resource tracker", "lifeline", "pool process"]),
        ("docs/yard.md", ["merge base", "affected", "yard build", "yard test", "cache"]),
        ("docs/workflows.md", ["STEP", "deferred", "processing list", "next stage", "PUBLISH"]),
        ("docs/gateway.md", ["switchyard-gateway", "respond-async", "sliced worker", "queue"]),
        ("docs/schedules.md", ["LEASE", "INCR fence", "FIRE", "stale", "keyed job"]),
    ],
)
def test_the_docs_draw_how_things_travel(doc, shows):
    drawn = "\n".join(diagrams(doc))
    assert [word for word in shows if word not in drawn] == []


def test_no_flowchart_node_is_named_like_a_mermaid_keyword():
    for doc in ["README.md", *(p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/*.md"))]:
        for diagram in diagrams(doc):
            if diagram.lstrip().startswith(("flowchart", "graph")):
                named = set(NODE.findall(diagram.split("\n", 1)[1]))
                assert named & RESERVED == set(), f"{doc}: nodes named {named & RESERVED}"
