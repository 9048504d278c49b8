from __future__ import annotations

import json

import pytest
import switchyard

MATH = {"math.add": "sytest_math:add", "math.echo_context": "sytest_math:echo_context"}


@pytest.fixture
def math(plugins):
    return plugins.add(
        "sytest-math", "1.0.0", actions=MATH, modules={"sytest_math": plugins.source("math")}
    )


@pytest.fixture
def loud(plugins):
    """A plugin whose import fails (and would print): listing must not import it."""
    return plugins.add(
        "sytest-loud",
        actions={"loud.shout": "sytest_loud:shout"},
        modules={"sytest_loud": "print('IMPORTED')\nraise RuntimeError('loud plugin imported')\n"},
    )


@pytest.fixture
def run(capsys, monkeypatch, tmp_path):
    """Run the CLI in this process (fast): returns (exit code, stdout, stderr)."""
    from switchyard._cli import main

    monkeypatch.chdir(tmp_path)

    def invoke(*args, stdin=None):
        if stdin is not None:
            import io

            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        switchyard.set_default_registry(None)
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_actions_list_imports_no_plugin(cli, plugins, math, loud):
    result = cli("actions", "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [a["name"] for a in listed] == ["loud.shout", "math.add", "math.echo_context"]
    assert listed[1]["distribution"] == "sytest-math"
    assert listed[1]["dist_version"] == "1.0.0"
    assert plugins.imported() == []
    assert "IMPORTED" not in result.stdout + result.stderr

    table = cli("actions", "list")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["NAME", "DISTRIBUTION", "QUEUE"]
    assert "math.add" in table.stdout
    assert "sytest-math" in table.stdout
    assert plugins.imported() == []


def test_actions_show(run, math):
    code, out, _ = run("actions", "show", "math.add")
    assert code == 0
    assert out.startswith("math.add: Add two integers.")
    assert "sytest-math 1.0.0" in out
    assert "input schema" in out
    code, out, _ = run("actions", "show", "math.add", "--json")
    shown = json.loads(out)
    assert shown["input_schema"]["required"] == ["a", "b"]
    assert shown["queue"] == "fast"


def test_call_prints_output_json(run, math, tmp_path):
    code, out, err = run("call", "math.add", "--data", '{"a": 1, "b": 2}')
    assert code == 0, err
    assert json.loads(out) == {"total": 3}
    data = tmp_path / "in.json"
    data.write_text('{"a": 5, "b": 5}')
    assert json.loads(run("call", "math.add", "--data", f"@{data}")[1]) == {"total": 10}
    piped = run("call", "math.add", "--data", "@-", stdin='{"a": 1, "b": 1}')
    assert json.loads(piped[1]) == {"total": 2}
    echoed = run("call", "math.echo_context", "--data", '{"a":0,"b":0}')
    assert json.loads(echoed[1]) == {"total": 1}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"a": 1, "b": -1}', "error: invalid input for math.add: b: Input should be greater"),
        ('{"a": 1}', "error: invalid input for math.add: b: Field required"),
        ('{"a": 1, "b": 1, "c": 1}', "error: invalid input for math.add: c: Extra inputs"),
        ("{oops", "error: --data is not valid JSON: Expecting property name enclosed in double"),
        ("[1, 2]", "error: --data must be a JSON object of the action's input, not a list"),
        (None, "error: invalid input for math.add: a: Field required"),
    ],
)
def test_call_bad_input_exits_1_naming_the_field(run, math, data, expected):
    args = ["call", "math.add"] + (["--data", data] if data is not None else [])
    code, out, err = run(*args)
    assert code == 1
    assert one_line(err).startswith(expected)
    assert out == ""


def test_call_bad_input_in_a_real_process(cli, math):
    result = cli("call", "math.add", "--data", '{"a": 1, "b": "two"}')
    assert result.returncode == 1
    assert one_line(result.stderr).startswith(
        "error: invalid input for math.add: b: Input should be a valid integer"
    )


def test_call_missing_data_file(run, math, tmp_path):
    code, _, err = run("call", "math.add", "--data", f"@{tmp_path}/nope.json")
    assert code == 1
    assert one_line(err).startswith(f"error: cannot read --data file {tmp_path}/nope.json")


def test_unknown_action_exits_2_with_suggestions(run, math):
    code, _, err = run("call", "math.ad")
    assert code == 2
    assert one_line(err) == "error: unknown action 'math.ad' (did you mean: math.add?)"
    assert run("actions", "show", "math.sub")[0] == 2


def test_usage_errors_exit_2_in_one_line(run):
    code, _, err = run("call")
    assert code == 2
    assert one_line(err).startswith("error: the following arguments are required: NAME")
    assert run("actions")[0] == 2
    assert run("call", "math.add", "--bogus")[0] == 2


def test_broken_plugin_is_one_line_unless_debug(cli, math, loud):
    result = cli("call", "loud.shout")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(
        "error: cannot load action loud.shout from sytest-loud (sytest_loud:shout)"
    )
    assert "RuntimeError: loud plugin imported" in line
    debug = cli("call", "loud.shout", "--debug")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr


def test_doctor(cli, plugins, math):
    clean = cli("doctor")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ok: no problems found" in clean.stdout

    plugins.add("sytest-math-fork", actions={"math.add": "sytest_math:add"})
    plugins.add(
        "sytest-odd",
        actions={"odd.thing": "sytest_math:AddIn", "odd.missing": "sytest_gone:thing"},
    )
    result = cli("doctor")
    assert result.returncode == 1
    out = result.stdout
    assert "math.add is registered by more than one distribution" in out
    assert "sytest-math" in out
    assert "sytest-math-fork" in out
    assert "invalid plugin sytest-odd: entry point 'odd.thing'" in out
    assert "cannot load action odd.missing from sytest-odd" in out
    assert "3 problem(s) found" in out


def test_manifest_write_and_stale_manifest(cli, plugins, math, tmp_path):
    path = tmp_path / "manifest.json"
    result = cli("manifest", "write", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {path} (2 actions)"
    env = {"SWITCHYARD_MANIFEST": str(path)}
    doctor = cli("doctor", env=env)
    assert doctor.returncode == 0, doctor.stdout
    assert f"from manifest {path}" in doctor.stdout

    plugins.add(
        "sytest-geo",
        actions={"geo.add": "sytest_geo:add"},
        modules={"sytest_geo": plugins.source("geo")},
    )
    listing = cli("actions", "list", env=env)
    assert listing.returncode == 0
    assert "geo.add" in listing.stdout  # fell back to the entry points...
    assert "new distribution sytest-geo provides switchyard.actions" in listing.stderr  # ...loudly
    stale = cli("doctor", env=env)
    assert stale.returncode == 1
    assert "stale (new distribution sytest-geo provides switchyard.actions)" in stale.stdout


def test_manifest_write_fails_on_broken_plugin(cli, math, loud, tmp_path):
    result = cli("manifest", "write", str(tmp_path / "m.json"))
    assert result.returncode == 1
    assert "cannot load action loud.shout" in one_line(result.stderr)
    assert not (tmp_path / "m.json").exists()


def test_plugin_commands_load_lazily(cli, plugins, math):
    command = """
import os

with open(os.environ["SYTEST_IMPORT_LOG"], "a") as log:
    log.write(__name__ + "\\n")


def register(subparsers):
    hello = subparsers.add_parser("hello", help="say hello")
    hello.add_argument("who")
    hello.set_defaults(func=lambda args: print(f"hello {args.who}") or 0)
"""
    plugins.add(
        "sytest-cmd", commands={"hello": "sytest_cmd:register"}, modules={"sytest_cmd": command}
    )
    result = cli("hello", "world")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello world\n"
    assert plugins.imported() == ["sytest_cmd"]
    assert cli("actions", "list").returncode == 0
    assert plugins.imported() == ["sytest_cmd"]  # a core command does not load plugin commands
    assert "hello" in cli("--help").stdout


def test_listing_shows_the_routed_queue(run, math, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.switchyard]\ndefault-queue = "normal"\n\n'
        '[tool.switchyard.routing]\n"math.echo_*" = "slow"\n',
        encoding="utf-8",
    )
    code, out, _ = run("actions", "list", "--json")
    assert code == 0
    routed = {
        a["name"]: a["routed_queue"] for a in json.loads(out) if a["name"].startswith("math.")
    }
    # a routing rule wins; without one, metadata knows no hint, so the default queue
    assert routed == {"math.add": "normal", "math.echo_context": "slow"}
    code, out, _ = run("actions", "list")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert ["math.echo_context", "sytest-math", "slow"] in rows
    code, out, _ = run("actions", "show", "math.add", "--json")
    shown = json.loads(out)
    assert (shown["queue"], shown["routed_queue"]) == ("fast", "fast")  # the hint, once resolved


def test_a_closed_pipe_ends_quietly(tmp_path):
    import subprocess
    import sys

    reader = subprocess.Popen(
        [sys.executable, "-m", "switchyard", "actions", "show", "auth.hash_password"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )
    assert reader.stdout is not None
    reader.stdout.read(1)
    reader.stdout.close()  # like `| head -c1`
    _, err = reader.communicate(timeout=60)
    assert reader.returncode in (0, 1)
    assert b"BrokenPipe" not in err
    assert b"Traceback" not in err
