"""The few git questions yard asks, through the ``git`` command (never the network)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import subprocess

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


class _Result(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: bytes


class _Process:
    """A running git command whose output is read in full: the little of
    ``subprocess.Popen`` yard needs, on ``os.posix_spawnp`` where there is one (the
    subprocess module and what it imports cost a tenth of a warm ``yard affected``)."""

    __slots__ = ("_pid", "_pipes", "_popen", "_result")

    def __init__(self, args: list[str], env: dict[str, str], stdin: str | None = None) -> None:
        """Start ``args``; ``stdin`` is a file the command reads as its standard input (a file,
        not a pipe: nothing has to be written while the output is read)."""
        self._result: _Result | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._pid = 0
        self._pipes: tuple[int, int] = (-1, -1)
        try:
            if not hasattr(os, "posix_spawnp"):  # Windows
                import subprocess

                with open(stdin or os.devnull, "rb") as source:
                    self._popen = subprocess.Popen(
                        args, stdin=source, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
                    )
                return
            import signal

            out_read, out_write = os.pipe()  # both ends close in the child when it execs
            err_read, err_write = os.pipe()
            actions: list[tuple[Any, ...]] = [
                (os.POSIX_SPAWN_DUP2, out_write, 1),
                (os.POSIX_SPAWN_DUP2, err_write, 2),
            ]
            if stdin is not None:
                actions.append((os.POSIX_SPAWN_OPEN, 0, stdin, os.O_RDONLY, 0))
            try:
                self._pid = os.posix_spawnp(
                    args[0],
                    args,
                    env,
                    file_actions=actions,
                    setsigdef=(signal.SIGPIPE,),  # Python ignores it; git must not
                )
            except BaseException:
                os.close(out_read)
                os.close(err_read)
                raise
            finally:
                os.close(out_write)
                os.close(err_write)
            self._pipes = (out_read, err_read)
        except FileNotFoundError:
            raise GitError("git is not installed or not on PATH") from None

    def result(self) -> _Result:
        """Wait for the command; its exit status, standard output and error."""
        if self._result is None:
            if self._popen is not None:
                out, err = self._popen.communicate()
                self._result = _Result(self._popen.returncode, out, err)
            else:
                out, err = _read_both(*self._pipes)
                _, status = os.waitpid(self._pid, 0)
                self._result = _Result(os.waitstatus_to_exitcode(status), out, err)
        return self._result

    def stop(self) -> None:
        """Kill the command if it has not been waited for, and reap it."""
        if self._result is None:
            if self._popen is not None:
                self._popen.kill()
            else:
                import signal

                os.kill(self._pid, signal.SIGKILL)
            self.result()


def _read_both(out: int, err: int) -> tuple[bytes, bytes]:
    """Everything two pipes carry until both close, read as it comes (a full pipe must
    never block the command)."""
    import select

    chunks: dict[int, list[bytes]] = {out: [], err: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    left = 2
    while left:
        for fd, _ in poller.poll():
            data = os.read(fd, 1 << 16)
            if data:
                chunks[fd].append(data)
            else:
                poller.unregister(fd)
                os.close(fd)
                left -= 1
    return b"".join(chunks[out]), b"".join(chunks[err])


def _run(root: Path, *args: str) -> _Result:
    return _Process(["git", "-C", str(root), *args], _env()).result()


def run(root: Path, *args: str) -> _Result:
    """Run ``git -C root ARGS`` and wait for it: its exit status, output and error."""
    return _run(root, *args)


def run_with_input(root: Path, stdin: str, *args: str) -> _Result:
    """Like :func:`run`, with the file ``stdin`` as the command's standard input."""
    return _Process(["git", "-C", str(root), *args], _env(), stdin).result()


def failure(root: Path, result: _Result, ref: str) -> GitError:
    """The one-line error for a failed git command about ``ref``."""
    return _fail(root, result, ref)


def check_refs(*refs: str) -> None:
    """Refuse a ref git would read as an option."""
    _check_refs(*refs)


def _fail(root: Path, result: _Result, ref: str) -> GitError:
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


def _merge_base_answer(root: Path, base: str, head: str, result: _Result) -> str:
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
        self._merge_base = _Process([*cmd, "merge-base", base, head or "HEAD"], env)
        self._diff = _Process([*cmd, *diff], env)
        self._untracked = (
            _Process([*cmd, "ls-files", "-z", "--others", "--exclude-standard"], env)
            if head is None
            else None
        )

    def close(self) -> None:
        """Stop the git processes if nobody asked for their result (an error came first)."""
        for process in (self._merge_base, self._diff, self._untracked):
            if process is not None:
                process.stop()

    def result(self) -> Change:
        """The changed files; raises GitError if git failed."""
        mb = _merge_base_answer(
            self._root, self._base, self._head or "HEAD", self._merge_base.result()
        )
        diff = self._diff.result()
        files: set[str] = set()
        if self._untracked is not None:
            untracked = self._untracked.result()
            if untracked.returncode:
                raise _fail(self._root, untracked, "")
            files.update(
                p for p in untracked.stdout.decode("utf-8", "surrogateescape").split("\0") if p
            )
        if diff.returncode:
            raise _fail(self._root, diff, self._head or "HEAD")
        files.update(_parse_name_status(diff.stdout))
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
