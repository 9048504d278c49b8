"""yard test against one pytest run of everything, cold and incremental, with a remote cache.

On two workspaces:

- this one (a ``git clone`` of HEAD, so other people's uncommitted edits do not count), whose
  baseline is its own ``uv run nox -s tests`` (every member's tests in one environment), and
- a generated one of 200 members (``benchmarks/yard_workspace.py``, each member's test file
  given one test), whose baseline is what that session does: ``uv sync --all-packages`` and
  one ``pytest`` over every member's ``tests/``;

it times, as whole processes, next to each other in one run:

1. cold: the baseline, and ``yard test`` with an empty local cache and an empty remote cache
   (Debian's nginx with WebDAV PUT on a loopback port, started and stopped here), which it
   fills;
2. nothing changed: ``yard test`` again (the local cache), and from a fresh clone with an empty
   local cache (the remote cache);
3. one leaf member changed: ``yard test`` runs exactly that member's tests.

Each figure is the median of ``--rounds`` runs (``--cold-rounds`` for the cold ones) with their
range; the load average (``/proc/loadavg``, 1 minute) is read before and after each row.

Run: ``uv run --all-packages python benchmarks/yard_test.py [--only-this] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from yard_workspace import generate

MAIN = Path(__file__).resolve().parents[1]
YARD = [sys.executable, "-m", "yard"]
NGINX_CONF = """
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp;
    client_max_body_size 256m;
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/data;
        location / {{ dav_methods PUT; create_full_put_path on; }}
    }}
}}
"""


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def timed(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=env or os.environ.copy(),
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


class Nginx:
    """The remote cache: nginx on a free loopback port, stopped by its PID."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        for sub in ("data", "tmp"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, port=self.port))
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        cmd = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        self.proc = subprocess.Popen(cmd)
        for _ in range(500):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.01)
        raise SystemExit("nginx did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def yard_test(
    root: Path, cache: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[float, dict]:
    cmd = [*YARD, "test", "--json", "--root", str(root), "--cache-dir", str(cache), *args]
    seconds, out = timed(cmd, root, env, ok=(0, 1))  # 1: a member failed (reported)
    return seconds, json.loads(out)


def ran(data: dict) -> list[str]:
    return sorted(m["name"] for m in data["members"] if m["source"] == "run")


def spread(samples: list[float]) -> dict:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def clone(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(source), str(target)], check=True)
    return target


def measure(
    label: str,
    root: Path,
    leaf: str,
    baseline: list[list[str]],
    work: Path,
    remote: Nginx,
    rounds: int,
    cold_rounds: int,
) -> dict:
    """Every row for one workspace."""
    row: dict = {"label": label}
    paths = {m["name"]: m["path"] for m in json.loads(timed([*YARD, "list", "--json"], root)[1])}
    row["members"] = len(paths)
    base_s: list[float] = []
    cold_s: list[float] = []
    loads = [load()]
    for i in range(cold_rounds):  # interleaved: the baseline, then yard with everything empty
        for venv in (".venv", ".nox"):  # both sides make their environments (uv's cache is warm)
            shutil.rmtree(root / venv, ignore_errors=True)
        started = time.perf_counter()
        for cmd in baseline:
            timed(cmd, root)
        base_s.append(time.perf_counter() - started)
        shutil.rmtree(root / ".yard", ignore_errors=True)
        url = f"{remote.url}/{label}-{i}"
        seconds, cold = yard_test(root, work / f"{label}-cache{i}", "--remote-cache", url)
        cold_s.append(seconds)
        row["cold_run"] = len(ran(cold))
        row["cold_failed"] = [m["name"] for m in cold["members"] if m["result"] == "failed"]
        loads.append(load())
    row["baseline"] = spread(base_s)
    row["cold"] = spread(cold_s)
    row["cold_load"] = (min(loads), max(loads))
    cache = work / f"{label}-cache{cold_rounds - 1}"
    url = f"{remote.url}/{label}-{cold_rounds - 1}"
    # A member whose tests fail is never cached: it runs every time. The incremental rows test
    # the members that pass (the failures are reported with the row).
    passing = sorted(m for m in paths if m not in row["cold_failed"])
    chosen = passing if row["cold_failed"] else []

    loads = [load()]
    local: list[float] = []
    for _ in range(rounds):
        seconds, data = yard_test(root, cache, "--remote-cache", url, *chosen)
        assert ran(data) == [], ran(data)
        local.append(seconds)
    loads.append(load())
    row["local"] = spread(local)
    row["local_load"] = (min(loads), max(loads))

    loads = [load()]
    fresh: list[float] = []
    for i in range(rounds):  # a new machine: a fresh clone, an empty local cache
        other = clone(root, work / f"{label}-fresh")
        env = {**os.environ, "YARD_CACHE_DIR": str(work / f"{label}-fresh-yard{i}")}
        cache_i = work / f"{label}-fresh-yard{i}" / "build"
        seconds, data = yard_test(other, cache_i, "--remote-cache", url, *chosen, env=env)
        assert ran(data) == [], ran(data)
        assert data["summary"]["from_remote"] == data["summary"]["cached"]
        fresh.append(seconds)
    loads.append(load())
    row["remote"] = spread(fresh)
    row["remote_load"] = (min(loads), max(loads))
    shutil.rmtree(work / f"{label}-fresh", ignore_errors=True)

    loads = [load()]
    changed: list[float] = []
    init = next((root / paths[leaf] / "src").glob("*/__init__.py"))
    original = init.read_text()
    for i in range(rounds):
        init.write_text(original + f"\nBENCH_EDIT = {i}\n")
        seconds, data = yard_test(root, cache, "--remote-cache", url, *chosen)
        row["leaf_ran"] = ran(data)
        changed.append(seconds)
    init.write_text(original)
    loads.append(load())
    row["leaf"] = leaf
    row["leaf_s"] = spread(changed)
    row["leaf_load"] = (min(loads), max(loads))
    return row


def add_tests(root: Path) -> None:
    """Give each generated member's test file one test, and commit."""
    for test in root.glob("packages/*/tests/test_*.py"):
        name = test.stem.removeprefix("test_")
        test.write_text(
            f"from {name}.core import run\n\n\ndef test_run():\n    assert run() == 1\n"
        )
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "-m", "tests"],
        cwd=root,
        check=True,
    )


def fmt(s: dict) -> str:
    return f"{s['median']:.2f} s ({s['min']:.2f}-{s['max']:.2f}, n={s['n']})"


def table(rows: list[dict]) -> str:
    lines = [
        "| workspace | what | median (range, runs) | load avg | ran |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        w = f"{r['label']} ({r['members']} members)"
        failed = f" ({', '.join(r['cold_failed'])} failed: left out below)" * bool(r["cold_failed"])

        def la(key: str, row: dict = r) -> str:
            low, high = row[key]
            return f"{low:.2f}-{high:.2f}"

        lines += [
            f"| {w} | baseline: {r['baseline_name']}, cold | {fmt(r['baseline'])} "
            f"| {la('cold_load')} | all |",
            f"| {w} | `yard test`, cold (empty local and remote caches) | {fmt(r['cold'])} "
            f"| {la('cold_load')} | {r['cold_run']} members{failed} |",
            f"| {w} | `yard test`, nothing changed, local cache | {fmt(r['local'])} "
            f"| {la('local_load')} | none |",
            f"| {w} | `yard test`, nothing changed, fresh clone + remote cache | "
            f"{fmt(r['remote'])} | {la('remote_load')} | none |",
            f"| {w} | `yard test`, one leaf ({r['leaf']}) changed | {fmt(r['leaf_s'])} "
            f"| {la('leaf_load')} | {', '.join(r['leaf_ran'])} |",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each incremental row")
    parser.add_argument("--cold-rounds", type=int, default=2, help="cold runs per side")
    parser.add_argument("--members", type=int, default=200, help="size of the generated one")
    parser.add_argument("--only-this", action="store_true", help="this workspace only")
    parser.add_argument("--only-generated", action="store_true", help="the generated one only")
    parser.add_argument("--keep", type=Path, help="work here and keep the files")
    args = parser.parse_args()
    for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):  # started in the background,
        signal.signal(number, signal.SIG_DFL)  # this process ignores them: its tests must not
    work = args.keep or Path(tempfile.mkdtemp(prefix="yard-test-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    remote = Nginx(work / "nginx")
    rows: list[dict] = []
    try:
        if not args.only_generated:
            this = work / "switchyard"
            if not this.exists():
                clone(MAIN, this)
            nox = ["uv", "run", "nox", "-s", "tests"]
            row = measure("this", this, "acme-geo", [nox], work, remote, args.rounds, 1)
            row["baseline_name"] = "`uv run nox -s tests`"
            print(json.dumps(row), flush=True)
            rows.append(row)
        if not args.only_this:
            generated = work / f"ws{args.members}"
            if not generated.exists():
                generate(generated, args.members)
                add_tests(generated)
            names = json.loads(timed([*YARD, "list", "--json"], generated)[1])
            leaf = names[-1]["name"]
            baseline = [
                ["uv", "sync", "--all-packages", "--frozen", "-q"],
                ["uv", "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider", "packages"],
            ]
            row = measure(
                f"generated{args.members}",
                generated,
                leaf,
                baseline,
                work,
                remote,
                args.rounds,
                args.cold_rounds,
            )
            row["baseline_name"] = "`uv sync --all-packages` + one `pytest` over all tests/"
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        remote.stop()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))


if __name__ == "__main__":
    main()
