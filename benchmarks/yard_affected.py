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

``--cycles`` generates the workspaces with the cycles real ones have (a core package whose
``all`` extra lists plugins that depend on it, test groups using test-utils members).
``--baseline-src DIR`` runs another yard (its ``src`` folder, e.g. from ``git archive`` of an
older commit) interleaved with this one, as an A/B. ``--real DIR,...`` times real workspaces
(git repositories): ``yard affected --base HEAD~20`` (working tree) and
``--base HEAD~20 --head HEAD`` (both ends read from git objects), warm and cold.

Every figure is printed as ``median (min-max)`` over the runs; the load average is printed
before and after each workspace.

Run: ``uv run --all-packages python benchmarks/yard_affected.py [--sizes 100,1000,3000]
[--cycles] [--baseline-src DIR] [--real DIR,...] [--write-docs]``. ``--write-docs`` replaces
the "## yard affected" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
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


def yard_command(src: Path | None = None) -> list[str]:
    """This yard's command, or (``src``) a yard run from another source folder."""
    if src is not None:
        return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(src)!r}); "
                "from yard._cli import main; sys.exit(main())"]  # fmt: skip
    script = Path(sys.executable).with_name("yard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "yard"]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system, the process and its children) of one run; a
    failed run gives NaN times and its error as the output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        return math.nan, math.nan, result.stderr.strip()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, result.stdout


class Runs:
    """Wall and CPU times of each case, and the last output of each."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.out: dict[str, str] = {}

    def run(self, case: str, cmd: list[str], root: Path, env: dict[str, str]) -> str:
        elapsed, used, out = timed(cmd, root, env)
        self.wall.setdefault(case, []).append(elapsed)
        self.cpu.setdefault(case, []).append(used)
        self.out[case] = out
        return out

    def median(self, case: str) -> float:
        return statistics.median(self.wall[case])

    def text(self, case: str) -> str:
        """``median (min-max)`` of the wall times, with the median CPU; or the error."""
        wall = self.wall[case]
        if any(math.isnan(w) for w in wall):
            return f"fails: {self.out[case].splitlines()[-1][:60]}"
        cpu = statistics.median(self.cpu[case])
        return f"{statistics.median(wall):.3f} s ({min(wall):.3f}-{max(wall):.3f}, CPU {cpu:.3f})"


def _cold(env: dict[str, str], folder: Path) -> dict[str, str]:
    """The environment of a cold run: an empty cache folder (emptied if it exists)."""
    shutil.rmtree(folder, ignore_errors=True)
    return {**env, "YARD_CACHE_DIR": str(folder)}


def measure(
    root: Path, env: dict[str, str], cold_base: Path, runs: int, baseline: Path | None
) -> tuple[Runs, dict[str, float]]:
    """For one workspace: uv, yard source change (warm, cold), yard lock (warm, cold), each
    interleaved, and the baseline yard beside this one when given; how many each affected."""
    uv = ["uv", "workspace", "list"]
    found = Runs()
    counts: dict[str, float] = {}

    def scenario(case: str, *extra: str) -> None:
        yard = [*yard_command(), "affected", "--base", "HEAD", "--json", *extra]
        old = [*yard_command(baseline), "affected", "--base", "HEAD", "--json", *extra]
        old = old if baseline else []
        found.run("warmup", yard, root, env)  # bytecode and cache in place
        if old:
            found.run("warmup", old, root, {**env, "YARD_CACHE_DIR": str(cold_base / "old")})
        for i in range(runs):
            found.run("uv", uv, root, env)
            found.run(case, yard, root, env)
            if old:
                found.run(
                    f"{case}_old", old, root, {**env, "YARD_CACHE_DIR": str(cold_base / "old")}
                )
            found.run(f"{case}_cold", yard, root, _cold(env, cold_base / f"{case}-{i}"))
        counts[f"{case}_affected"] = len(_affected(found.out[case]))
        subprocess.run(["git", "checkout", "-q", "--", "."], cwd=root, check=True)

    # a source change in a library member (second layer: it has dependents)
    names = sorted(p.name for p in (root / "packages").iterdir())
    library = names[len(names) // 10]
    changed = root / "packages" / library / "src" / library / "core.py"
    changed.write_text(changed.read_text() + "\n# edited\n")
    scenario("src")
    # the same member's pyproject.toml edited: the workspace at the merge base is read too
    pyproject = root / "packages" / library / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# edited\n")
    scenario("pyproject")
    # no change, as of a commit: the workspace is read from git objects (--head)
    scenario("head", "--head", "HEAD")
    # a lock-only change: one third-party package upgraded by `uv lock --upgrade-package`
    counts["lock_bytes"] = (root / "uv.lock").stat().st_size
    (root / "uv.lock").write_bytes(upgraded_lock(root).read_bytes())
    scenario("lock")
    return found, counts


def measure_real(root: Path, env: dict[str, str], cold_base: Path, runs: int) -> Runs:
    """A real workspace: the last 20 commits, from the working tree and as two commits."""
    yard = yard_command()
    cases = {
        "tree": [*yard, "affected", "--base", "HEAD~20", "--json"],
        "head": [*yard, "affected", "--base", "HEAD~20", "--head", "HEAD", "--json"],
    }
    uv = ["uv", "workspace", "list"]
    found = Runs()
    for cmd in cases.values():
        found.run("warmup", cmd, root, env)
    for i in range(runs):
        found.run("uv", uv, root, env)
        for case, cmd in cases.items():
            found.run(case, cmd, root, env)
            cold = _cold(env, cold_base / f"{root.name}-{case}-{i}")
            found.run(f"{case}_cold", cmd, root, cold)
    return found


def _affected(out: str) -> list[str]:
    import json

    affected: list[str] = json.loads(out)["affected"]
    return affected


def edges_per_member(root: Path) -> tuple[float, int]:
    """Edges per member, and the size of the largest dependency cycle."""
    env = {**os.environ, "YARD_NO_CACHE": "1"}
    out = subprocess.run(
        [*yard_command(), "graph", "--format", "json", "--root", str(root)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    import json

    data = json.loads(out)
    members = data["members"]
    largest = max((len(c) for c in data.get("cycles", [])), default=0)
    return sum(len(m["edges"]) for m in members) / len(members), largest


def more_table(rows: dict[int, tuple[Runs, dict[str, float]]]) -> str:
    """The pyproject change and the --head run, beside the baseline yard when measured."""
    old = any("src_old" in r.wall for r, _ in rows.values())
    head = (
        "| members | pyproject change: warm | cold | affected "
        + ("| the baseline yard, warm " if old else "")
        + "| `--head HEAD` (git objects): warm | cold "
        + ("| the baseline yard (working tree), warm " if old else "")
        + "|"
    )
    lines = [head, "|" + " ---: |" * (head.count("|") - 1)]
    for n, (r, c) in rows.items():
        cells = [f"{n:,}", r.text("pyproject"), r.text("pyproject_cold")]
        cells.append(f"{c['pyproject_affected']:.0f}")
        cells += [r.text("pyproject_old")] if old else []
        cells += [r.text("head"), r.text("head_cold")]
        cells += [r.text("head_old")] if old else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(
    rows: dict[int, tuple[Runs, dict[str, float]]], shape: dict[int, tuple[float, int]]
) -> str:
    old = any("src_old" in r.wall for r, _ in rows.values())
    head = (
        "| members | edges/member | largest cycle | uv.lock | `uv workspace list` "
        "| yard, source change: warm | cold | affected "
        + ("| the baseline yard, warm " if old else "")
        + "| yard, lock-only change: warm | cold | affected "
        + ("| the baseline yard, warm " if old else "")
        + "|"
    )
    lines = [head, "|" + " ---: |" * (head.count("|") - 1)]
    for n, (r, c) in rows.items():
        cells = [
            f"{n:,}",
            f"{shape[n][0]:.1f}",
            f"{shape[n][1]}",
            f"{c['lock_bytes'] / 1e6:.1f} MB",
            r.text("uv"),
            r.text("src"),
            r.text("src_cold"),
            f"{c['src_affected']:.0f}",
        ]
        if old:
            cells.append(r.text("src_old"))
        cells += [r.text("lock"), r.text("lock_cold"), f"{c['lock_affected']:.0f}"]
        if old:
            cells.append(r.text("lock_old"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def real_table(rows: dict[str, tuple[int, Runs]]) -> str:
    lines = [
        "| workspace | members | `uv workspace list` | yard affected --base HEAD~20: warm "
        "| cold | --head HEAD: warm | cold |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (count, r) in rows.items():
        cells = [name, str(count), r.text("uv"), r.text("tree"), r.text("tree_cold")]
        cells += [r.text("head"), r.text("head_cold")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,3000")
    parser.add_argument("--cycles", action="store_true", help="workspaces with cycles")
    parser.add_argument("--baseline-src", type=Path, help="another yard's src folder (A/B)")
    parser.add_argument(
        "--real", default="", help="real workspaces (git repositories), comma-separated"
    )
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--keep", type=Path, help="generate the workspaces here and keep them")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per median (default 10)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV")
    }
    base = args.keep or Path(tempfile.mkdtemp(prefix="yard-bench-"))
    env["YARD_CACHE_DIR"] = str(base / "cache")
    rows: dict[int, tuple[Runs, dict[str, float]]] = {}
    shape: dict[int, tuple[float, int]] = {}
    real: dict[str, tuple[int, Runs]] = {}
    uv_version = subprocess.run(["uv", "--version"], capture_output=True, text=True).stdout.strip()
    loads: list[str] = []
    try:
        for n in sizes:
            root = base / (f"ws{n}-cycles" if args.cycles else f"ws{n}")
            if not root.exists():
                generate(root, n, cycles=args.cycles)
            shape[n] = edges_per_member(root)
            loads.append(loadavg())
            rows[n] = measure(root, env, base / "cold", args.runs, args.baseline_src)
            loads.append(loadavg())
            print(f"{n} members: load {loads[-2]} -> {loads[-1]}", flush=True)
        for folder in filter(None, args.real.split(",")):
            root = Path(folder).resolve()
            loads.append(loadavg())
            count = len(subprocess.run(
                [*yard_command(), "list", "--json", "--root", str(root)],
                capture_output=True, text=True, check=True, env=env,
            ).stdout.split('"name"')) - 1  # fmt: skip
            real[root.name] = (count, measure_real(root, env, base / "cold", args.runs))
            loads.append(loadavg())
            print(f"{root.name}: load {loads[-2]} -> {loads[-1]}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    result = table(rows, shape) + "\n\n" + more_table(rows) if rows else ""
    if real:
        result += ("\n\n" if result else "") + real_table(real)
    summary = (
        f"Load average (1, 5, 15 min; 2 cores) before and after each workspace: {'; '.join(loads)}."
    )
    print(result)
    print(summary)
    if args.write_docs:
        write_docs(result, summary, uv_version, args.runs)


def write_docs(result: str, summary: str, uv_version: str, runs: int) -> None:
    section = f"""## yard affected

The whole `yard affected --json` process (interpreter start, git, reading the workspace,
the uv.lock analysis, printing), median (and range) of {runs} runs, interleaved with the
baseline `uv workspace list` on the same generated workspace ({uv_version}, Python
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
