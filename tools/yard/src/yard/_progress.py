"""How ``yard build`` and ``yard test`` show progress: live on a terminal, plain lines
otherwise, then a table."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol, TextIO

if TYPE_CHECKING:
    from ._build import BuildReport

_LABEL: Final = {"built": "built", "cache": "from cache", "skipped": "skipped", "failed": "FAILED"}
_SPIN: Final = "|/-\\"


class Shown(Protocol):
    """What a reporter reads of a member's result."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def seconds(self) -> float: ...

    @property
    def reason(self) -> str: ...


class Words(NamedTuple):
    """How a command names what it does: ``yard build``, ``building``, the final states."""

    command: str
    running: str
    """The state (and the word) of a member at work."""
    labels: Mapping[str, str]
    """Final states and how they read; those with a time are in ``timed``."""
    timed: tuple[str, ...]


BUILD: Final = Words("yard build", "building", _LABEL, ("built", "failed"))


class Quiet:
    """Says nothing (``--json``)."""

    def begin(self, names: list[str]) -> None:
        pass

    def update(self, result: Shown) -> None:
        pass

    def end(self) -> None:
        pass


class Plain:
    """One line per event, for logs and pipes."""

    def __init__(self, stream: TextIO, words: Words = BUILD) -> None:
        self.stream = stream
        self.words = words
        self.t0 = time.perf_counter()

    def begin(self, names: list[str]) -> None:
        self.t0 = time.perf_counter()
        print(f"{self.words.command}: {len(names)} member(s)", file=self.stream, flush=True)

    def update(self, result: Shown) -> None:
        at = time.perf_counter() - self.t0
        labels = self.words.labels
        if result.state == self.words.running:
            text = f"{self.words.running} {result.name}"
        elif result.state in labels:
            text = f"{labels[result.state]} {result.name}"
            if result.state in self.words.timed:
                text += f" ({result.seconds:.1f} s)"
            if result.reason:
                text += f": {result.reason}"
        else:
            return
        print(f"[{at:6.1f}s] {text}", file=self.stream, flush=True)

    def end(self) -> None:
        pass


class Live:
    """A redrawn block on a terminal: finished members scroll above, running ones below."""

    def __init__(self, stream: TextIO, words: Words = BUILD) -> None:
        self.stream = stream
        self.words = words
        self.lock = threading.Lock()
        self.running: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.total = 0
        self.drawn = 0
        self.tick = 0
        self.t0 = time.perf_counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="yard-progress", daemon=True)

    def begin(self, names: list[str]) -> None:
        self.total = len(names)
        self.t0 = time.perf_counter()
        self.thread.start()

    def update(self, result: Shown) -> None:
        labels = self.words.labels
        with self.lock:
            if result.state == self.words.running:
                self.running[result.name] = time.perf_counter()
                self._draw()
                return
            self.running.pop(result.name, None)
            if result.state not in labels:
                return
            self.counts[result.state] = self.counts.get(result.state, 0) + 1
            line = f"  {labels[result.state]:<10} {result.name}"
            if result.state in self.words.timed:
                line += f"  {result.seconds:.1f} s"
            if result.reason:
                line += f"  ({result.reason})"
            self._draw(line)

    def _loop(self) -> None:
        while not self.stop.wait(0.1):
            with self.lock:
                self.tick += 1
                self._draw()

    def _draw(self, finished: str | None = None) -> None:
        out: list[str] = []
        if self.drawn:
            out.append(f"\x1b[{self.drawn}F\x1b[J")
        if finished is not None:
            out.append(finished + "\n")
        now = time.perf_counter()
        done = sum(self.counts.values())
        labels = self.words.labels
        parts = ", ".join(f"{labels[s]} {n}" for s, n in sorted(self.counts.items()))
        head = f"{_SPIN[self.tick % 4]} {done}/{self.total} done"
        head += f" ({parts})" if parts else ""
        out.append(f"{head}  {now - self.t0:.1f} s\n")
        for name, since in sorted(self.running.items(), key=lambda kv: kv[1]):
            out.append(f"    {self.words.running} {name}  {now - since:.1f} s\n")
        self.drawn = 1 + len(self.running)
        self.stream.write("".join(out))
        self.stream.flush()

    def end(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        with self.lock:
            if self.drawn:
                self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
                self.stream.flush()
            self.drawn = 0


def reporter(stream: TextIO, *, quiet: bool, words: Words = BUILD) -> Quiet | Plain | Live:
    """The right reporter for ``stream``: live on a terminal, plain otherwise."""
    if quiet:
        return Quiet()
    if stream.isatty() and "dumb" not in (_term() or ""):
        return Live(stream, words)
    return Plain(stream, words)


def _term() -> str | None:
    import os

    return os.environ.get("TERM")


def table(report: BuildReport) -> str:
    """The final table: each member's result and time, then the totals."""
    rows = [("member", "version", "result", "time")]
    for r in report.results.values():
        label = _LABEL.get(r.state, r.state)
        if not r.target:
            label += " (for manifest)"
        seconds = f"{r.seconds:.1f} s" if r.state in ("built", "failed") else "-"
        rows.append((r.name, r.version or "-", label, seconds))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    s = report.summary()
    lines.append(
        f"built {s['built']}, from cache {s['from_cache']}, skipped {s['skipped']}, "
        f"failed {s['failed']} in {s['seconds']:.2f} s"
    )
    return "\n".join(lines)


def failures(report: BuildReport, stream: TextIO | None = None) -> None:
    """Each failed member with its build log's tail, on stderr."""
    stream = stream or sys.stderr
    for r in report.results.values():
        if r.state != "failed":
            continue
        print(f"yard: error: {r.name} failed to build ({r.reason}); end of its log:", file=stream)
        for line in r.log_tail:
            print(f"  | {line}", file=stream)
        blocked = [
            x.name for x in report.results.values() if x.reason.startswith(f"needs {r.name},")
        ]
        if blocked:
            print(f"yard: skipped because they need {r.name}: {', '.join(blocked)}", file=stream)
