"""The few git questions yard asks, through the ``git`` command (never the network)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import NamedTuple

from ._errors import GitError

_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")


class Change(NamedTuple):
    """The files changed between a merge base and a head (or the working tree)."""

    merge_base: str
    files: tuple[str, ...]
    """Changed paths relative to the workspace root, sorted; renames give both ends."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # a read-only question must not take the index lock
    env["LC_ALL"] = "C"
    return env


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, env=_env(), check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None


def _fail(root: Path, result: subprocess.CompletedProcess[bytes], ref: str) -> GitError:
    message = result.stderr.decode(errors="replace").strip()
    first = message.splitlines()[0] if message else ""
    if "not a git repository" in message.lower():
        return GitError(f"{root} is not inside a git repository; yard affected compares git refs")
    if "not a valid object name" in message.lower() or "bad revision" in message.lower():
        return GitError(f"unknown git ref {ref!r}; check the name (git branch -a, git tag)")
    return GitError(
        f"git failed: {first.removeprefix('fatal: ') or 'exit ' + str(result.returncode)}"
    )


def merge_base(root: Path, base: str, head: str) -> str:
    """The merge base commit of ``base`` and ``head``, with one-line errors for bad refs,
    a folder outside git, and a shallow clone that lacks the merge base."""
    _check_refs(base, head)
    return _merge_base_answer(root, base, head, _run(root, "merge-base", base, head))


def _check_refs(*refs: str) -> None:
    for ref in refs:
        if not ref or ref.startswith("-"):
            raise GitError(f"invalid git ref {ref!r}")


def _merge_base_answer(
    root: Path, base: str, head: str, result: subprocess.CompletedProcess[bytes]
) -> str:
    if result.returncode == 0:
        return result.stdout.decode().strip()
    if result.returncode == 1 and not result.stderr.strip():
        shallow = _run(root, "rev-parse", "--is-shallow-repository").stdout.strip() == b"true"
        if shallow:
            raise GitError(
                f"shallow clone: the merge base of {base} and {head} is not in the fetched "
                "history; fetch more (git fetch --deepen=N or --unshallow, or fetch-depth: 0 in CI)"
            )
        raise GitError(f"{base} and {head} have no common history (no merge base)")
    bad = base
    if "not a valid object name" in result.stderr.decode(errors="replace").lower():
        check = _run(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
        bad = base if check.returncode else head
    raise _fail(root, result, bad)


class PendingChange:
    """The git processes that answer what changed, all started at once so that they run
    while yard reads the workspace; :meth:`result` waits for them.

    ``git diff --merge-base`` diffs from the merge base without waiting for ``git merge-base``,
    which runs beside it (its answer names the base in the output and finds the old uv.lock).
    """

    __slots__ = ("_base", "_diff", "_head", "_merge_base", "_root", "_untracked")

    def __init__(self, root: Path, base: str, head: str | None) -> None:
        _check_refs(base, head or "HEAD")
        self._root = root
        self._base = base
        self._head = head
        cmd = ["git", "-C", str(root)]
        diff = ["diff", "--name-status", "-z", "-M", "--relative", "--no-ext-diff", "--no-color"]
        diff += ["--merge-base", base] if head is None else ["--merge-base", base, head]
        env = _env()

        def spawn(*args: str) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )

        try:
            self._merge_base = spawn("merge-base", base, head or "HEAD")
            self._diff = spawn(*diff)
            self._untracked = (
                spawn("ls-files", "-z", "--others", "--exclude-standard") if head is None else None
            )
        except FileNotFoundError:
            raise GitError("git is not installed or not on PATH") from None

    def close(self) -> None:
        """Stop the git processes if nobody asked for their result (an error came first)."""
        for process in (self._merge_base, self._diff, self._untracked):
            if process is not None and process.returncode is None:
                process.kill()
                process.communicate()

    def result(self) -> Change:
        """The changed files; raises GitError if git failed."""
        mb_out, mb_err = self._merge_base.communicate()
        answer = subprocess.CompletedProcess([], self._merge_base.returncode, mb_out, mb_err)
        mb = _merge_base_answer(self._root, self._base, self._head or "HEAD", answer)
        out, err = self._diff.communicate()
        files: set[str] = set()
        if self._untracked is not None:
            u_out, u_err = self._untracked.communicate()
            if self._untracked.returncode:
                raise _fail(self._root, subprocess.CompletedProcess([], 1, u_out, u_err), "")
            files.update(p for p in u_out.decode("utf-8", "surrogateescape").split("\0") if p)
        if self._diff.returncode:
            failed = subprocess.CompletedProcess([], self._diff.returncode, out, err)
            raise _fail(self._root, failed, self._head or "HEAD")
        files.update(_parse_name_status(out))
        return Change(merge_base=mb, files=tuple(sorted(files)))


def changed_files(root: Path, base: str, head: str | None) -> Change:
    """Files changed since the merge base of ``base`` and ``head`` (default HEAD).

    Without ``head`` the working tree counts too: commits since the merge base, staged and
    unstaged changes, and untracked files that git does not ignore. Renames give both paths,
    deletions count. Paths are relative to ``root`` (which may be below the git top level).
    """
    return PendingChange(root, base, head).result()


def _parse_name_status(out: bytes) -> list[str]:
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    paths: list[str] = []
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i]
        if status[:1] in ("R", "C"):
            paths.extend(fields[i + 1 : i + 3])
            i += 3
        else:
            paths.append(fields[i + 1])
            i += 2
    return paths


def show(root: Path, commit: str, path: str) -> str | None:
    """The text of ``path`` (relative to ``root``) at ``commit``, or None if it did not exist."""
    result = _run(root, "show", f"{commit}:./{path}")
    if result.returncode:
        return None
    return result.stdout.decode("utf-8", "replace")
