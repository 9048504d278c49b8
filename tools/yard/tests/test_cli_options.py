"""The global options (--root, --debug) work before and after every command, as --help shows."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from yard._cli import _parser, _quick_affected, main

# One line per command --help lists: the arguments it needs to parse.
COMMANDS: dict[tuple[str, ...], list[str]] = {
    ("list",): [],
    ("graph",): [],
    ("deps",): ["a"],
    ("dependents",): ["a"],
    ("order",): [],
    ("affected",): ["--base", "HEAD"],
    ("check",): [],
    ("new",): ["plugin", "x"],
    ("build",): ["a"],
    ("cache", "info"): [],
    ("cache", "prune"): ["--max-size", "1G"],
    ("slice",): ["--consumer", "a", "--out", "o"],
    ("test",): [],
}


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set:
    """Every command (and sub-command) the parser knows, read from the parser itself."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = _command_paths(sub, (*prefix, name))
                found |= inner or {(*prefix, name)}
    return found


def test_the_table_covers_every_command():
    assert _command_paths(_parser()) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=" ".join)
@pytest.mark.parametrize("where", ["before", "after", "both"])
def test_root_and_debug_parse_before_and_after_the_command(command, where):
    words = [*command, *COMMANDS[command]]
    if where == "before":
        argv = ["--root", "WS", "--debug", *words]
    elif where == "after":
        argv = [*words, "--root", "WS", "--debug"]
    else:  # the later one wins, as for any repeated option
        argv = ["--root", "OUTER", *words, "--root", "WS", "--debug"]
    args = _parser().parse_args(argv)
    assert args.root == Path("WS")
    assert args.debug is True
    plain = _parser().parse_args(words)
    assert plain.root is None
    assert plain.debug is False


@pytest.mark.parametrize(
    "argv",
    [
        ["--root", "WS", "affected", "--base", "main"],
        ["--debug", "--root=WS", "affected", "--base", "main", "--json"],
        ["--root", "OUTER", "affected", "--base", "main", "--root", "WS"],
    ],
)
def test_the_quick_affected_reader_takes_global_options_first(argv):
    quick = _quick_affected(argv)
    assert quick is not None
    assert vars(quick) == vars(_parser().parse_args(argv))
    assert quick.root == Path("WS")


@pytest.fixture
def elsewhere(chain, tmp_path, monkeypatch):
    """The chain workspace, run from a folder that is in no workspace."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    return chain


def run(repo, *argv):
    return repo.yard(*argv, root=False)


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["list"], "base"),
        (["graph"], "leaf 0.1.0  packages/leaf\n  -> mid  (dependency)"),
        (["deps", "leaf"], "base\nmid"),
        (["dependents", "base"], "leaf\nmid"),
        (["order"], "wave 1: base other"),
        (["affected", "--base", "HEAD~0", "--json"], '"merge_base"'),
        (["check"], "4 member(s)"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else "",
)
def test_root_reads_that_workspace_wherever_it_is_given(elsewhere, words, expected, where):
    ws = str(elsewhere.path)
    argv = ["--root", ws, *words] if where == "before" else [*words, "--root", ws]
    result = run(elsewhere, *argv)
    assert result.code == 0, result.err
    assert expected in result.out


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize(
    "words",
    [["build", "nope"], ["slice", "--consumer", "nope", "--out", "o"]],
    ids=lambda v: v[0],
)
def test_root_reads_that_workspace_for_build_and_slice(elsewhere, words, where):
    ws = str(elsewhere.path)
    argv = ["--root", ws, *words] if where == "before" else [*words, "--root", ws]
    result = run(elsewhere, *argv)
    assert result.code == 2
    assert result.err == (
        "yard: error: no workspace member named 'nope' (members: base, leaf, mid, other)\n"
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_root_reads_that_workspace_for_new(elsewhere, where):
    elsewhere.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n\n'
        '[tool.yard.templates.only-here]\nsource = "t"\ndestination = "packages/{name}"\n',
    )
    ws = str(elsewhere.path)
    words = ["new", "nope", "x"]
    argv = ["--root", ws, *words] if where == "before" else [*words, "--root", ws]
    result = run(elsewhere, *argv)
    assert result.err == "yard: error: no template named 'nope' (templates: only-here)\n"


@pytest.mark.parametrize("where", ["before", "after"])
def test_root_outside_any_workspace_fails_in_one_line(elsewhere, tmp_path, where):
    words = ["list"]
    bad = str(tmp_path / "nowhere")
    argv = ["--root", bad, *words] if where == "before" else [*words, "--root", bad]
    result = run(elsewhere, *argv)
    assert result.code == 2
    message = f"{bad}: no pyproject.toml here; pass the workspace root to --root"
    assert result.err == f"yard: error: {message}\n"


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize(
    "words",
    [["deps", "nope"], ["affected", "--base", "HEAD"], ["cache", "prune", "--max-size", "lots"]],
    ids=lambda v: v[0],
)
def test_debug_shows_the_traceback_wherever_it_is_given(elsewhere, words, where):
    ws = str(elsewhere.path)
    if words[0] == "affected":  # the quick reader: an error from the workspace
        elsewhere.write("packages/base/pyproject.toml", "[project\n")
    plain = run(elsewhere, "--root", ws, *words)
    assert plain.code == 2
    assert plain.err.startswith("yard: error: ")
    assert plain.err.count("\n") == 1
    argv = ["--debug", "--root", ws, *words] if where == "before" else [*words, "--root", ws]
    if where == "after":
        argv.append("--debug")
    with pytest.raises(Exception) as raised:
        main(argv)
    assert str(raised.value) in plain.err


def test_help_shows_the_global_options_before_and_after_the_command():
    before = subprocess.run(
        [sys.executable, "-m", "yard", "--help"], capture_output=True, text=True, check=True
    ).stdout
    after = subprocess.run(
        [sys.executable, "-m", "yard", "list", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert before.startswith("usage: yard [-h] [--root ROOT] [--debug] COMMAND")
    assert after.startswith("usage: yard list [-h] [--root ROOT] [--debug]")
