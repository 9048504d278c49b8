"""uv.lock changes: exactly the members whose locked closure reaches a changed package."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
from yard import _lock

MEMBERS = {
    "app": [("requests", None)],
    "cli": [("click", None)],
    "web": [("requests", '["socks"]')],
    "tools": [],
}

PACKAGES = {
    "requests": ("2.32.3", ["certifi", "urllib3"], {"socks": ["pysocks"]}),
    "urllib3": ("2.2.0", [], {}),
    "certifi": ("2024.2.2", [], {}),
    "pysocks": ("1.7.1", [], {}),
    "click": ("8.1.7", ["colorama; sys_platform == 'win32'"], {}),
    "colorama": ("0.4.6", [], {}),
    "pytest": ("8.0.0", ["iniconfig", "pluggy"], {}),
    "iniconfig": ("2.0.0", [], {}),
    "pluggy": ("1.4.0", [], {}),
}


def render(packages=PACKAGES, *, hashes="", revision=3, root_group="", members=MEMBERS):
    """A uv.lock in uv's own layout for the members and these third-party packages."""
    blocks = []
    for name, deps in members.items():
        text = f'name = "{name}"\nversion = "0.1.0"\nsource = {{ editable = "packages/{name}" }}\n'
        if deps:
            text += "dependencies = [\n"
            for dep, extra in deps:
                text += f'    {{ name = "{dep}"' + (f", extra = {extra}" if extra else "") + " },\n"
            text += "]\n"
        if name == "tools":
            text += '\n[package.dev-dependencies]\ndev = [\n    { name = "pytest" },\n]\n'
        text += '\n[package.metadata]\nrequires-dist = [{ name = "x" }]\n'
        blocks.append((name, text))
    for name, (version, deps, extras) in packages.items():
        text = f'name = "{name}"\nversion = "{version}"\n'
        text += 'source = { registry = "https://pypi.org/simple" }\n'
        if deps:
            text += "dependencies = [\n"
            for dep in deps:
                dep_name, _, marker = dep.partition("; ")
                text += (
                    f'    {{ name = "{dep_name}"'
                    + (f', marker = "{marker}"' if marker else "")
                    + " },\n"
                )
            text += "]\n"
        digest = hashlib.sha256(f"{name}{version}{hashes}".encode()).hexdigest()
        text += (
            f'sdist = {{ url = "https://files.example/{name}-{version}.tar.gz", '
            f'hash = "sha256:{digest}", size = 10 }}\n'
            f'wheels = [\n    {{ url = "https://files.example/{name}-{version}-py3-none-any.whl",'
            f' hash = "sha256:{digest}", size = 10 }},\n]\n'
        )
        for extra, reqs in extras.items():
            text += f"\n[package.optional-dependencies]\n{extra} = [\n"
            text += "".join(f'    {{ name = "{r}" }},\n' for r in reqs) + "]\n"
        blocks.append((name, text))
    header = f'version = 1\nrevision = {revision}\nrequires-python = ">=3.11"\n\n[manifest]\n'
    header += "members = [\n" + "".join(f'    "{m}",\n' for m in members) + "]\n"
    if root_group:
        header += f"\n[manifest.dependency-groups]\ndev = [{root_group}]\n"
    return header + "".join(f"\n[[package]]\n{text}" for _, text in sorted(blocks))


def with_(name, version=None, deps=None, extras=None):
    packages = dict(PACKAGES)
    old = packages[name]
    packages[name] = (version or old[0], old[1] if deps is None else deps, extras or old[2])
    return packages


@pytest.fixture
def locked(repo):
    for name, deps in MEMBERS.items():
        repo.member(f"packages/{name}", name, tuple(d for d, _ in deps))
    repo.write("uv.lock", render())
    repo.commit("init")
    return repo


def reasons(repo):
    data = repo.affected("--base", "HEAD")
    return {name: data["reasons"][name] for name in data["affected"]}


def test_a_transitive_upgrade_affects_who_reaches_it_and_says_via_what(locked):
    locked.write("uv.lock", render(with_("urllib3", "2.2.3")))
    assert reasons(locked) == {
        "app": ["uv.lock: urllib3 2.2.0 -> 2.2.3, via requests"],
        "web": ["uv.lock: urllib3 2.2.0 -> 2.2.3, via requests"],
    }


def test_a_direct_upgrade(locked):
    locked.write("uv.lock", render(with_("click", "8.1.8")))
    assert reasons(locked) == {"cli": ["uv.lock: click 8.1.7 -> 8.1.8, a direct dependency"]}


def test_an_extra_reaches_only_who_requests_it(locked):
    locked.write("uv.lock", render(with_("pysocks", "1.7.2")))
    assert reasons(locked) == {"web": ["uv.lock: pysocks 1.7.1 -> 1.7.2, via requests"]}


def test_dependency_groups_are_in_the_closure(locked):
    locked.write("uv.lock", render(with_("pluggy", "1.5.0")))
    assert reasons(locked) == {"tools": ["uv.lock: pluggy 1.4.0 -> 1.5.0, via pytest"]}


def test_hashes_and_markers(locked):
    packages = dict(PACKAGES)
    locked.write("uv.lock", render(packages, hashes="rebuilt"))
    assert set(reasons(locked)) == {"app", "cli", "tools", "web"}  # every package re-hashed
    locked.write("uv.lock", render(with_("click", deps=["colorama; os_name == 'nt'"])))
    assert reasons(locked) == {
        "cli": ["uv.lock: click 8.1.7 (markers changed), a direct dependency"]
    }
    locked.write("uv.lock", render(with_("certifi"), hashes=""))
    assert reasons(locked) == {}


def test_a_removed_and_an_added_package(locked):
    packages = with_("pytest", "8.1.0", deps=["pluggy", "packaging"])
    del packages["iniconfig"]
    packages["packaging"] = ("24.0", [], {})
    locked.write("uv.lock", render(packages))
    assert reasons(locked) == {
        "tools": [
            "uv.lock: packaging 24.0 added, via pytest",
            "uv.lock: pytest 8.0.0 -> 8.1.0, a direct dependency",
            "uv.lock: iniconfig 2.0.0 removed, via pytest",
        ]
    }


def test_the_virtual_roots_dev_tools_reach_every_member(locked):
    pytest_group = '{ name = "pytest", specifier = ">=8" }'
    locked.write("uv.lock", render(root_group=pytest_group))
    locked.commit("root dev group")
    locked.write("uv.lock", render(with_("pluggy", "1.5.0"), root_group=pytest_group))
    got = reasons(locked)
    assert set(got) == {"app", "cli", "tools", "web"}
    assert got["app"] == [
        "uv.lock: pluggy 1.4.0 -> 1.5.0, via the workspace root's dependency groups -> pytest"
    ]
    assert got["tools"] == [
        "uv.lock: pluggy 1.4.0 -> 1.5.0, via pytest",
        "uv.lock: pluggy 1.4.0 -> 1.5.0, via the workspace root's dependency groups -> pytest",
    ]


def test_a_members_own_entry_that_changed_alone_affects_it(locked):
    """cli's locked dependencies now include certifi, which was locked already (for
    requests): no third-party block changed, only cli's own (a dependency added by a build
    hook from a file outside the member, or a re-resolution onto a package already locked)."""
    members = {**MEMBERS, "cli": [("click", None), ("certifi", None)]}
    locked.write("uv.lock", render(members=members))
    assert reasons(locked) == {"cli": ["uv.lock: its own locked entry changed"]}
    lock = render(members=members)
    old, new = _lock.parse_lock(render()), _lock.parse_lock(lock)
    assert _lock.changed_packages(old, new, MEMBERS) == []
    assert _lock.changed_member_blocks(old, new, MEMBERS) == ["cli"]


def test_a_header_only_change_affects_nothing(locked):
    locked.write("uv.lock", render(revision=4))
    data = locked.affected("--base", "HEAD")
    assert data["changed_files"] == ["uv.lock"]
    assert data["affected"] == []


def test_lock_changes_reach_dependents_through_the_member_graph(locked):
    locked.member("packages/site", "site", ("app",))
    locked.commit("site")
    locked.write("uv.lock", render(with_("certifi", "2024.8.30")))
    got = reasons(locked)
    assert got["site"] == ["depends on app"]


def test_an_unreadable_lock_affects_everything_and_says_why(locked):
    locked.write("uv.lock", render().replace('name = "click"', 'name = "click'))
    got = reasons(locked)
    assert set(got) == {"app", "cli", "tools", "web"}
    assert got["app"][0].startswith("uv.lock unreadable (uv.lock:")
    assert got["app"][0].endswith(": every member is affected")
    locked.write("uv.lock", "version = 2\n")
    assert "unsupported lock version 2" in reasons(locked)["cli"][0]


def test_a_deleted_or_new_lock_affects_everything(locked):
    locked.remove("uv.lock")
    assert reasons(locked)["web"] == ["uv.lock was deleted: every member is affected"]
    locked.git("rm", "-q", "--cached", "uv.lock")
    locked.commit("no lock")
    locked.write("uv.lock", render())
    assert reasons(locked)["web"] == [
        "uv.lock did not exist at the merge base: every member is affected"
    ]


def test_a_lock_in_another_layout_is_read_with_tomllib(locked):
    text = render(with_("urllib3", "9.0")).replace(
        'dependencies = [\n    { name = "certifi" },\n    { name = "urllib3" },\n]',
        'dependencies = [{ name = "certifi" }, { name = "urllib3" }]',
    )
    assert 'dependencies = [{ name = "certifi" }' in text
    locked.write("uv.lock", text)
    assert set(reasons(locked)) == {"app", "web"}


def test_the_fast_reader_agrees_with_tomllib():
    lock = _lock.parse_lock(render())
    for package in lock.packages:
        body = _lock._BULKY.sub("", package.text.split("\n[package.metadata]", 1)[0])
        assert _lock._fast(body) == _lock._slow(body, "uv.lock", package)


needs_uv = pytest.mark.skipif(shutil.which("uv") is None, reason="missing service: uv")


def uv_lock(repo, *args):
    result = subprocess.run(
        ["uv", "lock", "--quiet", *args],
        cwd=repo.path,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode and ("network" in result.stderr.lower() or "dns" in result.stderr.lower()):
        pytest.skip(f"uv lock needs the package index: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr


@needs_uv
def test_real_uv_lock_upgrades_and_removal(repo):
    """Real `uv lock` runs: a transitive upgrade, a direct upgrade, a removed package."""
    extra = 'requires-python = ">=3.11"\n'
    repo.member("packages/app", "app", ("python-dateutil",), extra="")
    repo.member(
        "packages/web", "web", ("idna",), extra='[dependency-groups]\ndev = ["iniconfig"]\n'
    )
    repo.member(
        "packages/site", "site", ("app",), extra="[tool.uv.sources]\napp = { workspace = true }\n"
    )
    for name in ("app", "web", "site"):
        path = repo.path / "packages" / name / "pyproject.toml"
        path.write_text(
            path.read_text().replace('version = "0.1.0"\n', f'version = "0.1.0"\n{extra}')
        )
    old = "--exclude-newer=2023-01-01T00:00:00Z"
    new = "--exclude-newer=2025-01-01T00:00:00Z"
    uv_lock(repo, old)
    start = repo.commit("locked")
    uv_lock(repo, new, "--upgrade-package", "six")
    six = repo.commit("six")
    uv_lock(repo, new, "--upgrade-package", "idna")
    idna = repo.commit("idna")

    data = repo.affected("--base", start, "--head", six)
    assert data["affected"] == ["app", "site"]
    assert data["reasons"]["app"] == ["uv.lock: six 1.16.0 -> 1.17.0, via python-dateutil"]
    assert data["reasons"]["site"] == ["depends on app"]

    data = repo.affected("--base", six, "--head", idna)
    assert data["affected"] == ["web"]
    assert data["reasons"]["web"][0].startswith("uv.lock: idna 3.4 -> 3.")
    assert data["reasons"]["web"][0].endswith(", a direct dependency")

    repo.write(
        "packages/web/pyproject.toml",
        (repo.path / "packages/web/pyproject.toml")
        .read_text()
        .replace('dev = ["iniconfig"]', "dev = []"),
    )
    uv_lock(repo, new)
    data = repo.affected("--base", idna)
    assert data["affected"] == ["web"]
    assert "uv.lock: iniconfig 1.1.1 removed, a direct dependency" in data["reasons"]["web"]


REGISTRY = '{ registry = "https://pypi.org/simple" }'


def forked(old):
    """A lock with numpy at two versions (a fork on the Python version), as uv writes it."""

    def entry(version, marker=""):
        marker = f', marker = "{marker}"' if marker else ""
        return f'    {{ name = "numpy", version = "{version}", source = {REGISTRY}{marker} }},\n'

    def block(version, marker):
        return (
            f'\n[[package]]\nname = "numpy"\nversion = "{version}"\nsource = {REGISTRY}\n'
            f'resolution-markers = [\n    "{marker}",\n]\n'
            f'sdist = {{ url = "https://files.example/numpy-{version}.tar.gz", '
            f'hash = "sha256:{version}", size = 1 }}\n'
        )

    old_marker, new_marker = "python_full_version < '3.12'", "python_full_version >= '3.12'"
    return (
        'version = 1\nrevision = 3\nrequires-python = ">=3.10"\n'
        '\n[[package]]\nname = "a"\nversion = "0.1.0"\nsource = { editable = "packages/a" }\n'
        f"dependencies = [\n{entry(old, old_marker)}{entry('2.0.0', new_marker)}]\n"
        '\n[[package]]\nname = "b"\nversion = "0.1.0"\nsource = { editable = "packages/b" }\n'
        f"dependencies = [\n{entry('2.0.0')}]\n"
        + block(old, old_marker)
        + block("2.0.0", new_marker)
    )


def test_forked_versions_are_told_apart(repo):
    repo.member("packages/a", "a", ("numpy",))
    repo.member("packages/b", "b", ("numpy",))
    repo.write("uv.lock", forked("1.26.0"))
    repo.commit("init")
    repo.write("uv.lock", forked("1.26.4"))
    # b locks only numpy 2.0.0, which did not change; a's own block changed only in the
    # version it pins, which the numpy change already explains
    assert reasons(repo) == {"a": ["uv.lock: numpy 1.26.0 -> 1.26.4, a direct dependency"]}
    lock = _lock.parse_lock(forked("1.26.0"))
    assert [p.version for p in lock.packages if p.name == "numpy"] == ["1.26.0", "2.0.0"]
