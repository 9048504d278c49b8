"""The shortcuts yard takes for start-up speed give the answers of the general paths."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest
from yard import load_workspace
from yard._cli import _parser, _quick_affected
from yard._workspace import _matches


@pytest.mark.parametrize(
    "argv",
    [
        ["affected", "--base", "main"],
        ["affected", "--base=main", "--json"],
        ["affected", "--json", "--base", "origin/main", "--head", "HEAD~2", "--explain"],
        ["affected", "--base", "a", "--format", "github-matrix", "--shard", "2/3", "--debug"],
        ["affected", "--base", "a", "--base", "b", "--root", "some/where", "--format=names"],
        ["--root", ".", "affected", "--base", "main"],
        ["--debug", "--root", "x", "affected", "--root", "y", "--base", "main"],
    ],
)
def test_the_quick_affected_reading_matches_argparse(argv):
    quick = _quick_affected(argv)
    assert quick is not None
    assert vars(quick) == vars(_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["affected"],  # no --base: argparse says so
        ["affected", "--bas", "main"],  # an abbreviation argparse accepts
        ["affected", "--base", "main", "--help"],
        ["affected", "--base", "main", "--format", "yaml"],
        ["affected", "--base", "main", "--head"],
        ["affected", "--base", "-x"],
        ["affected", "--base=", "--json"],
        ["affected", "--base", "main", "--json=yes"],
        ["affected", "--base", "main", "extra"],
        ["--json", "affected", "--base", "main"],  # a command's option before the command
        ["--root", ".", "list"],
        ["list"],
        [],
    ],
)
def test_anything_unusual_is_left_to_argparse(argv):
    assert _quick_affected(argv) is None


def test_argparse_still_reads_what_the_quick_path_leaves(chain):
    chain.write("packages/base/src/base/extra.py", "")
    assert chain.yard("affected", "--bas", "HEAD").lines() == ["base", "leaf", "mid"]
    bad = chain.yard("affected", "--base", "HEAD", "--format", "yaml")
    assert bad.code == 2
    assert "invalid choice: 'yaml'" in bad.err
    assert chain.yard("affected", "--json").err.startswith("yard: error: the following argument")


@pytest.mark.parametrize(
    "pattern",
    ["packages/*", "./packages/*", "packages//*", "packages/../packages/*", "nowhere/*"],
)
def test_a_folder_listing_pattern_matches_like_glob(tmp_path: Path, pattern: str):
    for name in ("b", "a", ".hidden", "Z", "with space"):
        (tmp_path / "packages" / name).mkdir(parents=True)
    (tmp_path / "packages" / "file.txt").write_text("a file matches a glob too\n")
    (tmp_path / "packages" / "link").symlink_to(tmp_path / "packages" / "a")
    root = str(tmp_path)
    expected = [
        os.path.normpath(os.path.relpath(m, root))
        for m in sorted(glob.glob(f"{root}/{pattern}", recursive=True, include_hidden=True))
    ]
    assert _matches(root, pattern) == expected


def test_the_cached_workspace_follows_new_and_removed_members(repo):
    repo.member("packages/a", "a")
    repo.member("packages/b", "b", ("a",))
    assert list(load_workspace(repo.path).members) == ["a", "b"]
    repo.member("packages/c", "c", ("b",))
    assert load_workspace(repo.path).members["c"].depends_on == ["b"]
    repo.remove("packages/a/pyproject.toml")
    repo.write("packages/a/pyproject.toml", '[project]\nname = "a2"\nversion = "1"\n')
    assert list(load_workspace(repo.path).members) == ["a2", "b", "c"]
    assert load_workspace(repo.path).members["b"].edges == ()


def test_a_path_source_is_compared_on_disk_every_time(repo):
    """Whether a ``path`` source names a member depends on symlinks, not only on file
    contents: such a workspace is not kept whole in the cache."""
    repo.member("packages/a", "a")
    repo.member("packages/other", "other-lib")
    repo.member(
        "packages/b",
        "b",
        ("a",),
        extra='[tool.uv.sources]\na = { path = "../../vendor/a" }\n',
    )
    (repo.path / "vendor").mkdir()
    (repo.path / "vendor" / "a").symlink_to(repo.path / "packages" / "a")
    assert [e.to for e in load_workspace(repo.path).members["b"].edges] == ["a"]
    (repo.path / "vendor" / "a").unlink()
    (repo.path / "vendor" / "a").symlink_to(repo.path / "packages" / "other")
    assert load_workspace(repo.path).members["b"].edges == ()


def test_member_directory_is_the_absolute_folder(repo):
    repo.write(
        "pyproject.toml",
        '[project]\nname = "top"\nversion = "1"\n\n[tool.uv.workspace]\nmembers = ["packages/*"]\n',
    )
    repo.member("packages/a", "a")
    members = load_workspace(repo.path).members
    assert members["a"].directory == repo.path / "packages" / "a"
    assert members["top"].directory == repo.path


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from yard import _workspace

    reads: list[str] = []
    real = _workspace._read

    def counting(path: str) -> bytes:
        reads.append(os.path.relpath(path))
        return real(path)

    monkeypatch.setattr(_workspace, "_read", counting)
    return reads


def test_a_settled_file_is_known_by_its_stat_and_any_write_is_seen(repo, monkeypatch):
    monkeypatch.setattr("yard._snapshot._SETTLED_NS", 0)  # every file counts as settled
    repo.member("packages/a", "a")
    repo.member("packages/b", "b", ("a",))
    repo.member("packages/c", "c")
    load_workspace(repo.path)
    reads = _count_reads(monkeypatch)
    monkeypatch.chdir(repo.path)
    assert load_workspace(repo.path).members["b"].depends_on == ["a"]
    assert reads == ["pyproject.toml"]  # the members were known by their stat
    b = repo.path / "packages" / "b" / "pyproject.toml"
    before = b.stat()
    b.write_text(b.read_text().replace('["a"]', '["c"]'))  # same size, same mtime below
    os.utime(b, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert b.stat().st_size == before.st_size
    assert load_workspace(repo.path).members["b"].depends_on == ["c"]


def test_a_freshly_written_file_is_read_again(repo, monkeypatch):
    """Two writes within one timestamp tick look alike: a file changed in the last seconds
    is never known by its stat."""
    repo.member("packages/a", "a")
    load_workspace(repo.path)
    reads = _count_reads(monkeypatch)
    monkeypatch.chdir(repo.path)
    load_workspace(repo.path)
    assert reads == ["pyproject.toml", "packages/a/pyproject.toml"]


def test_entry_point_loops_are_no_cycle_but_declared_ones_of_any_kind_are(repo):
    """The quick cycle test (Kahn's walk) and the component finder agree."""
    repo.member("packages/host", "host", extra='[tool.yard]\nconsumes = ["plugins"]\n')
    repo.member(
        "packages/plugin",
        "plugin",
        ("host",),
        extra='[project.entry-points.plugins]\np = "plugin:p"\n',
    )
    repo.member("packages/x", "x", ("y",))
    repo.member("packages/y", "y", extra='[dependency-groups]\ndev = ["x"]\n')
    assert repo.yard("order", "--json").json()["cycles"] == [["x", "y"]]
    repo.member("packages/y", "y")
    assert repo.yard("order", "--json").json()["cycles"] == []
    assert repo.yard("deps", "host").out.split() == ["plugin"]
    assert repo.yard("deps", "plugin").out.split() == ["host"]


def test_git_output_larger_than_a_pipe_buffer_comes_through_whole(chain):
    names = [f"packages/other/data/{'x' * 60}-{i:04d}.txt" for i in range(1500)]  # ~100 KB
    for name in names:
        chain.write(name, "")
    data = chain.affected("--base", "HEAD")
    assert data["changed_files"] == sorted(names)
    assert data["affected"] == ["other"]


def test_a_warm_affected_run_does_not_import_subprocess(chain):
    code = (
        "import sys, contextlib, io\n"
        "from yard._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['affected', '--base', 'HEAD', '--root', {str(chain.path)!r}]) == 0\n"
        "print('subprocess' in sys.modules, 'argparse' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "False"]
