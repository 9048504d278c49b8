"""How long the whole ``yard affected --json`` process takes, beside ``uv workspace list``.

For generated workspaces of 100, 1,000 and 3,000 members (see ``yard_workspace.py``: layered
internal edges, ~300 third-party packages, a uv.lock in uv's own format, all in a git repo),
each figure is the median wall time of 10 runs of the whole process (interpreter start, git,
reading the workspace, printing JSON), runs of yard and uv interleaved:

- ``uv workspace list``: the baseline; uv reads the same member pyproject files;
- yard, a source change: one file edited in a library member (working-tree mode: commits,
  staged, unstaged and untracked files, as ``yard affected --base main`` runs by default);
- yard, a lock-only change: ``uv lock --upgrade-package certifi`` (reached only transitively);
- each yard case warm (the parse cache from an earlier run) and cold (an empty cache folder,
  as on a fresh CI machine without a cached ``~/.cache/yard``).

The workspaces are locked by real ``uv lock`` runs (see ``yard_workspace.py``); generating them
takes a minute or two at 3,000 members and needs the package index (or uv's cache).

Run: ``uv run --all-packages python benchmarks/yard_affected.py [--sizes 100,1000,3000]
[--write-docs]``. ``--write-docs`` replaces the "## yard affected" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from yard_workspace import UPGRADED, generate, upgraded_lock

RUNS = 10
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def yard_command() -> list[str]:
    script = Path(sys.executable).with_name("yard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "yard"]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system, the process and its children) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, result.stdout


def measure(root: Path, env: dict[str, str], cold_base: Path, runs: int) -> dict[str, float]:
    """Medians for one workspace: uv, yard source change (warm, cold), yard lock (warm, cold),
    wall time and CPU time; plus how many members each change affected."""
    yard = [*yard_command(), "affected", "--base", "HEAD", "--json"]
    uv = ["uv", "workspace", "list"]
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    result: dict[str, float] = {}

    def run(case: str, cmd: list[str], run_env: dict[str, str]) -> str:
        elapsed, used, out = timed(cmd, root, run_env)
        wall.setdefault(case, []).append(elapsed)
        cpu.setdefault(case, []).append(used)
        return out

    def scenario(case: str) -> None:
        run("warmup", yard, env)  # bytecode and cache in place
        for i in range(runs):
            run("uv", uv, env)
            out = run(case, yard, env)
            cold = {**env, "YARD_CACHE_DIR": str(cold_base / f"{case}-{i}")}
            run(f"{case}_cold", yard, cold)
        result[f"{case}_affected"] = len(_affected(out))
        subprocess.run(["git", "checkout", "-q", "--", "."], cwd=root, check=True)

    # a source change in a library member (second layer: it has dependents)
    names = sorted(p.name for p in (root / "packages").iterdir())
    library = names[len(names) // 10]
    changed = root / "packages" / library / "src" / library / "core.py"
    changed.write_text(changed.read_text() + "\n# edited\n")
    scenario("src")
    # a lock-only change: one third-party package upgraded by `uv lock --upgrade-package`
    result["lock_bytes"] = (root / "uv.lock").stat().st_size
    (root / "uv.lock").write_bytes(upgraded_lock(root).read_bytes())
    scenario("lock")
    for case in ("uv", "src", "src_cold", "lock", "lock_cold"):
        result[case] = statistics.median(wall[case])
        result[f"{case}_cpu"] = statistics.median(cpu[case])
    return result


def _affected(out: str) -> list[str]:
    import json

    affected: list[str] = json.loads(out)["affected"]
    return affected


def edges_per_member(root: Path) -> float:
    env = {**os.environ, "YARD_NO_CACHE": "1"}
    out = subprocess.run(
        [*yard_command(), "graph", "--format", "json", "--root", str(root)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    import json

    members = json.loads(out)["members"]
    return sum(len(m["edges"]) for m in members) / len(members)


def table(rows: dict[int, dict[str, float]], density: dict[int, float]) -> str:
    lines = [
        "| members | edges/member | uv.lock | `uv workspace list` | yard, source change: "
        "warm / cold cache | warm vs uv | affected | yard, lock-only change: warm / cold "
        "| affected |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, r in rows.items():
        lines.append(
            f"| {n:,} | {density[n]:.1f} | {r['lock_bytes'] / 1e6:.1f} MB "
            f"| {r['uv']:.3f} s (CPU {r['uv_cpu']:.3f}) "
            f"| {r['src']:.3f} s (CPU {r['src_cpu']:.3f}) / {r['src_cold']:.3f} s "
            f"| {r['src'] / r['uv']:.1f}x | {r['src_affected']:.0f} "
            f"| {r['lock']:.3f} s (CPU {r['lock_cpu']:.3f}) / {r['lock_cold']:.3f} s "
            f"| {r['lock_affected']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,3000")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--keep", type=Path, help="generate the workspaces here and keep them")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per median (default 10)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV")
    }
    base = args.keep or Path(tempfile.mkdtemp(prefix="yard-bench-"))
    env["YARD_CACHE_DIR"] = str(base / "cache")
    rows: dict[int, dict[str, float]] = {}
    density: dict[int, float] = {}
    uv_version = subprocess.run(["uv", "--version"], capture_output=True, text=True).stdout.strip()
    loads: list[float] = []
    try:
        for n in sizes:
            root = base / f"ws{n}"
            if not root.exists():
                generate(root, n)
            density[n] = edges_per_member(root)
            loads.append(os.getloadavg()[0])
            rows[n] = measure(root, env, base / "cold", args.runs)
            loads.append(os.getloadavg()[0])
            print(f"{n} members: {rows[n]}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    result = table(rows, density)
    small, large = sizes[0], sizes[-1]
    growth = rows[large]["src"] / rows[small]["src"]
    cold_growth = rows[large]["src_cold"] / rows[small]["src_cold"]
    summary = (
        f"From {small:,} to {large:,} members ({large / small:.0f}x) the warm source-change run "
        f"grew {growth:.1f}x, the cold one {cold_growth:.1f}x. The machine's load average "
        f"(2 cores) was {min(loads):.1f}-{max(loads):.1f} while it ran."
    )
    if 1000 in rows:
        r = rows[1000]
        summary += (
            "\n\nAgainst the targets at 1,000 members: source change "
            f"{r['src']:.2f} s (target 0.3 s: {'met' if r['src'] <= 0.3 else 'missed'}), "
            f"{r['src'] / r['uv']:.1f}x `uv workspace list` (target 4x: "
            f"{'met' if r['src'] <= 4 * r['uv'] else 'missed'}); lock-only change "
            f"{r['lock']:.2f} s (target 0.8 s: {'met' if r['lock'] <= 0.8 else 'missed'})."
        )
    print(result)
    print(summary)
    if args.write_docs:
        write_docs(result, summary, uv_version, args.runs)


def write_docs(result: str, summary: str, uv_version: str, runs: int) -> None:
    section = f"""## yard affected

The whole `yard affected --json` process (interpreter start, git, reading the workspace,
the uv.lock analysis, printing), median of {runs} runs, interleaved with the baseline
`uv workspace list` on the same generated workspace ({uv_version}, Python
{platform.python_version()}, a shared 2-core VM). Workspaces from `benchmarks/yard_workspace.py`:
layered members (each depends on 1-4 lower ones, some through extras and dev groups), each using
2-6 of 40 popular PyPI packages, locked by a real `uv lock` (fixed `--exclude-newer` date). The
source change edits one file of a library member in the working tree; the lock-only change is
`uv lock --upgrade-package {UPGRADED}` with a later date ({UPGRADED} is reached only
transitively, through requests and httpx). "warm" means yard's parse cache (in
`~/.cache/yard`, keyed by file content) holds the pyproject files from an earlier run; "cold"
is an empty cache, as on a fresh CI machine.

{result}

{summary}

Rerun: `uv run --all-packages python benchmarks/yard_affected.py --write-docs`
"""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("## yard affected")
    end = text.find("\n## ", start + 1)
    DOCS.write_text(text[:start] + section + (text[end:] if end != -1 else ""), encoding="utf-8")


if __name__ == "__main__":
    main()
