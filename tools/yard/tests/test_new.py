"""``yard new``: templates declared in [tool.yard.templates], rendered into new members."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys

import pytest

ROOT_PYPROJECT = '[tool.uv.workspace]\nmembers = ["packages/*", "plugins/*"]\n'

PLUGIN_TABLE = """
[tool.yard.templates.plugin]
description = "a plugin"
source = "templates/plugin"
destination = "plugins/{name}"
distribution = "corp-{kebab}"
variables = { greeting = "hello from {import_name}" }
"""


@pytest.fixture
def templated(repo):
    """A workspace with one member and a `plugin` template exercising every rendering rule."""
    repo.member("packages/core", "core")
    repo.write("pyproject.toml", ROOT_PYPROJECT + PLUGIN_TABLE)
    repo.write(
        "templates/plugin/pyproject.toml.tmpl",
        '[project]\nname = "{dist}"\nversion = "0.1.0"\n'
        'dependencies = ["core"]\n\n[tool.uv.sources]\ncore = { workspace = true }\n',
    )
    repo.write(
        "templates/plugin/src/{import_name}/__init__.py.tmpl",
        '"""{greeting}: {Name} ({snake})."""\n\nimport core\n\n'
        'LITERAL = "{{name}}"\nKEPT = f"{value} {data.name} {{other}}"\n',
    )
    repo.write("templates/plugin/src/{import_name}/py.typed", "")
    repo.write("templates/plugin/NOTES.txt", "copied as is: {name}\n")
    script = repo.write("templates/plugin/bin/run-{name}.sh.tmpl", "#!/bin/sh\necho {name}\n")
    script.chmod(0o755)
    repo.write("templates/plugin/src/{import_name}/__pycache__/x.cpython-311.pyc", "junk")
    repo.commit("init")
    return repo


def test_new_renders_paths_and_tmpl_files_and_copies_the_rest(templated):
    result = templated.yard("new", "plugin", "order_history")
    assert result.code == 0, result.err
    dest = templated.path / "plugins/order_history"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "NOTES.txt",
        "bin/run-order_history.sh",
        "pyproject.toml",
        "src/corp_order_history/__init__.py",
        "src/corp_order_history/py.typed",
    ]
    init = (dest / "src/corp_order_history/__init__.py").read_text()
    assert init.startswith('"""hello from corp_order_history: OrderHistory (order_history)."""')
    assert 'LITERAL = "{name}"' in init  # {{var}} is a literal {var}
    assert 'KEPT = f"{value} {data.name} {{other}}"' in init  # other braces untouched
    assert (dest / "NOTES.txt").read_text() == "copied as is: {name}\n"
    assert 'name = "corp-order-history"' in (dest / "pyproject.toml").read_text()
    assert (dest / "bin/run-order_history.sh").stat().st_mode & stat.S_IXUSR
    assert "created plugins/order_history (corp-order-history, 5 files):" in result.out
    assert not (templated.path / ".yard").exists()  # the staging folder is gone


def test_the_new_folder_is_a_member_with_its_edges(templated):
    assert templated.yard("new", "plugin", "billing").code == 0
    graph = templated.yard("graph", "--format", "json").json()
    members = {m["name"]: m for m in graph["members"]}
    assert members["corp-billing"]["path"] == "plugins/billing"
    assert members["corp-billing"]["depends_on"] == ["core"]
    assert templated.yard("check").code == 0


def test_root_defaults_to_the_workspace_around_the_current_folder(templated, monkeypatch):
    monkeypatch.chdir(templated.path / "packages/core")
    assert templated.yard("new", "plugin", "geo", root=False).code == 0
    assert (templated.path / "plugins/geo/pyproject.toml").is_file()


def snapshot(repo):
    return sorted(
        p.relative_to(repo.path).as_posix()
        for p in repo.path.rglob("*")
        if ".git" not in p.relative_to(repo.path).parts
    )


@pytest.mark.parametrize(
    "name", ["Orders", "9lives", "order--history", "orders_", "a-", "a b", "é", ""]
)
def test_an_invalid_name_is_refused_saying_what_is_valid(templated, name):
    before = snapshot(templated)
    result = templated.yard("new", "plugin", name)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert f"invalid name {name!r} for template 'plugin': use a lowercase letter" in result.err
    assert snapshot(templated) == before


def test_a_name_too_long_is_refused(templated):
    result = templated.yard("new", "plugin", "x" * 65)
    assert result.code == 2
    assert result.err == f"yard: error: invalid name {'x' * 20!r}...: at most 64 characters\n"
    assert not (templated.path / "plugins").exists()


def test_an_existing_destination_is_refused(templated):
    assert templated.yard("new", "plugin", "geo").code == 0
    marker = templated.path / "plugins/geo/pyproject.toml"
    marker.write_text(marker.read_text() + "# edited\n")
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 2
    assert result.err == (
        "yard: error: plugins/geo already exists: choose another name or remove it first\n"
    )
    assert marker.read_text().endswith("# edited\n")


def test_an_existing_member_name_elsewhere_is_refused(templated):
    templated.member("packages/corp-geo", "corp-geo")
    before = snapshot(templated)
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 2
    assert "a workspace member named 'corp-geo' already exists in packages/corp-geo" in result.err
    assert snapshot(templated) == before


def test_an_unknown_template_lists_the_declared_ones(templated):
    result = templated.yard("new", "service", "geo")
    assert result.code == 2
    assert result.err == "yard: error: no template named 'service' (templates: plugin)\n"


def test_a_workspace_without_templates_says_how_to_declare_one(repo):
    repo.member("packages/core", "core")
    result = repo.yard("new", "plugin", "geo")
    assert result.code == 2
    assert "declare one in [tool.yard.templates]" in result.err


def with_table(repo, table):
    repo.write("pyproject.toml", ROOT_PYPROJECT + table)


def test_after_commands_run_in_the_root_with_variables(templated):
    code = "import pathlib, sys; pathlib.Path('after.txt').write_text(sys.argv[1])"
    table = PLUGIN_TABLE + f"after = [[{sys.executable!r}, '-c', {code!r}, '{{dist}}']]\n"
    with_table(templated, table)
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 0, result.err
    assert (templated.path / "after.txt").read_text() == "corp-geo"
    assert result.out.endswith(f"ran {shlex.join([sys.executable, '-c', code, 'corp-geo'])}\n")


def test_a_failing_after_command_removes_what_was_made(templated):
    code = "import sys; print('resolution failed: no index', file=sys.stderr); sys.exit(3)"
    with_table(templated, PLUGIN_TABLE + f"after = [[{sys.executable!r}, '-c', {code!r}]]\n")
    shutil.rmtree(templated.path / "plugins", ignore_errors=True)
    before = snapshot(templated)
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 2
    assert result.err.endswith("failed: resolution failed: no index; nothing was created\n")
    assert snapshot(templated) == before  # plugins/ itself, made for it, is gone too


def test_an_after_command_that_cannot_start_is_one_line(templated):
    with_table(templated, PLUGIN_TABLE + 'after = [["no-such-command-xyz"]]\n')
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 2
    assert "`no-such-command-xyz` could not run" in result.err
    assert not (templated.path / "plugins/geo").exists()


def test_a_destination_outside_the_member_globs_is_refused_and_removed(templated):
    with_table(templated, PLUGIN_TABLE.replace("plugins/{name}", "elsewhere/{name}"))
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 2
    assert "elsewhere/geo is not matched by [tool.uv.workspace] members" in result.err
    assert not (templated.path / "elsewhere").exists()


def test_a_template_whose_project_name_is_not_its_distribution_is_refused(templated):
    pyproject = templated.path / "templates/plugin/pyproject.toml.tmpl"
    pyproject.write_text(pyproject.read_text().replace('"{dist}"', '"corp-{name}-x"'))
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 2
    assert "names the project 'corp-geo-x', but the template declares distribution" in result.err
    assert not (templated.path / "plugins/geo").exists()


def test_real_uv_lock_takes_the_new_member_in(templated, monkeypatch):
    if shutil.which("uv") is None:  # pragma: no cover - uv runs this project's CI
        pytest.skip("missing service: uv (not on PATH)")
    for key in [k for k in os.environ if k.startswith("UV_")]:
        monkeypatch.delenv(key)  # the workspace under test, not the one running the tests
    with_table(templated, PLUGIN_TABLE + 'after = [["uv", "lock", "--offline", "--quiet"]]\n')
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 0, result.err
    lock = (templated.path / "uv.lock").read_text()
    assert 'name = "corp-geo"' in lock
    assert 'source = { virtual = "plugins/geo" }' in lock  # no build-system: virtual


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            PLUGIN_TABLE + 'colour = "red"\n',
            "pyproject.toml:10: [tool.yard.templates.plugin] has unknown key 'colour'",
        ),
        (PLUGIN_TABLE.replace('source = "templates/plugin"\n', ""), "needs source"),
        (PLUGIN_TABLE + 'after = ["uv lock"]\n', "after must be a list of commands"),
        (PLUGIN_TABLE + 'name-pattern = "(["\n', "name-pattern: bad regex"),
        (PLUGIN_TABLE.replace("plugins/{name}", "../{name}"), "must be a path inside"),
        (PLUGIN_TABLE.replace("plugins/{name}", "plugins/{nmae}"), "unknown variable {nmae}"),
        (PLUGIN_TABLE.replace("templates/plugin", "templates/nope"), "does not exist"),
        ("[tool.yard]\ntemplates = 3\n", "[tool.yard.templates] must be a table"),
        (
            PLUGIN_TABLE.replace('= { greeting = "hello', '= { greeting = "{nope} hello'),
            "plugin.variables.greeting: unknown variable {nope}",
        ),
    ],
)
def test_a_bad_template_declaration_is_one_line_naming_it(templated, table, message):
    with_table(templated, table)
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert message in result.err
    assert not (templated.path / "plugins/geo").exists()


def test_a_template_can_narrow_the_names(templated):
    table = PLUGIN_TABLE + 'name-pattern = "^[a-z]+$"\nname-help = "lowercase letters only"\n'
    with_table(templated, table)
    result = templated.yard("new", "plugin", "order_history")
    assert result.err == (
        "yard: error: invalid name 'order_history' for template 'plugin': "
        "use lowercase letters only\n"
    )
    assert templated.yard("new", "plugin", "orders").code == 0


def test_a_name_that_makes_a_keyword_import_name_is_refused(templated):
    with_table(templated, PLUGIN_TABLE.replace('"corp-{kebab}"', '"{name}"'))
    result = templated.yard("new", "plugin", "class")
    assert result.code == 2
    assert "the import name 'class' is not a Python identifier" in result.err


def test_a_failed_render_leaves_nothing_behind(templated):
    (templated.path / "templates/plugin/logo.png.tmpl").write_bytes(b"\x89PNG\xff\xfe")
    (templated.path / ".yard/cache").mkdir(parents=True)  # someone else's, kept
    before = snapshot(templated)
    result = templated.yard("new", "plugin", "geo")
    assert result.code == 2
    assert result.err == (
        "yard: error: template 'plugin': logo.png.tmpl is not UTF-8 text; "
        "drop its .tmpl suffix to copy it as it is\n"
    )
    assert snapshot(templated) == before
