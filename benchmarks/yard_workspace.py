"""Generate a realistic uv workspace of N members in a git repository, with its uv.lock.

Used by ``benchmarks/yard_affected.py``. The shape follows a real monorepo: a few layers of
members (bases, libraries, modules, services) where each member depends on 1-4 members of lower
layers, through project dependencies mostly and some extras and dependency groups; about 300
third-party packages with their own dependency tree; each member uses 2-6 of them plus a dev
group. The uv.lock is written programmatically in uv's own format (version 1, revision 3: one
``[[package]]`` block per package, registry sources, sdist and wheel hashes, dev dependencies and
metadata), because ``uv lock`` would need 3,000 members' worth of real PyPI resolutions.

Run directly to make one: ``python benchmarks/yard_workspace.py DIR N``.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path

THIRD_PARTY = 300
LAYERS = (0.05, 0.25, 0.6, 0.1)  # share of members in each layer, bottom first


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _third_party(rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """(name, version, deps) for a pool of third-party packages, deps among lower indices."""
    pool = []
    for i in range(THIRD_PARTY):
        deps = (
            sorted({f"tp{rng.randrange(i):03d}" for _ in range(rng.choice((0, 0, 1, 2, 3)))})
            if i
            else []
        )
        pool.append(
            (f"tp{i:03d}", f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}", deps)
        )
    return pool


def generate(root: Path, count: int, seed: int = 7) -> list[str]:
    """Write the workspace and commit it; returns member names in layer order (bases first)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    tp = _third_party(rng)
    names: list[str] = []
    layer_of: list[int] = []
    for layer, share in enumerate(LAYERS):
        n = max(1, round(count * share)) if layer < len(LAYERS) - 1 else count - len(names)
        for _ in range(n):
            names.append(f"m{len(names):04d}")
            layer_of.append(layer)
    (root / "pyproject.toml").write_text(
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n\n[dependency-groups]\ndev = ["tp000"]\n'
    )
    (root / "noxfile.py").write_text("# the CI entry points\n")
    (root / ".gitignore").write_text(".venv/\n__pycache__/\n")
    members: dict[str, tuple[list[str], dict[str, list[str]], list[str], list[str]]] = {}
    for index, name in enumerate(names):
        lower = [i for i in range(index) if layer_of[i] < layer_of[index]]
        internal = (
            sorted({names[rng.choice(lower)] for _ in range(rng.randint(1, 4))}) if lower else []
        )
        optional: dict[str, list[str]] = {}
        if internal and rng.random() < 0.15:
            optional["extra"] = [internal.pop()]
        third = sorted({tp[rng.randrange(THIRD_PARTY)][0] for _ in range(rng.randint(2, 6))})
        dev = sorted({tp[rng.randrange(THIRD_PARTY)][0] for _ in range(2)})
        if lower and rng.random() < 0.1:
            dev.append(names[rng.choice(lower)])
        members[name] = (internal + third, optional, dev, internal)
        folder = root / "packages" / name
        pkg = folder / "src" / name
        (folder / "tests").mkdir(parents=True, exist_ok=True)
        pkg.mkdir(parents=True, exist_ok=True)
        deps = "".join(f'    "{d}",\n' for d in internal + third)
        text = (
            f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
            f"dependencies = [\n{deps}]\n"
        )
        if optional:
            text += "\n[project.optional-dependencies]\n" + "".join(
                f"{k} = {v!r}\n".replace("'", '"') for k, v in optional.items()
            )
        text += "\n[dependency-groups]\ndev = " + repr(dev).replace("'", '"') + "\n"
        text += '\n[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        srcs = sorted({d for d in internal + optional.get("extra", []) + dev if d in members})
        if srcs:
            text += "\n[tool.uv.sources]\n" + "".join(
                f"{d} = {{ workspace = true }}\n" for d in srcs
            )
        (folder / "pyproject.toml").write_text(text)
        imports = "".join(f"import {d}\n" for d in internal)
        (pkg / "__init__.py").write_text(f'"""{name}."""\n{imports}')
        (pkg / "core.py").write_text("def run() -> int:\n    return 1\n")
        (pkg / "py.typed").write_text("")
        (folder / "tests" / f"test_{name}.py").write_text(f"import {name}\n")
        (folder / "README.md").write_text(f"# {name}\n")
    (root / "uv.lock").write_text(render_lock(names, members, tp))
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=bench", "-c", "user.email=b@x", "commit", "-q", "-m", "workspace")
    return names


def render_lock(
    names: list[str],
    members: dict[str, tuple[list[str], dict[str, list[str]], list[str], list[str]]],
    tp: list[tuple[str, str, list[str]]],
) -> str:
    """A uv.lock in uv's layout for the members and third-party pool."""
    out = ['version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n[manifest]\nmembers = [\n']
    out += [f'    "{n}",\n' for n in names]
    out.append("]\n\n[manifest.dependency-groups]\n")
    out.append('dev = [{ name = "tp000", specifier = ">=1" }]\n')
    blocks: list[tuple[str, str]] = []
    for name in names:
        deps, optional, dev, _ = members[name]
        b = [f'name = "{name}"\nversion = "0.1.0"\nsource = {{ editable = "packages/{name}" }}\n']
        b.append("dependencies = [\n" + "".join(f'    {{ name = "{d}" }},\n' for d in deps) + "]\n")
        if optional:
            b.append("\n[package.optional-dependencies]\n")
            for k, v in optional.items():
                b.append(f"{k} = [\n" + "".join(f'    {{ name = "{d}" }},\n' for d in v) + "]\n")
        b.append("\n[package.dev-dependencies]\ndev = [\n")
        b.append("".join(f'    {{ name = "{d}" }},\n' for d in dev) + "]\n")
        b.append("\n[package.metadata]\nrequires-dist = [\n")
        for d in deps:
            src = ', editable = "packages/' + d + '"' if d in members else ', specifier = ">=1"'
            b.append(f'    {{ name = "{d}"{src} }},\n')
        b.append("]\n\n[package.metadata.requires-dev]\ndev = [\n")
        b.append("".join(f'    {{ name = "{d}", specifier = ">=1" }},\n' for d in dev) + "]\n")
        blocks.append((name, "".join(b)))
    for name, version, deps in tp:
        blocks.append((name, tp_block(name, version, deps)))
    for _, text in sorted(blocks):
        out.append("\n[[package]]\n" + text)
    return "".join(out)


def tp_block(name: str, version: str, deps: list[str]) -> str:
    """One third-party package block: registry source, dependencies, sdist and wheels."""
    url = f"https://files.pythonhosted.org/packages/{_h(name + version)[:2]}/{name}"
    registry = '{ registry = "https://pypi.org/simple" }'
    b = [f'name = "{name}"\nversion = "{version}"\nsource = {registry}\n']
    if deps:
        b.append("dependencies = [\n" + "".join(f'    {{ name = "{d}" }},\n' for d in deps) + "]\n")
    b.append(
        f'sdist = {{ url = "{url}/{name}-{version}.tar.gz", '
        f'hash = "sha256:{_h(name + version + "s")}", '
        f'size = 123456, upload-time = "2024-05-01T00:00:00Z" }}\n'
    )
    b.append("wheels = [\n")
    for tag in ("py3-none-any", "cp311-cp311-manylinux_2_17_x86_64", "cp312-cp312-win_amd64"):
        b.append(
            f'    {{ url = "{url}/{name}-{version}-{tag}.whl", '
            f'hash = "sha256:{_h(name + version + tag)}", size = 65432, '
            f'upload-time = "2024-05-01T00:00:00Z" }},\n'
        )
    b.append("]\n")
    return "".join(b)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True)


if __name__ == "__main__":
    print(len(generate(Path(sys.argv[1]), int(sys.argv[2]))), "members")
