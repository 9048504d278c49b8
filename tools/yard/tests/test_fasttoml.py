"""The fast TOML reader returns exactly what tomllib returns, or leaves the text to tomllib."""

from __future__ import annotations

import random
import textwrap
import tomllib
from pathlib import Path

import pytest
from yard._fasttoml import loads

PLAIN = textwrap.dedent(
    """\
    # a comment line
    [project]
    name = "Foo_Bar"   # a comment after a value
    version = '1.0'
    dependencies = [
        "a>=1",  # inside an array
        'b ; python_version < "3.12"',

        "c[x,y]",
    ]
    requires-python=">=3.11"
    dynamic = []
    "quoted key" = "x"
    'literal.key' = ""
    unicode = "héllo ☃"

    [project.optional-dependencies]
    fast = ["orjson"]
    [project.entry-points."switchyard.actions"]
    hello = "pkg.mod:attr"

    [ tool . uv . sources ]
    a = { workspace = true }
    b = {path="../b",editable=false}
    c = { }
    d = [{ index = "x" }, { git = "https://x", rev = "v1", marker = "sys_platform == 'linux'" }]

    [tool.ruff]
    line-length = 100
    big = 1_000_000
    signed = [-1, +2, 0]
    nested = [[1, 2], ["a"], [],]
    flags = [true, false]

    [dependency-groups]
    dev = ["pytest", { include-group = "lint" }]
    lint = ["ruff"]
    [tool.yard.global-inputs]
    ".ci/**" = "all"
    "docker/*" = ["worker"]
    [a.b.c]
    [a.b]
    x = 1
    [a]
    y = 2
    """
)


def test_plain_pyproject_toml_is_read_like_tomllib():
    assert loads(PLAIN) == tomllib.loads(PLAIN)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n# only comments\n   # indented\n",
        "a = 1",
        "a = 1 # no newline at the end",
        "a = 1\n   ",
        "a = 1\n# comment at the end",
        "x=true#c\ny=false\n",
        "[t]",
        '[""]\n"" = 1\n',
        "a = [\n  # comment\n]\n",
        "a = [1,\n2 # two\n,3]\n",
        "a = {b = [\n1,\n2]}\n",
        "a = -0\nb = +0\nc = 0\n",
        "[a]\n[a.b]\n[c.d]\n[c]\n",
    ],
)
def test_edge_cases_of_the_subset(text):
    assert loads(text) == tomllib.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        'a = "x\\ty"',  # escapes
        'a = """x"""',  # multi-line strings
        "a = '''x'''",
        "a = 1.5",
        "a = 1e3",
        "a = 0x1f",
        "a = inf",
        "a = 1979-05-27",
        "a.b = 1",  # dotted keys
        "[[t]]\na = 1\n",  # arrays of tables
        "a = 1\r\n",  # CRLF
    ],
)
def test_valid_toml_outside_the_subset_is_left_to_tomllib(text):
    tomllib.loads(text)  # valid
    assert loads(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "a = 1\na = 2\n",
        'a = 1\n"a" = 2\n',
        "[t]\n[t]\n",
        "[t]\na = 1\n[t.a]\n",
        "t = {}\n[t]\n",
        "t = {a = 1}\n[t.b]\n",
        "t = []\n[t]\n",
        "[a.b]\n[a]\nb = 1\n",
        "a = {b = 1,}\n",
        "a = {b = 1\n}\n",
        "a = {b = 1, b = 2}\n",
        "a = [1,,2]\n",
        "a = [,]\n",
        "a = [1 2]\n",
        "a = [1\n",
        'a = "unclosed\n',
        "a = trueish\n",
        "a = True\n",
        "a = 01\n",
        "a = 1__0\n",
        "a = 1_\n",
        "a = +\n",
        "a =\n1\n",
        "a = \n",
        "a = 1 b = 2\n",
        "[t] a = 1\n",
        "[t]]\n",
        "[t\n",
        "a = 'x'y\n",
        'a = "x\x01"\n',
        "# comment \x7f\n",
        "a = 1\rb = 2\n",
        "\ufeffa = 1\n",
        "= 1\n",
        "a b = 1\n",
    ],
)
def test_invalid_toml_is_never_read(text):
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(text)
    assert loads(text) is None


def _corpus() -> list[str]:
    """This workspace's own pyproject files (the root's is outside the subset)."""
    root = Path(__file__).resolve().parents[3]
    found = [root / "pyproject.toml"]
    for pattern in ("packages/*", "packages/modules/*", "services/*", "tools/*"):
        found.extend(sorted(root.glob(f"{pattern}/pyproject.toml")))
    return [PLAIN, *(p.read_text(encoding="utf-8") for p in found)]


def test_real_pyprojects_are_read_like_tomllib():
    read = [loads(text) == tomllib.loads(text) for text in _corpus()]
    assert read.count(True) >= len(read) - 1


def test_damaged_files_are_read_like_tomllib_or_left_to_it():
    """Random one-character damage to real files: the reader either agrees with tomllib or
    returns None; it never accepts what tomllib rejects, nor reads something else."""
    rng = random.Random(1)
    alphabet = "\"'[]{}=,.#\n \t-_+0a1\\\r\x01"
    read = 0
    for text in _corpus():
        for _ in range(150):
            at = rng.randrange(len(text) + 1)
            cut = at + rng.choice((0, 0, 1))
            damaged = text[:at] + rng.choice(alphabet) * rng.choice((0, 1, 1, 2)) + text[cut:]
            try:
                expected = tomllib.loads(damaged)
            except tomllib.TOMLDecodeError:
                assert loads(damaged) is None, damaged
                continue
            fast = loads(damaged)
            if fast is not None:
                read += 1
                assert fast == expected, damaged
    assert read > 1000  # the damage mostly left files the reader does read
