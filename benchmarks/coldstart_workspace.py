"""``coldstart.py --workspace``: worker-style boot with the real workspace modules installed.

It uses the workspace's own venv (``uv run --all-packages`` syncs every member into .venv) and
measures, side by side in one interleaved run, what a worker does before it can take jobs:
``load_config`` + a registry (from metadata or from a manifest) + the queues its actions route
to, exactly what ``switchyard_worker``'s boot does through switchyard's public API, lazily (no
module imported) and eagerly (every action resolved, so every module imported, which is how the
system Switchyard replaces started its workers). Whatever modules are installed are measured;
the notes say which.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import coldstart_env as cenv
import coldstart_measure as cm

GROUP: Final = "switchyard.actions"
# Imported by some modules; the checks report which of them eager loading pulled in.
HEAVY: Final = ("numpy", "PIL", "jinja2", "markdown", "markdown_it", "httpx", "sqlite3")

BOOT: Final = (
    "from pathlib import Path\n"
    "import switchyard\n"
    + cm.PHASE_START.replace("{", "{{").replace("}", "}}")
    + "config = switchyard.load_config(Path({root!r}))\n"
    "reg = {build}\n"
    "queues = {{config.route(n, reg.info(n).queue) for n in reg.names()}}\n"
)
LISTING: Final = """\
import json
from importlib.metadata import entry_points
print(json.dumps([[ep.name, ep.value, ep.dist.name if ep.dist else None]
                  for ep in entry_points(group="switchyard.actions")]))
"""


@dataclass
class Result:
    samples: cm.Samples
    checks: dict[str, dict[str, Any]]
    rows: list[tuple[str, str]]
    columns: list[tuple[str, str]]
    setup: dict[str, Any] = field(default_factory=dict)


def workspace_python() -> Path:
    """The workspace venv's interpreter (the one running us under ``uv run``, if it is that)."""
    venv = cenv.ROOT / ".venv"
    if Path(sys.prefix).resolve() == venv.resolve():
        return Path(sys.executable)
    python = venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(
            "error: no workspace venv at .venv; run this under `uv run --all-packages`"
        )
    return python


def _py(python: Path, code: str, *args: str) -> str:
    proc = subprocess.run(
        [str(python), "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        env=cenv.clean_env(),
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    return proc.stdout


def variants(
    *, root: Path, manifest: Path | None, prefixes: tuple[str, ...], call: str | None, data: str
) -> list[cm.Variant]:
    """Floors, lazy boots (metadata, manifest), a first call, and the eager boots."""
    out = cm.floors(prefixes)
    out.append(
        cm.Variant(
            "floor.import_worker",
            "import switchyard_worker",
            "import switchyard_worker",
            cm.facts(prefixes),
            optional=True,
        )
    )
    out += [
        v
        for v in cm.registry_variants(
            manifest=manifest, action=None, payload=None, plugin_prefixes=prefixes
        )
        if v.key != "registry.manifest_nocheck"
    ]
    from_meta = "switchyard.Registry.from_entry_points()"
    sources = [("metadata", from_meta)]
    if manifest is not None:
        sources.append(("manifest", f"switchyard.Registry.from_manifest({str(manifest)!r})"))
    for source, build in sources:
        boot = BOOT.format(root=str(root), build=build)
        out.append(
            cm.Variant(
                f"boot.{source}",
                f"worker boot (config, registry, queues), lazy, from {source}",
                boot + cm.PHASE_END,
                cm.facts(prefixes, actions="len(reg)", queues="sorted(queues)"),
            )
        )
        if call is not None:
            out.append(
                cm.Variant(
                    f"call.{source}",
                    f"worker boot, lazy, from {source} + first call",
                    boot
                    + f"_out = switchyard.call_action({call!r}, {data!r}, registry=reg)\n"
                    + cm.PHASE_END,
                    cm.facts(prefixes, actions="len(reg)"),
                    optional=True,
                )
            )
    boot = BOOT.format(root=str(root), build=from_meta)
    heavy = f"sorted(m for m in {HEAVY!r} if m in _cs.modules)"
    out += [
        cm.Variant(
            "eager.registry",
            "worker boot, eager: from metadata + resolve every action",
            boot + "_loaded = [reg.resolve(n) for n in reg.names()]\n" + cm.PHASE_END,
            cm.facts(prefixes, actions="len(reg)", loaded="len(_loaded)", heavy=heavy),
        ),
        cm.Variant(
            "eager.importlib",
            "importlib.metadata: ep.load() for every entry point",
            "from importlib.metadata import entry_points\n"
            f"_loaded = [ep.load() for ep in entry_points(group={GROUP!r})]\n",
            cm.facts(prefixes, loaded="len(_loaded)", heavy=heavy),
        ),
    ]
    return out


def verify(job: cm.Job, got: dict[str, Any], prefixes: tuple[str, ...], actions: int) -> None:
    key, problems = job.variant.key, []
    top = {m.split(".")[0] for m in got["plugins"]}
    if key.startswith(("floor.", "boot.", "registry.")) and top:
        problems.append(f"imported workspace modules {sorted(top)}")
    if key.startswith(("boot.", "call.", "registry.")) and got.get("actions") != actions:
        problems.append(f"registry has {got.get('actions')} actions, expected {actions}")
    if key.startswith("call.") and len(top) != 1:
        problems.append(f"a first call imported {sorted(top)}, expected one module")
    if key.startswith("eager."):
        if got.get("loaded") != actions:
            problems.append(f"loaded {got.get('loaded')} actions, expected {actions}")
        if top != set(prefixes):
            problems.append(f"imported {sorted(top)}, expected {sorted(prefixes)}")
    if problems:
        raise RuntimeError(f"{job.key}: " + "; ".join(problems))


def run(
    workdir: Path,
    *,
    rounds: int,
    call: str | None,
    data: str | None,
    notes: list[str],
    only: frozenset[str] | None = None,
) -> Result:
    python = workspace_python()
    eps: list[list[str | None]] = json.loads(_py(python, LISTING))
    if not eps:
        raise SystemExit(f"error: no {GROUP} entry points in {python}; are the modules synced?")
    prefixes = tuple(sorted({str(value).split(":")[0].split(".")[0] for _, value, _ in eps}))
    dists = sorted({str(d) for _, _, d in eps})
    notes.append(f"{len(eps)} actions from {len(dists)} modules installed: {', '.join(dists)}")
    manifest: Path | None = workdir / "workspace-manifest.json"
    try:
        _py(
            python,
            "import sys, switchyard\n"
            "reg = switchyard.Registry.from_entry_points()\n"
            "switchyard.write_manifest(sys.argv[1], registry=reg)\n",
            str(manifest),
        )
    except RuntimeError as exc:
        notes.append(f"no manifest variants: write_manifest failed: {exc}")
        manifest = None
    if call is None:
        call, data = "geo.encode_geohash", None
    if data is None:
        data = json.dumps(DEFAULT_CALLS.get(call, {}))
    names = {str(name) for name, _, _ in eps}
    if call not in names:
        notes.append(f"no first-call variants: {call} is not installed")
        call = None
    env = cenv.clean_env()
    jobs = [
        cm.Job(f"{v.key}@ws", python, v, workdir, env)
        for v in variants(
            root=cenv.ROOT, manifest=manifest, prefixes=prefixes, call=call, data=data
        )
        if only is None or v.key.split(".")[0] in only
    ]
    cm.log(f"checking {len(jobs)} variants once (no timing)")
    kept, checks = cm.run_checks(jobs, lambda job, got: verify(job, got, prefixes, len(eps)), notes)
    heavy = checks.get("eager.registry@ws", {}).get("heavy")
    if heavy:
        notes.append(f"eager boot imports the heavy libraries: {', '.join(heavy)}")
    if call is not None:
        notes.append(f"first call: {call} with {data}")
    cm.log(f"timing: {rounds} rounds + 1 warm-up, {len(kept)} processes a round")
    samples = cm.measure(kept, rounds=rounds, progress=cm.log)
    return Result(
        samples=samples,
        checks=checks,
        rows=[(j.variant.key, j.variant.label) for j in kept],
        columns=[("ws", "workspace")],
        setup={"python": str(python), "manifest": str(manifest), "entry_points": eps},
    )


# Inputs for the first call, by action; pass --call/--data for any other.
DEFAULT_CALLS: Final[dict[str, object]] = {
    "geo.encode_geohash": {"lat": 52.52, "lon": 13.405, "precision": 9},
}


def targets(med: dict[str, float]) -> list[cm.Target]:
    """Workspace figures against the same limits as issue 2's, plus lazy-vs-eager ratios."""

    def m(key: str) -> float | None:
        return med.get(f"{key}@ws")

    out: list[cm.Target] = []
    base = m("floor.import_switchyard")
    for source, limit in (("manifest", 10.0), ("metadata", 40.0)):
        boot = m(f"registry.{source}")
        if boot is not None and base is not None:
            out.append(
                cm.Target(
                    f"ready registry ({source}) over import switchyard",
                    f"<= {limit:.0f} ms",
                    f"{boot:.1f} - {base:.1f} = {boot - base:+.1f} ms",
                    boot - base <= limit,
                )
            )
    eager = m("eager.registry")
    for source in ("metadata", "manifest"):
        boot = m(f"boot.{source}")
        if boot is not None and eager is not None:
            out.append(
                cm.Target(
                    f"lazy boot ({source}) vs eager boot",
                    "faster",
                    f"{eager:.1f} / {boot:.1f} = {eager / boot:.1f}x",
                    boot < eager,
                )
            )
    return out
