"""yard build against uv build, and a sliced worker's cold start against the full worker.

On two workspaces, side by side in one run:

- this one (a ``git clone`` of HEAD, so other people's uncommitted edits do not count) and
- a generated one of 50 members (``benchmarks/yard_workspace.py``: layered members with
  internal and third-party dependencies, hatchling, a uv.lock),

it times, as whole processes:

1. a cold full build: ``uv build --all-packages`` (the baseline: sdists, then wheels from them),
   ``uv build --all-packages --wheel`` (the same, wheels only) and ``yard build --all`` with an
   empty cache (wheels, dependencies first, one job per core, cache filled as it goes);
2. a rebuild with nothing changed (yard: every member from the cache);
3. one leaf member changed, then one base member changed: which members yard rebuilds.

Then, on this workspace, the cold start of ``switchyard-worker`` installed from a slice serving
two modules (``yard slice --include 'auth.*,geo.*'``) against one installed from the full build,
each in its own fresh venv, with its manifest and without: the time from process start to the
worker's boot line, median of interleaved runs.

Run: ``uv run --all-packages python benchmarks/yard_build.py [--write-docs]`` (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from yard_workspace import generate

MAIN = Path(__file__).resolve().parents[1]
DOCS = MAIN / "docs" / "benchmarks.md"
REDIS_URL = "redis://127.0.0.1:6379/14"
YARD = [sys.executable, "-m", "yard"]


def run(cmd: list[str], cwd: Path, **kw: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return seconds, done


def yard_build(root: Path, cache: Path, out: Path, *args: str) -> tuple[float, dict]:
    cmd = [*YARD, "build", "--all", "--json", "--root", str(root), "--cache-dir", str(cache)]
    seconds, done = run([*cmd, "--out", str(out), *args], root)
    return seconds, json.loads(done.stdout)


def built(data: dict) -> list[str]:
    return sorted(m["name"] for m in data["members"] if m["state"] == "built")


def runtime_dependents(root: Path, name: str) -> list[str]:
    """Members whose run-time closure holds ``name`` (what its change must rebuild)."""
    sys.path.insert(0, str(MAIN / "tools" / "yard" / "src"))
    from yard._keys import runtime_closure
    from yard._workspace import load_workspace

    workspace = load_workspace(root)
    return sorted(m for m in workspace.members if name in runtime_closure(workspace, [m]))


def touch(root: Path, member_dir: str) -> None:
    init = next((root / member_dir / "src").glob("*/__init__.py"))
    init.write_text(init.read_text() + "\n# benchmark edit\n")


def measure_builds(label: str, root: Path, leaf: str, base: str, work: Path, rounds: int) -> dict:
    """Cold uv vs yard (interleaved, medians), then no-change, leaf and base rebuilds."""
    names = json.loads(run([*YARD, "list", "--json", "--root", str(root)], root)[1].stdout)
    paths = {m["name"]: m["path"] for m in names}
    # warm uv's own cache for the build backend, so neither side pays the first download
    run(["uv", "build", "--package", leaf, "--wheel", "-o", str(work / "warm")], root)
    samples: dict[str, list[float]] = {"uv": [], "uvw": [], "yard": []}
    out = work / f"{label}-out"
    for i in range(rounds):
        cmd = ["uv", "build", "--all-packages", "-o", str(work / f"{label}-uv{i}")]
        samples["uv"].append(run(cmd, root)[0])
        cache = work / f"{label}-cache{i}"  # empty: a fresh CI machine
        cold_i, cold_data = yard_build(root, cache, out)
        samples["yard"].append(cold_i)
        cmd = ["uv", "build", "--all-packages", "--wheel", "-o", str(work / f"{label}-uvw{i}")]
        samples["uvw"].append(run(cmd, root)[0])
    uv_sdist, uv_wheel, cold = (statistics.median(samples[k]) for k in ("uv", "uvw", "yard"))
    again, again_data = yard_build(root, cache, out)
    touch(root, paths[leaf])
    leaf_s, leaf_data = yard_build(root, cache, out)
    touch(root, paths[base])
    base_s, base_data = yard_build(root, cache, out)
    run(["git", "checkout", "-q", "--", "."], root)

    def written(data: dict) -> float:
        return sum(m["seconds"] for m in data.get("manifests", []) if m["state"] == "written")

    manifest = written(cold_data)
    return {
        "members": len(names),
        "uv_all": uv_sdist,
        "uv_wheels": uv_wheel,
        "yard_cold": cold,
        "yard_cold_built": cold_data["summary"]["built"],
        "yard_cold_manifest": manifest,
        "nochange": again,
        "nochange_built": len(built(again_data)),
        "leaf": leaf,
        "leaf_s": leaf_s,
        "leaf_built": built(leaf_data),
        "leaf_manifest": written(leaf_data),
        "base": base,
        "base_s": base_s,
        "base_built": built(base_data),
        "base_expected": runtime_dependents(root, base),
    }


def venv_from(folder: Path, venv: Path, skip: tuple[str, ...] = ()) -> dict:
    run(["uv", "venv", "-q", "--clear", "--python", sys.executable, str(venv)], folder)
    wheels = [str(p) for p in sorted(folder.glob("*.whl")) if not p.name.startswith(skip)]
    constraints = folder / "constraints.txt"
    # --compile-bytecode, as a production image would: otherwise, where PYTHONDONTWRITEBYTECODE
    # is set (as on CI machines), every boot would compile every module it imports again
    python = str(venv / "bin" / "python")
    cmd = ["uv", "pip", "install", "-q", "--compile-bytecode", "--python", python, *wheels]
    seconds, _ = run([*cmd, "-c", str(constraints)], folder)
    listed = run(
        ["uv", "pip", "list", "--python", str(venv / "bin/python"), "--format", "json"], folder
    )
    packages = json.loads(listed[1].stdout)
    size = sum(f.stat().st_size for f in (venv / "lib").rglob("*") if f.is_file())
    return {"install_s": seconds, "packages": len(packages), "mb": size / 1e6}


def boot(venv: Path, manifest: Path | None, cwd: Path) -> tuple[float, float, int, float]:
    """Seconds to the boot line, the worker's own boot ms, the action count, and the CPU
    seconds the process used up to that line (less sensitive to a busy machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHYARD_", "VIRTUAL_ENV"))}
    env["SWITCHYARD_REDIS_URL"] = REDIS_URL
    cmd = [str(venv / "bin" / "switchyard-worker"), "--min", "1", "--max", "1"]
    if manifest is not None:
        cmd += ["--manifest", str(manifest)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    seconds = time.perf_counter() - t0
    with open(f"/proc/{proc.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    if "booted in" not in line:
        raise SystemExit(f"worker did not boot: {line!r}")
    own = float(line.rsplit("booted in", 1)[1].split()[0])
    actions = int(line.split(": ", 1)[1].split()[0])
    return seconds, own, actions, cpu


def measure_worker(root: Path, work: Path, rounds: int) -> dict:
    cache = work / "this-cache0"
    full = work / "full"
    yard_build(root, cache, full)
    lock = full / "constraints.txt"
    slice_dir = work / "slice"
    cmd = [*YARD, "slice", "--root", str(root), "--consumer", "switchyard-worker"]
    cmd += ["--include", "auth.*,geo.*", "--out", str(slice_dir), "--cache-dir", str(cache)]
    slice_s, _ = run(cmd, root)
    shutil.copy(slice_dir / "constraints.txt", lock)
    variants = {
        "slice": venv_from(slice_dir, work / "v-slice"),
        "full": venv_from(full, work / "v-full", ("yard-",)),
    }
    manifests = {
        "slice": slice_dir / "switchyard-worker.manifest.json",
        "full": full / "switchyard-worker.manifest.json",
    }
    times: dict[str, list[tuple[float, float, int, float]]] = {}
    for _ in range(rounds):
        for name in ("slice", "full"):
            for with_manifest in (True, False):
                key = f"{name}{'' if with_manifest else '-metadata'}"
                times.setdefault(key, []).append(
                    boot(work / f"v-{name}", manifests[name] if with_manifest else None, work)
                )
    result = {"slice_s": slice_s, "venvs": variants}
    for key, samples in times.items():
        result[key] = {
            "process_s": statistics.median(x[0] for x in samples),
            "boot_ms": statistics.median(x[1] for x in samples),
            "actions": samples[0][2],
            "cpu_s": statistics.median(x[3] for x in samples),
        }
    return result


def build_table(rows: dict[str, dict]) -> str:
    lines = [
        "| workspace | members | `uv build --all-packages` | uv, wheels only "
        "| `yard build --all`, cold | speed-up | nothing changed | one leaf changed "
        "| one base changed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for label, r in rows.items():
        lines.append(
            f"| {label} | {r['members']} | {r['uv_all']:.1f} s | {r['uv_wheels']:.1f} s | "
            f"{r['yard_cold']:.1f} s ({r['yard_cold_built']} built) | "
            f"{r['uv_all'] / r['yard_cold']:.2f}x ({r['uv_wheels'] / r['yard_cold']:.2f}x) | "
            f"{r['nochange']:.2f} s, {r['nochange_built']} built | "
            f"{r['leaf_s']:.1f} s: {', '.join(r['leaf_built'])}"
            + (f" (manifest {r['leaf_manifest']:.1f} s)" if r["leaf_manifest"] else "")
            + " | "
            f"{r['base_s']:.1f} s: {len(r['base_built'])} built "
            f"({'= ' if r['base_built'] == r['base_expected'] else '!= '}{r['base']} + its "
            f"{len(r['base_expected']) - 1} dependents) |"
        )
    return "\n".join(lines)


def worker_table(w: dict) -> str:
    lines = [
        "| worker | installed packages | venv size | install | actions "
        "| to boot line (manifest) | CPU to boot line (manifest) "
        "| to boot line (metadata scan) | CPU (metadata scan) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("slice", "full"):
        v = w["venvs"][name]
        m, s = w[name], w[f"{name}-metadata"]
        lines.append(
            f"| {name} | {v['packages']} | {v['mb']:.0f} MB | {v['install_s']:.1f} s | "
            f"{m['actions']} | {m['process_s'] * 1000:.0f} ms | {m['cpu_s'] * 1000:.0f} ms | "
            f"{s['process_s'] * 1000:.0f} ms | {s['cpu_s'] * 1000:.0f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--rounds", type=int, default=7, help="worker boots per variant")
    parser.add_argument("--cold-rounds", type=int, default=2, help="cold builds per tool")
    parser.add_argument(
        "--reuse-builds", action="store_true", help="with --keep: reuse saved build figures"
    )
    parser.add_argument("--keep", type=Path, help="work here and keep the files")
    parser.add_argument(
        "--only-this",
        action="store_true",
        help="only this workspace's build rows (no 50-member workspace, no worker boots)",
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="yard-build-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        this = work / "switchyard"
        if not this.exists():
            subprocess.run(["git", "clone", "-q", str(MAIN), str(this)], check=True)
        if args.only_this:
            row = measure_builds("this", this, "acme-geo", "switchyard-rq", work, args.cold_rounds)
            print("this workspace", json.dumps(row), flush=True)
            print(build_table({"this workspace": row}))
            return
        generated = work / "ws50"
        if not generated.exists():
            generate(generated, 50)
        names50 = json.loads(
            run([*YARD, "list", "--json", "--root", str(generated)], generated)[1].stdout
        )
        leaf50 = names50[-1]["name"]
        saved = work / "build-rows.json"
        if args.reuse_builds and saved.is_file():
            rows = json.loads(saved.read_text())
        else:
            rows = {
                "this workspace": measure_builds(
                    "this", this, "acme-geo", "switchyard-rq", work, args.cold_rounds
                ),
                "generated, 50 members": measure_builds(
                    "ws50", generated, leaf50, "m0000", work, args.cold_rounds
                ),
            }
            saved.write_text(json.dumps(rows))
        for label, r in rows.items():
            print(label, json.dumps(r), flush=True)
        worker = measure_worker(this, work, args.rounds)
        print("worker", json.dumps(worker), flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    builds, workers = build_table(rows), worker_table(worker)
    print(builds)
    print(workers)
    if args.write_docs:
        write_docs(builds, workers, rows, worker, args.rounds, args.cold_rounds)


def write_docs(
    builds: str, workers: str, rows: dict, worker: dict, rounds: int, cold_rounds: int
) -> None:
    uv = subprocess.run(["uv", "--version"], capture_output=True, text=True).stdout.strip()
    this = rows["this workspace"]
    gen = rows["generated, 50 members"]
    build_summary = (
        f"Cold, yard is {this['uv_all'] / this['yard_cold']:.2f}x (this workspace) and "
        f"{gen['uv_all'] / gen['yard_cold']:.2f}x (50 members) as fast as "
        "`uv build --all-packages`, and "
        f"{this['uv_wheels'] / this['yard_cold']:.2f}x / {gen['uv_wheels'] / gen['yard_cold']:.2f}x"
        " as fast as its wheels-only form: yard runs each member's pinned build backend in "
        "one cached backend venv (uv builds a fresh build environment per member) and starts "
        "every member at once, delivering wheels dependencies-first. With the cache filled, "
        "nothing changed takes "
        f"{gen['nochange']:.2f} s (50 members) and builds nothing; one changed leaf rebuilds "
        "exactly that "
        "member; a changed base rebuilds it and its run-time dependents, nothing else."
    )
    s_, f_ = worker["slice"], worker["full"]
    sm, fm = worker["slice-metadata"], worker["full-metadata"]
    vs, vf = worker["venvs"]["slice"], worker["venvs"]["full"]
    worker_summary = (
        f"The slice installs {vs['packages']} packages ({vs['mb']:.0f} MB) instead of "
        f"{vf['packages']} ({vf['mb']:.0f} MB) and serves {s_['actions']} actions instead of "
        f"{f_['actions']}. To its boot line: {s_['process_s'] * 1000:.0f} ms against "
        f"{f_['process_s'] * 1000:.0f} ms with manifests, {sm['process_s'] * 1000:.0f} ms "
        f"against {fm['process_s'] * 1000:.0f} ms with a metadata scan; in CPU time "
        f"{s_['cpu_s'] * 1000:.0f} against {f_['cpu_s'] * 1000:.0f} ms, and "
        f"{sm['cpu_s'] * 1000:.0f} against {fm['cpu_s'] * 1000:.0f} ms. A boot is the "
        "worker's own start-up (its imports and settings, the same in both): the worker imports "
        "no plugin at boot, so how many are installed barely shows, and the two boot within "
        "this machine's noise of each other. What the slice saves is install size and time, "
        "and code the worker does not serve stays off the machine."
    )
    build_summary = textwrap.fill(build_summary, 96, break_on_hyphens=False)
    worker_summary = textwrap.fill(worker_summary, 96, break_on_hyphens=False)
    section = f"""## yard build

Whole processes in one run on a shared 2-core VM ({uv}, Python {platform.python_version()});
cold builds are the median of {cold_rounds}, interleaved. The machine may be shared, so
absolute times are noisy: compare within a row.
`benchmarks/yard_build.py` clones this repository at HEAD and generates a 50-member workspace
(`benchmarks/yard_workspace.py`), then on each: `uv build --all-packages` (sdist, then a
wheel from it, for every member), the same with `--wheel`, and `yard build --all` with an empty
cache (one job per core, dependencies first; on this workspace the cold time includes
writing the worker's manifest, {this["yard_cold_manifest"]:.1f} s: a fresh venv, the wheels
installed, `switchyard manifest write`). Then, with the cache filled: a rebuild with nothing
changed, a change to one leaf member's source, and a change to a base member (it and the
members that depend on it at run time must rebuild; others come from the cache). The speed-up column
divides the `uv build --all-packages` time by yard's cold time (in brackets: the wheels-only
uv time by yard's). On this workspace a changed plugin also changes the worker's manifest,
which yard writes again in a fresh venv (shown in brackets in the leaf column).

{builds}

{build_summary}

Cold start of the worker installed from `yard slice --consumer switchyard-worker --include
'auth.*,geo.*'` (2 of the 12 modules, plus what they need) against the full build, each in its
own fresh venv: the time from starting `switchyard-worker --min 1 --max 1` to its boot line,
median of {rounds} interleaved runs, with its manifest and with a metadata scan instead, and
the CPU time the process used up to that line (user + system, from /proc: less sensitive to
the other sessions on the machine than the wall time).

{workers}

{worker_summary}

Rerun: `uv run --all-packages python benchmarks/yard_build.py --write-docs`
"""
    text = DOCS.read_text(encoding="utf-8")
    start = text.find("## yard build")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    DOCS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
