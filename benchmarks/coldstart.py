"""Cold start: how long until a process has a ready action registry, and its first call.

Rerun it with::

    uv run --all-packages python benchmarks/coldstart.py            # 12 rounds, N = 10, 50, 200
    uv run --all-packages python benchmarks/coldstart.py --quick    # 3 rounds, a smoke test
    uv run --all-packages python benchmarks/coldstart.py --workspace  # the real modules
    uv run --all-packages python benchmarks/coldstart.py --only floor,registry  # light

The synthetic mode builds one throwaway venv per plugin count N (coldstart_env.py: ~200 real
PyPI distributions, switchyard from this workspace, N generated plugin wheels), then times whole
processes, median of interleaved runs (coldstart_measure.py), and checks issue 2's targets side
by side in the same run. ``--workspace`` times worker-style boot with the workspace's own
modules installed: lazy (metadata, manifest) against importing every module
(coldstart_workspace.py).

Exit status: 0 when every target holds, 1 when one fails, 2 on a usage or setup error.
Type-check with ``MYPYPATH=benchmarks uv run --all-packages mypy benchmarks/coldstart*.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

import coldstart_env as cenv
import coldstart_measure as cm
import coldstart_workspace as cw

DEFAULT_WORKDIR: Final = cenv.ROOT / ".bench" / "coldstart"
NS: Final = (10, 50, 200)
GROUP: Final = "switchyard.actions"
KINDS: Final = frozenset({"floor", "registry", "call", "eager", "boot"})  # variant key prefixes


def _workdir(path: Path) -> Path:
    """Create ``path`` and keep it out of git: a ``.gitignore`` of ``*`` inside it."""
    path.mkdir(parents=True, exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# throwaway benchmark venvs (benchmarks/coldstart.py)\n*\n")
    return path


def synthetic_jobs(env: cenv.BenchEnv, workdir: Path) -> list[cm.Job]:
    prefixes = (cenv.PLUGIN_PREFIX,)
    variants = [
        *cm.floors(prefixes),
        *cm.registry_variants(
            manifest=env.manifest,
            action=env.action,
            payload=cenv.CALL_PAYLOAD,
            plugin_prefixes=prefixes,
            result_expr="str(_out.total)",
        ),
        *cm.eager_variants(GROUP, prefixes),
    ]
    run_env = cenv.clean_env({"XDG_CACHE_HOME": str(workdir / "cache")})
    return [cm.Job(f"{v.key}@{env.n}", env.python, v, workdir, run_env) for v in variants]


def verify_synthetic(env: cenv.BenchEnv, job: cm.Job, got: dict[str, Any]) -> None:
    """Fail loudly when a variant did not do what it claims (so its timing would lie)."""
    key, actions = job.variant.key, env.n * cenv.ACTIONS_PER_PLUGIN
    module = cenv.plugin_module(env.n // 2)
    problems = []
    if key.startswith("registry.") and got["plugins"]:
        problems.append(f"imported plugin modules {got['plugins'][:4]}")
    if key.startswith(("registry.", "call.")) and got.get("actions") != actions:
        problems.append(f"registry has {got.get('actions')} actions, expected {actions}")
    if key.startswith("call."):
        if got["plugins"] != [module, f"{module}.actions"]:
            problems.append(f"expected only {module} imported, got {got['plugins'][:4]}")
        if got.get("result") != cenv.CALL_TOTAL:
            problems.append(f"call returned total {got.get('result')}, expected {cenv.CALL_TOTAL}")
    if key.startswith("eager.") and got.get("loaded") != actions:
        problems.append(f"loaded {got.get('loaded')} entry points, expected {actions}")
    if key.startswith("floor.") and got["plugins"]:
        problems.append(f"imported plugin modules {got['plugins'][:4]}")
    if problems:
        raise RuntimeError(f"{job.key}: " + "; ".join(problems))


def _ms(value: float) -> str:
    return f"{value:.1f}"


def synthetic_targets(
    med: dict[str, float], checks: dict[str, dict[str, Any]], ns: Sequence[int]
) -> list[cm.Target]:
    lo, hi = min(ns), max(ns)
    out: list[cm.Target] = []

    def m(key: str, n: int) -> float | None:
        return med.get(f"{key}@{n}")

    for src in ("metadata", "manifest"):
        a, b = m(f"registry.{src}", hi), m(f"registry.{src}", lo)
        if a is not None and b is not None:
            out.append(
                cm.Target(
                    f"ready registry ({src}) costs nothing per plugin",
                    f"N={hi} within 5 ms of N={lo}",
                    f"{_ms(a)} vs {_ms(b)} ms: {a - b:+.1f} ms",
                    a - b <= 5.0,
                )
            )
    for src, limit in (("manifest", 10.0), ("metadata", 40.0)):
        for n in ns:
            a, base = m(f"registry.{src}", n), m("floor.import_switchyard", n)
            if a is not None and base is not None:
                out.append(
                    cm.Target(
                        f"ready registry ({src}) over import switchyard, N={n}",
                        f"<= {limit:.0f} ms",
                        f"{_ms(a)} - {_ms(base)} = {a - base:+.1f} ms",
                        a - base <= limit,
                    )
                )
    floor = m("floor.pydantic_model", hi)
    for src in ("metadata", "manifest"):
        call = m(f"call.{src}", hi)
        if call is None or floor is None:
            continue
        out.append(
            cm.Target(
                f"first call ({src}) at N={hi} vs pydantic + one model",
                "<= 1.25x",
                f"{_ms(call)} / {_ms(floor)} = {call / floor:.2f}x",
                call <= 1.25 * floor,
            )
        )
        for lib in ("pluggy", "stevedore"):
            eager = m(f"eager.{lib}", hi)
            if eager is not None:
                out.append(
                    cm.Target(
                        f"first call ({src}) at N={hi} vs {lib} loading",
                        ">= 5x faster",
                        f"{_ms(eager)} / {_ms(call)} = {eager / call:.1f}x",
                        eager >= 5.0 * call,
                    )
                )
    imports = [got for k, got in checks.items() if k.startswith("floor.import_switchyard@")]
    banned = sorted({m for got in imports for m in got["banned"]})
    if not imports:
        return out
    out.append(
        cm.Target(
            "import switchyard imports no rq, redis, argparse, rich, CLI",
            "none in sys.modules",
            ", ".join(banned) if banned else "none",
            not banned,
        )
    )
    return out


def phase_targets(med: dict[str, float], ns: Sequence[str]) -> list[cm.Target]:
    """The registry targets on the in-process cost of what follows ``import switchyard``.

    ``ns`` are column names (plugin counts, or "ws"); the first and last are compared.
    """
    out: list[cm.Target] = []
    lo, hi = ns[0], ns[-1]
    for src in ("metadata", "manifest"):
        a, b = med.get(f"registry.{src}@{hi}"), med.get(f"registry.{src}@{lo}")
        if a is not None and b is not None and lo != hi:
            out.append(
                cm.Target(
                    f"ready registry ({src}) costs nothing per plugin",
                    f"N={hi} within 5 ms of N={lo}",
                    f"{_ms(a)} vs {_ms(b)} ms: {a - b:+.1f} ms",
                    a - b <= 5.0,
                )
            )
    for src, limit in (("manifest", 10.0), ("metadata", 40.0)):
        for n in ns:
            a = med.get(f"registry.{src}@{n}")
            if a is not None:
                where = f", N={n}" if n.isdigit() else ""
                out.append(
                    cm.Target(
                        f"ready registry ({src}) after import switchyard{where}",
                        f"<= {limit:.0f} ms",
                        f"{_ms(a)} ms",
                        a <= limit,
                    )
                )
    return out


def table(
    rows: Sequence[tuple[str, str]], columns: Sequence[tuple[str, str]], med: dict[str, float]
) -> str:
    """A Markdown table: one row per variant, one column per venv, medians in ms."""
    head = "| variant | " + " | ".join(title for _, title in columns) + " |"
    lines = [head, "| --- |" + " ---: |" * len(columns)]
    for key, label in rows:
        cells = [med.get(f"{key}@{col}") for col, _ in columns]
        if all(c is None for c in cells):
            continue
        text = [f"{c:.1f}" if c is not None else "" for c in cells]
        lines.append(f"| {label} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def targets_text(targets: Sequence[cm.Target], *, measured: str = "wall time") -> str:
    """A Markdown table of the targets: the verdict on ``measured`` and, when the targets carry
    one, the same comparison on CPU time."""

    def verdict(ok: bool | None) -> str:
        return "" if ok is None else "PASS" if ok else "FAIL"

    cpu = any(t.cpu_ok is not None for t in targets)
    lines = [
        f"| target | rule | {measured} | |" + (" CPU time | |" if cpu else ""),
        "| --- | --- | --- | --- |" + (" --- | --- |" if cpu else ""),
    ]
    lines += [
        f"| {t.name} | {t.rule} | {t.measured} | {verdict(t.ok)} |"
        + (f" {t.cpu_measured} | {verdict(t.cpu_ok)} |" if cpu else "")
        for t in targets
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="3 rounds instead of 12 (smoke test)")
    p.add_argument("--rounds", type=int, help="timed rounds (default 12, --quick 3)")
    p.add_argument("--ns", default=",".join(map(str, NS)), help="plugin counts (synthetic)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where venvs live")
    p.add_argument("--rebuild", action="store_true", help="recreate the venvs")
    p.add_argument("--json", type=Path, metavar="PATH", help="write raw results here")
    p.add_argument("--workspace", action="store_true", help="measure the real workspace modules")
    p.add_argument(
        "--only",
        metavar="KINDS",
        help="time only these kinds of variant, e.g. floor,registry (kinds: floor, registry,"
        " call, eager; --workspace also boot)",
    )
    p.add_argument("--call", metavar="NAME", help="--workspace: the action to call first")
    p.add_argument("--data", metavar="JSON", help="--workspace: its input")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None) -> int:
    args = parse_args(argv)
    rounds = args.rounds if args.rounds is not None else 3 if args.quick else 12
    if rounds < 1:
        print("error: --rounds must be at least 1", file=sys.stderr)
        return 2
    workdir = _workdir(args.workdir.resolve())
    only = frozenset(args.only.split(",")) if args.only else None
    if only is not None and not only <= KINDS:
        unknown = ", ".join(sorted(only - KINDS))
        print(
            f"error: --only: unknown kind {unknown} (kinds: {', '.join(sorted(KINDS))})",
            file=sys.stderr,
        )
        return 2
    notes: list[str] = []
    started = dt.datetime.now(dt.UTC)
    if args.workspace:
        result = cw.run(
            workdir, rounds=rounds, call=args.call, data=args.data, notes=notes, only=only
        )
        rows, columns, samples = result.rows, result.columns, result.samples
        checks, setup, evaluate = result.checks, result.setup, cw.targets
    else:
        try:
            ns = sorted({int(x) for x in args.ns.split(",")})
        except ValueError:
            print(f"error: --ns takes numbers like 10,50,200, not {args.ns!r}", file=sys.stderr)
            return 2
        builder = cenv.Builder(workdir)
        envs = [builder.build(n, rebuild=args.rebuild) for n in ns]
        jobs: list[cm.Job] = []
        for env in envs:
            jobs += synthetic_jobs(env, workdir)
        jobs = [j for j in jobs if only is None or j.variant.key.split(".")[0] in only]
        by_n = {e.n: e for e in envs}
        cm.log(f"checking {len(jobs)} variants once (no timing)")
        jobs, checks = cm.run_checks(
            jobs,
            lambda job, got: verify_synthetic(by_n[int(job.key.split("@")[1])], job, got),
            notes,
        )
        cm.log(f"timing: {rounds} rounds + 1 warm-up, {len(jobs)} processes a round")
        samples = cm.measure(jobs, rounds=rounds, progress=cm.log)
        seen: dict[str, str] = {}
        for job in jobs:
            seen.setdefault(job.variant.key, job.variant.label)
        rows = list(seen.items())
        columns = [(str(e.n), f"N={e.n}") for e in envs]
        found = checks

        def evaluate(med: dict[str, float]) -> list[cm.Target]:
            return synthetic_targets(med, found, ns)

        setup = {
            "venvs": [
                {**asdict(e), "venv": str(e.venv), "manifest": str(e.manifest)} for e in envs
            ],
        }
        e = envs[-1]
        notes.insert(
            0,
            f"each venv: {e.ordinary} ordinary PyPI distributions (pinned list) + switchyard,"
            f" pydantic, pluggy, stevedore + N plugins ({cenv.ACTIONS_PER_PLUGIN} actions each);"
            f" N={e.n}: {e.distributions} distributions in all",
        )
        notes.append(
            "first call: the action pNNN.quote_order of the middle plugin (N//2): imports that"
            " one plugin, validates a 2-line order, prices it (Decimal), returns a model"
        )
    wall, cpu = samples.medians("wall"), samples.medians("cpu")
    phase = samples.medians("phase")
    targets = cm.merge_targets(evaluate(wall), evaluate(cpu))
    in_process = phase_targets(phase, [col for col, _ in columns])
    command = "uv run --all-packages python benchmarks/coldstart.py " + shlex.join(
        list(argv if argv is not None else sys.argv[1:])
    )
    print(f"\n# cold start, {started:%Y-%m-%d %H:%M} UTC, {rounds} interleaved rounds")
    print(f"# {command.strip()}")
    print(f"# Python {platform.python_version()}, {platform.machine()}, {platform.node()}\n")
    print("Wall time, spawn to exit (median ms):\n")
    print(table(rows, columns, wall))
    print("\nCPU time of the process, user + sys (median ms):\n")
    print(table(rows, columns, cpu))
    print("\nIn process, after `import switchyard` (median ms):\n")
    print(table(rows, columns, phase))
    print("\nTargets on whole processes (wall time; the same comparison on CPU time):\n")
    print(targets_text(targets))
    print("\nThe registry targets on the in-process cost after `import switchyard`:\n")
    print(targets_text(in_process, measured="in process"))
    for note in notes:
        print(f"\nnote: {note}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": started.isoformat(timespec="seconds"),
                    "command": command.strip(),
                    "python": sys.version,
                    "platform": platform.platform(),
                    "rounds": rounds,
                    "medians_ms": {"wall": wall, "cpu": cpu, "in_process": phase},
                    "samples_ms": {
                        "wall": samples.wall,
                        "cpu": samples.cpu,
                        "in_process": samples.phase,
                    },
                    "checks": checks,
                    "targets": [asdict(t) for t in targets],
                    "targets_in_process": [asdict(t) for t in in_process],
                    "notes": notes,
                    "setup": setup,
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if all(t.ok for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
