"""Generate a realistic uv workspace of N members in a git repository, locked by real `uv lock`.

Used by ``benchmarks/yard_affected.py``. The shape follows a real monorepo: layers of members
(bases, libraries, modules, services) where each member depends on 1-4 members of lower layers,
mostly through project dependencies and some through extras and dev groups; each member also
uses 2-6 real PyPI packages (whose own dependencies uv resolves) and has a dev group; the
virtual root has a dev group too. ``uv lock`` (with a fixed ``--exclude-newer`` date, so the
resolution is reproducible) writes the uv.lock, which is committed with everything else.

A second lock is prepared for the lock-only change: ``uv lock --upgrade-package certifi`` with a
later date, a package the members reach only transitively (through requests and httpx).

With ``cycles=True`` the workspace also has the cycles real workspaces have, which uv locks:
the first member is a core package whose ``all`` extra lists the plugins that depend on it
(5% of the members, in one cycle), and every 50th library has a ``test`` group using a
test-utils member that depends on the library (a cycle of two).

Run directly to make one: ``python benchmarks/yard_workspace.py DIR N [--cycles]``.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

LAYERS = (0.05, 0.25, 0.6, 0.1)  # share of members in each layer, bottom first
LOCKED_AT = "2025-06-01T00:00:00Z"
UPGRADED_AT = "2025-11-01T00:00:00Z"
UPGRADED = "certifi"
POOL = (
    "requests", "urllib3", "idna", "charset-normalizer", "six", "python-dateutil", "attrs",
    "click", "jinja2", "markupsafe", "pyyaml", "packaging", "pydantic", "typing-extensions",
    "rich", "pygments", "httpx", "anyio", "sniffio", "h11", "colorama", "tenacity", "cachetools",
    "wrapt", "filelock", "platformdirs", "tzdata", "pytz", "sqlalchemy", "itsdangerous",
    "werkzeug", "flask", "blinker", "msgpack", "orjson", "structlog", "redis", "boto3",
    "protobuf", "grpcio",
)  # fmt: skip
EXTRAS_POOL = ("orjson", "rich", "pyyaml", "msgpack")


def generate(root: Path, count: int, seed: int = 7, *, cycles: bool = False) -> list[str]:
    """Write the workspace, lock it with uv and commit it; returns the member names.

    The lock for the lock-only change is left at ``upgraded_lock(root)``.
    """
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    layer_of: list[int] = []
    for layer, share in enumerate(LAYERS):
        n = max(1, round(count * share)) if layer < len(LAYERS) - 1 else count - len(names)
        for _ in range(n):
            names.append(f"m{len(names):04d}")
            layer_of.append(layer)
    (root / "pyproject.toml").write_text(
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n\n'
        '[dependency-groups]\ndev = ["pytest>=8", "ruff"]\n'
    )
    (root / "noxfile.py").write_text("# the CI entry points\n")
    (root / ".gitignore").write_text(".venv/\n__pycache__/\n")
    plugins, testutils = _cycle_plan(names, layer_of) if cycles else (set(), {})
    for index, name in enumerate(names):
        lower = [i for i in range(index) if layer_of[i] < layer_of[index]]
        picks = {names[rng.choice(lower)] for _ in range(rng.randint(1, 4))} if lower else set()
        if name in plugins:
            picks.add(names[0])  # a plugin of the core package
        if name in testutils.values():
            picks.add(next(lib for lib, utils in testutils.items() if utils == name))
        internal = sorted(picks)
        optional: dict[str, list[str]] = {}
        if internal and rng.random() < 0.15 and internal[-1] not in (names[0], *testutils):
            optional["extra"] = [internal.pop()]
        if rng.random() < 0.2:
            optional.setdefault("fast", []).append(rng.choice(EXTRAS_POOL))
        if name == names[0] and plugins:
            optional["all"] = sorted(plugins)
        third = sorted({rng.choice(POOL) for _ in range(rng.randint(2, 6))})
        dev = ["pytest>=8"]
        if lower and rng.random() < 0.1:
            dev.append(names[rng.choice(lower)])
        groups = {"test": [testutils[name]]} if name in testutils else {}
        write_member(root, name, internal, third, optional, dev, groups)
    _run(root, "uv", "lock", "--quiet", f"--exclude-newer={LOCKED_AT}")
    _run(root, "git", "init", "-q", "-b", "main")
    _run(root, "git", "add", "-A")
    _run(root, "git", "-c", "user.name=bench", "-c", "user.email=b@x", "commit", "-q", "-m", "ws")
    _run(root, "uv", "lock", "--quiet", f"--exclude-newer={UPGRADED_AT}", "-P", UPGRADED)
    upgraded_lock(root).write_bytes((root / "uv.lock").read_bytes())
    _run(root, "git", "checkout", "-q", "--", "uv.lock")
    return names


def _cycle_plan(names: list[str], layer_of: list[int]) -> tuple[set[str], dict[str, str]]:
    """The plugins of the core package (the first member), and each library with a test
    group's test-utils member (libraries: the second layer; test-utils: the third)."""
    step = 20  # 5% of the members are plugins
    plugins = {n for i, n in enumerate(names) if layer_of[i] >= 2 and i % step == 0}
    libraries = [n for i, n in enumerate(names) if layer_of[i] == 1][::50]
    utils = [n for i, n in enumerate(names) if layer_of[i] == 2 and n not in plugins][1::50]
    return plugins, dict(zip(libraries, utils, strict=False))


def upgraded_lock(root: Path) -> Path:
    """Where the generated workspace's lock-only change (one package upgraded) is kept."""
    return root.with_name(f"{root.name}.upgraded.lock")


def write_member(
    root: Path,
    name: str,
    internal: list[str],
    third: list[str],
    optional: dict[str, list[str]],
    dev: list[str],
    groups: dict[str, list[str]] | None = None,
) -> None:
    """One member: pyproject (with workspace sources), a src package, a test, a README."""
    folder = root / "packages" / name
    pkg = folder / "src" / name
    (folder / "tests").mkdir(parents=True, exist_ok=True)
    pkg.mkdir(parents=True, exist_ok=True)
    text = (
        f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f"dependencies = {json.dumps(internal + third, indent=4)}\n"
    )
    if optional:
        text += "\n[project.optional-dependencies]\n"
        text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in optional.items())
    text += f"\n[dependency-groups]\ndev = {json.dumps(dev)}\n"
    text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in (groups or {}).items())
    text += '\n[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    deps = internal + [d for ds in optional.values() for d in ds] + dev
    deps += [d for ds in (groups or {}).values() for d in ds]
    workspace = sorted({d for d in deps if re.fullmatch(r"m\d{4}", d)})
    if workspace:
        text += "\n[tool.uv.sources]\n"
        text += "".join(f"{d} = {{ workspace = true }}\n" for d in workspace)
    (folder / "pyproject.toml").write_text(text)
    (pkg / "__init__.py").write_text(
        f'"""{name}."""\n' + "".join(f"import {d}\n" for d in internal)
    )
    (pkg / "core.py").write_text("def run() -> int:\n    return 1\n")
    (pkg / "py.typed").write_text("")
    (folder / "tests" / f"test_{name}.py").write_text(f"import {name}\n")
    (folder / "README.md").write_text(f"# {name}\n")


def _run(root: Path, *args: str) -> None:
    subprocess.run(args, cwd=root, check=True)


if __name__ == "__main__":
    made = generate(Path(sys.argv[1]), int(sys.argv[2]), cycles="--cycles" in sys.argv[3:])
    print(len(made), "members")
