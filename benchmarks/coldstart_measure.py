"""What the cold-start benchmark runs, and how it times it (see coldstart.py).

Every measured thing is a whole Python process, ``python -c CODE`` started and waited for,
timed from spawn to exit. The variants run interleaved: each round runs every variant once, in
an order rotated by one each round, so machine noise lands on all of them alike. A first round
is discarded (warm-up: page cache, the stevedore entry-point cache). Before timing, each
variant runs once more with a check appended (``Variant.check``) that prints facts about the
process (which plugin modules got imported, how many plugins or actions were loaded), so the
benchmark proves that the lazy variants import no plugin and the eager ones load all of them.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

# The lazy variants also time, in process, what they do after `import switchyard` (registry,
# first call) and print it: the same cost without the noise of starting a process.
PHASE_START: Final = "import time as _ct\n_ct0 = _ct.perf_counter()\n"
PHASE_END: Final = "print('coldstart-phase', (_ct.perf_counter() - _ct0) * 1000.0)\n"
PHASE_TAG: Final = "coldstart-phase "

# Modules `import switchyard` must not pull in (DESIGN.md: no rq/redis, no CLI or rendering lib).
BANNED: Final = ("rq", "redis", "argparse", "rich", "click", "typer", "jinja2")


@dataclass(frozen=True, slots=True)
class Variant:
    """One measured program: ``code`` is timed; ``code + check`` runs once and prints JSON."""

    key: str
    label: str
    code: str
    check: str
    optional: bool = False  # a variant whose check fails is dropped (with a note), not fatal


@dataclass(frozen=True, slots=True)
class Target:
    """One target (issue 2's, or a lazy-versus-eager comparison), evaluated on this run."""

    name: str
    rule: str
    measured: str  # on the medians of wall time
    ok: bool
    cpu_measured: str = ""  # the same comparison on the medians of CPU time
    cpu_ok: bool | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A variant bound to an interpreter: ``key`` is ``<variant key>@<column>``."""

    key: str
    python: Path
    variant: Variant
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)


def facts(prefixes: Sequence[str], **extra: str) -> str:
    """Python source that prints the check facts as one JSON line on stdout.

    ``prefixes`` are the top-level module names that count as plugins; ``extra`` maps a fact
    name to a Python expression evaluated in the measured program's namespace.
    """
    pairs = "".join(f", {json.dumps(k)}: ({v})" for k, v in extra.items())
    return (
        "\nimport json as _cj, sys as _cs\n"
        f"_cp = {tuple(prefixes)!r}\n"
        "_cb = " + repr(BANNED) + "\n"
        "print(_cj.dumps({"
        '"plugins": sorted(m for m in _cs.modules if m.split(".")[0] in _cp'
        ' or m.split(".")[0].startswith(tuple(p for p in _cp if p.endswith("_")))), '
        '"banned": sorted(m for m in _cs.modules if m.split(".")[0] in _cb'
        ' or (m.startswith("switchyard.") and "cli" in m)), '
        '"modules": len(_cs.modules)' + pairs + "}))\n"
    )


def floors(plugin_prefixes: Sequence[str]) -> list[Variant]:
    """The three floors every comparison is made against."""
    return [
        Variant("floor.pass", 'python -c "pass"', "pass", facts(plugin_prefixes)),
        Variant(
            "floor.import_switchyard",
            "import switchyard",
            "import switchyard",
            facts(plugin_prefixes),
        ),
        Variant(
            "floor.pydantic_model",
            "import pydantic + define one model",
            "from pydantic import BaseModel\n\nclass M(BaseModel):\n    x: int\n",
            facts(plugin_prefixes),
        ),
    ]


def registry_variants(
    *,
    manifest: Path | None,
    action: str | None,
    payload: object,
    plugin_prefixes: Sequence[str],
    result_expr: str = "type(_out).__name__",
) -> list[Variant]:
    """The lazy switchyard variants: a ready registry (metadata, manifest), then one call."""
    sources = [("metadata", "switchyard.Registry.from_entry_points()", False)]
    if manifest is not None:
        sources += [
            ("manifest", f"switchyard.Registry.from_manifest({str(manifest)!r})", False),
            (
                "manifest_nocheck",
                f"switchyard.Registry.from_manifest({str(manifest)!r}, check_fresh=False)",
                True,
            ),
        ]
    out: list[Variant] = []
    for source, build, optional in sources:
        ready = f"import switchyard\n{PHASE_START}reg = {build}\nreg.names()\n"
        label = {
            "metadata": "ready registry, from metadata",
            "manifest": "ready registry, from manifest",
            "manifest_nocheck": "ready registry, from manifest (check_fresh=False)",
        }[source]
        ready += PHASE_END
        out.append(
            Variant(
                f"registry.{source}",
                label,
                ready,
                facts(plugin_prefixes, actions="len(reg)"),
                optional=optional,
            )
        )
        if action is not None and source != "manifest_nocheck":
            call = ready.replace(PHASE_END, "") + (
                f"_out = switchyard.call_action({action!r}, {json.dumps(payload)!r}, "
                f"registry=reg)\n{PHASE_END}"
            )
            out.append(
                Variant(
                    f"call.{source}",
                    f"{label} + first call",
                    call,
                    facts(plugin_prefixes, actions="len(reg)", result=result_expr),
                )
            )
    return out


def eager_variants(group: str, plugin_prefixes: Sequence[str]) -> list[Variant]:
    """The baselines: load every plugin, as importlib.metadata, pluggy and stevedore do."""
    return [
        Variant(
            "eager.importlib",
            "importlib.metadata: ep.load() for every entry point",
            "from importlib.metadata import entry_points\n"
            f"_loaded = [ep.load() for ep in entry_points(group={group!r})]\n",
            facts(plugin_prefixes, loaded="len(_loaded)"),
        ),
        Variant(
            "eager.pluggy",
            f'pluggy load_setuptools_entrypoints("{group}")',
            "import pluggy\n"
            'pm = pluggy.PluginManager("switchyard")\n'
            f"pm.load_setuptools_entrypoints({group!r})\n",
            facts(plugin_prefixes, loaded="len(pm.get_plugins())"),
        ),
        Variant(
            "eager.stevedore",
            f'stevedore ExtensionManager("{group}")',
            "from stevedore import ExtensionManager\n"
            f"mgr = ExtensionManager(namespace={group!r}, invoke_on_load=False)\n",
            facts(plugin_prefixes, loaded="len(mgr.extensions)"),
        ),
    ]


def check(job: Job) -> dict[str, Any]:
    """Run ``job`` once with its check appended; return the facts it printed."""
    proc = subprocess.run(
        [str(job.python), "-c", job.variant.code + job.variant.check],
        cwd=job.cwd,
        env=dict(job.env),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        raise RuntimeError(f"{job.key}: the check run failed ({proc.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_checks(
    jobs: Sequence[Job], verify: Callable[[Job, dict[str, Any]], None], notes: list[str]
) -> tuple[list[Job], dict[str, dict[str, Any]]]:
    """Run each job's check once and ``verify`` its facts; drop optional jobs whose check fails
    (with a note), raise for the others."""
    kept, found = [], {}
    for job in jobs:
        try:
            got = check(job)
        except RuntimeError as exc:
            if not job.variant.optional:
                raise
            notes.append(f"dropped {job.key}: {str(exc).splitlines()[-1]}")
            continue
        verify(job, got)
        found[job.key] = got
        kept.append(job)
    return kept, found


def run_once(job: Job) -> tuple[float, float, float | None]:
    """One whole process, spawn to exit: (wall time, its CPU time user+sys, the in-process phase
    it printed if any), milliseconds.

    The CPU time is the child's own (RUSAGE_CHILDREN grows by exactly it, since one child runs
    at a time); on a shared, loaded machine it moves far less than the wall time.
    """
    argv = [str(job.python), "-c", job.variant.code]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=job.cwd,
        env=dict(job.env),
        capture_output=True,
        check=False,
    )
    elapsed = (time.perf_counter() - start) * 1000.0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{job.key} failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000.0
    phase = None
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith(PHASE_TAG):
            phase = float(line[len(PHASE_TAG) :])
    return elapsed, cpu, phase


@dataclass(frozen=True, slots=True)
class Samples:
    """Per job key: wall and CPU milliseconds of each timed run, in run order."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]
    phase: dict[str, list[float]]  # in process, after `import switchyard` (lazy variants only)

    def medians(self, kind: str) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in getattr(self, kind).items() if v}


def measure(
    jobs: Sequence[Job],
    *,
    rounds: int,
    warmup: int = 1,
    progress: Callable[[str], None] | None = None,
) -> Samples:
    """Interleaved runs: ``warmup + rounds`` rounds, each running every job once."""
    samples = Samples(
        {job.key: [] for job in jobs}, {job.key: [] for job in jobs}, {job.key: [] for job in jobs}
    )
    for r in range(warmup + rounds):
        shift = r % len(jobs)
        started = time.perf_counter()
        for job in [*jobs[shift:], *jobs[:shift]]:
            wall, cpu, phase = run_once(job)
            if r >= warmup:
                samples.wall[job.key].append(wall)
                samples.cpu[job.key].append(cpu)
                if phase is not None:
                    samples.phase[job.key].append(phase)
        if progress is not None:
            kind = "warm-up" if r < warmup else f"{r - warmup + 1}/{rounds}"
            progress(f"round {kind}: {time.perf_counter() - started:.1f} s")
    return samples


def log(message: str) -> None:
    print(f"[coldstart] {message}", file=sys.stderr, flush=True)


def merge_targets(wall: Sequence[Target], cpu: Sequence[Target]) -> list[Target]:
    """The wall-time targets, each with the same comparison made on CPU time beside it."""
    by_name = {t.name: t for t in cpu}
    out = []
    for t in wall:
        c = by_name.get(t.name)
        out.append(
            Target(
                t.name,
                t.rule,
                t.measured,
                t.ok,
                c.measured if c is not None else "",
                c.ok if c is not None else None,
            )
        )
    return out
