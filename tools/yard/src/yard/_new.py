"""``yard new TEMPLATE NAME``: render a template that the workspace declares, as a new member.

The workspace declares its templates in the root pyproject, one table each::

    [tool.yard.templates.plugin]
    description = "an actions plugin"
    source = "templates/plugin"              # folder, relative to the root
    destination = "packages/modules/{name}"  # where the rendered folder goes
    distribution = "acme-{name}"             # the project name; gives {dist}, {import_name}
    name-pattern = "^[a-z][a-z0-9_]*$"       # optional: what NAME may be
    variables = { queue = "default" }        # optional: more variables, may use the others
    after = [["uv", "lock"]]                 # optional: commands run in the root afterwards

Every path below ``source`` is rendered: ``{name}`` and the other variables are replaced in
folder and file names. A file whose name ends in ``.tmpl`` is rendered too and loses the
suffix; other files are copied byte for byte (so a template's Python and TOML files are not
mistaken for the workspace's own code by linters and test runners). In rendered text a known
variable ``{var}`` is replaced, ``{{var}}`` stands for a literal ``{var}``, and every other
brace is left alone.

yard knows nothing of what a template is for: the workspace decides the names and the
commands. Nothing is written when anything fails: the folder is rendered under the root's
``.yard/new/`` and moved into place in one rename, and removed again if it does not load as a
workspace member or an ``after`` command fails.
"""

from __future__ import annotations

import errno
import keyword
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

from . import _toml
from ._errors import YardError
from ._names import normalize

DEFAULT_NAME_PATTERN: Final = r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$"
DEFAULT_NAME_HELP: Final = (
    "a lowercase letter, then lowercase letters and digits, "
    "words joined by single '-' or '_' (e.g. 'orders' or 'order_history')"
)
TEMPLATE_SUFFIX: Final = ".tmpl"
_MAX_NAME: Final = 64
_KEYS: Final = frozenset(
    {
        "description",
        "source",
        "destination",
        "distribution",
        "name-pattern",
        "name-help",
        "variables",
        "after",
    }
)
_SKIP: Final = frozenset({"__pycache__", ".DS_Store", ".mypy_cache", ".pytest_cache"})
_PLACEHOLDER: Final = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DIST_NAME: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


class Template(NamedTuple):
    """One ``[tool.yard.templates.NAME]`` table of the root pyproject."""

    name: str
    description: str
    source: Path
    destination: str
    distribution: str
    name_pattern: str
    name_help: str
    variables: Mapping[str, str]
    after: tuple[tuple[str, ...], ...]


class Created(NamedTuple):
    """What ``yard new`` made: the member's folder (relative to the root), its files, and
    the variables it was rendered with."""

    path: str
    files: tuple[str, ...]
    variables: Mapping[str, str]
    ran: tuple[str, ...] = ()
    """The ``after`` commands, as run (each a shell-style line, for people)."""


def templates(root: Path) -> dict[str, Template]:
    """The templates the workspace at ``root`` declares, by name (none is fine)."""
    data, text = _toml.load(root / "pyproject.toml", root)
    tables = data.get("tool", {}).get("yard", {}).get("templates", {})
    if not isinstance(tables, dict):
        raise _fail(text, "templates", "[tool.yard.templates] must be a table of templates")
    return {key: _template(root, key, table, text) for key, table in tables.items()}


def _fail(text: str, needle: str, message: str) -> YardError:
    return YardError(f"pyproject.toml:{_toml.line_of(text, needle)}: {message}")


def _template(root: Path, key: str, table: Any, text: str) -> Template:
    where = f"tool.yard.templates.{key}"
    if not isinstance(table, dict):
        raise _fail(text, f"templates.{key}", f"[{where}] must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        known = ", ".join(sorted(_KEYS))
        raise _fail(text, unknown[0], f"[{where}] has unknown key {unknown[0]!r} (known: {known})")

    def string(field: str, default: str | None = None) -> str:
        value = table.get(field, default)
        if value is None:
            raise _fail(text, f"templates.{key}", f'[{where}] needs {field} = "..."')
        if not isinstance(value, str) or not value:
            raise _fail(text, field, f"{where}.{field} must be a non-empty string")
        return value

    variables = table.get("variables", {})
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise _fail(text, "variables", f"{where}.variables must be a table of strings")
    after = table.get("after", [])
    if not isinstance(after, list) or not all(
        isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in after
    ):
        raise _fail(
            text, "after", f'{where}.after must be a list of commands, e.g. [["uv", "lock"]]'
        )
    pattern = string("name-pattern", DEFAULT_NAME_PATTERN)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _fail(text, "name-pattern", f"{where}.name-pattern: bad regex: {exc}") from None
    destination = string("destination")
    if Path(destination).is_absolute() or ".." in Path(destination).parts:
        raise _fail(text, "destination", f"{where}.destination must be a path inside the workspace")
    default_help = (
        DEFAULT_NAME_HELP if "name-pattern" not in table else f"a name matching {pattern}"
    )
    return Template(
        name=key,
        description=string("description") if "description" in table else "",
        source=root / string("source"),
        destination=destination,
        distribution=string("distribution", "{name}"),
        name_pattern=pattern,
        name_help=string("name-help", default_help),
        variables=dict(variables),
        after=tuple(tuple(c) for c in after),
    )


def variables_for(template: Template, name: str) -> dict[str, str]:
    """The variables a template is rendered with for NAME; YardError for an invalid NAME.

    ``name`` as given; ``snake`` (``-`` as ``_``), ``kebab`` (``_`` as ``-``), ``Name``
    (CapWords); ``dist`` (the template's ``distribution`` rendered) and ``import_name``
    (``dist`` as a Python identifier); then the template's own ``variables``.
    """
    if not re.fullmatch(template.name_pattern, name):
        raise YardError(
            f"invalid name {name!r} for template {template.name!r}: use {template.name_help}"
        )
    if len(name) > _MAX_NAME:
        raise YardError(f"invalid name {name[:20]!r}...: at most {_MAX_NAME} characters")
    words = [w for w in re.split(r"[-_.]+", name) if w]
    found = {
        "name": name,
        "snake": "_".join(words),
        "kebab": "-".join(words),
        "Name": "".join(w[:1].upper() + w[1:] for w in words),
    }
    dist = _render_strict(template.distribution, found, f"{template.name}.distribution")
    if not _DIST_NAME.fullmatch(dist):
        raise YardError(
            f"invalid name {name!r} for template {template.name!r}: it makes the "
            f"distribution name {dist!r}, which is not a valid project name"
        )
    import_name = normalize(dist).replace("-", "_")
    if not import_name.isidentifier() or keyword.iskeyword(import_name):
        raise YardError(
            f"invalid name {name!r} for template {template.name!r}: the import name "
            f"{import_name!r} is not a Python identifier"
        )
    found["dist"] = dist
    found["import_name"] = import_name
    for key, value in template.variables.items():
        found[key] = _render_strict(value, found, f"{template.name}.variables.{key}")
    return found


def render_text(text: str, variables: Mapping[str, str]) -> str:
    """``{var}`` replaced for known variables, ``{{var}}`` made ``{var}``, the rest kept."""

    def replace(match: re.Match[str]) -> str:
        literal, name = match.group(1), match.group(2)
        if literal is not None:
            return "{" + literal + "}" if literal in variables else match.group(0)
        return variables.get(name, match.group(0))

    return _PLACEHOLDER.sub(replace, text)


def _render_strict(text: str, variables: Mapping[str, str], where: str) -> str:
    """Render a path or a setting, where an unknown ``{var}`` is a mistake in the template."""
    for match in _PLACEHOLDER.finditer(text):
        if match.group(2) is not None and match.group(2) not in variables:
            known = ", ".join(sorted(variables))
            raise YardError(f"{where}: unknown variable {{{match.group(2)}}} (known: {known})")
    return render_text(text, variables)


def new(root: Path, template_name: str, name: str) -> Created:
    """Render template ``template_name`` for ``name`` into the workspace at ``root``.

    Raises YardError, having written nothing, for an unknown template, an invalid name, a
    destination or member name that exists, or a failing ``after`` command.
    """
    root = Path(os.path.abspath(root))
    declared = templates(root)
    template = declared.get(template_name)
    if template is None:
        known = ", ".join(sorted(declared)) or "none; declare one in [tool.yard.templates]"
        raise YardError(f"no template named {template_name!r} (templates: {known})")
    if not template.source.is_dir():
        raise YardError(
            f"template {template.name!r}: source folder "
            f"{_toml.display(template.source, root)} does not exist"
        )
    variables = variables_for(template, name)
    relative = _render_strict(template.destination, variables, f"{template.name}.destination")
    destination = root / relative
    if os.path.lexists(destination):
        raise YardError(f"{relative} already exists: choose another name or remove it first")
    _refuse_existing_member(root, variables["dist"])

    made_parent = _first_missing(destination.parent)
    # Staged under the root's .yard folder, outside every member glob, so that no other
    # process reading the workspace meanwhile sees a half-written member.
    staging_parent = root / ".yard" / "new"
    made_staging = _first_missing(staging_parent)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging_parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=staging_parent))
    except OSError as exc:
        _remove_parents(made_parent)
        _remove_empty(staging_parent, made_staging)
        raise YardError(f"cannot create {relative}: {exc.strerror or exc}") from None
    try:
        files = _render_tree(template, staging, variables)
        _move(staging, destination)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_parents(made_parent)
        if isinstance(exc, OSError):  # e.g. the destination appeared meanwhile
            raise YardError(f"cannot create {relative}: {exc.strerror or exc}") from None
        raise
    finally:
        _remove_empty(staging_parent, made_staging)
    ran: list[str] = []
    try:
        _verify_member(root, relative, variables["dist"])
        for command in template.after:
            ran.append(_run_after(root, command, variables))
    except BaseException:
        shutil.rmtree(destination, ignore_errors=True)
        _remove_parents(made_parent)
        raise
    return Created(path=relative, files=files, variables=variables, ran=tuple(ran))


def _refuse_existing_member(root: Path, dist: str) -> None:
    from ._workspace import load_workspace

    existing = load_workspace(root).members.get(normalize(dist))
    if existing is not None:
        raise YardError(
            f"a workspace member named {existing.name!r} already exists in {existing.path}: "
            "choose another name"
        )


def _render_tree(
    template: Template, staging: Path, variables: Mapping[str, str]
) -> tuple[str, ...]:
    files: list[str] = []
    source = template.source
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP)
        here = Path(dirpath)
        for filename in sorted(filenames):
            if filename in _SKIP or filename.endswith((".pyc", ".pyo")):
                continue
            origin = here / filename
            relative = origin.relative_to(source).as_posix()
            rendered = _render_strict(relative, variables, f"{template.name}: {relative}")
            is_template = rendered.endswith(TEMPLATE_SUFFIX)
            if is_template:
                rendered = rendered[: -len(TEMPLATE_SUFFIX)]
            target = staging / rendered
            target.parent.mkdir(parents=True, exist_ok=True)
            if is_template:
                try:
                    text = origin.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    raise YardError(
                        f"template {template.name!r}: {relative} is not UTF-8 text; "
                        f"drop its {TEMPLATE_SUFFIX} suffix to copy it as it is"
                    ) from None
                target.write_text(render_text(text, variables), encoding="utf-8")
                shutil.copymode(origin, target)
            else:
                shutil.copy2(origin, target)
            files.append(rendered)
    if not files:
        raise YardError(f"template {template.name!r}: its source folder holds no files")
    return tuple(sorted(files))


def _verify_member(root: Path, relative: str, dist: str) -> None:
    """The rendered folder must load as a member of the workspace, under its dist name."""
    from ._workspace import load_workspace

    if not (root / relative / "pyproject.toml").is_file():
        return  # not a package (a template for docs, say): nothing to verify
    try:
        members = load_workspace(root).members
    except YardError as exc:
        raise YardError(f"the rendered template does not load: {exc}") from None
    found = [m for m in members.values() if m.path == relative]
    if not found:
        raise YardError(
            f"{relative} is not matched by [tool.uv.workspace] members in pyproject.toml; "
            "change the template's destination or the members globs"
        )
    if found[0].name != normalize(dist):
        raise YardError(
            f"{relative}/pyproject.toml names the project {found[0].name!r}, but the template "
            f"declares distribution {dist!r}; make the template use {{dist}}"
        )


def _run_after(root: Path, command: tuple[str, ...], variables: Mapping[str, str]) -> str:
    argv = [render_text(arg, variables) for arg in command]
    shown = shlex.join(argv)
    try:
        result = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise YardError(f"`{shown}` could not run ({exc.strerror}); nothing was created") from None
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise YardError(f"`{shown}` failed: {reason}; nothing was created")
    return shown


def _move(staging: Path, destination: Path) -> None:
    """One rename; a copy when the destination is on another file system."""
    try:
        os.rename(staging, destination)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copytree(staging, destination, symlinks=True)
        shutil.rmtree(staging, ignore_errors=True)


def _remove_empty(folder: Path, outermost: Path | None) -> None:
    """Remove the folders from ``folder`` up to ``outermost`` (made for staging) if empty."""
    if outermost is None:
        return
    for candidate in (folder, *folder.parents):
        try:
            candidate.rmdir()
        except OSError:
            return  # not empty: another yard new is using it
        if candidate == outermost:
            return


def _first_missing(folder: Path) -> Path | None:
    """The outermost missing folder on the way to ``folder``, to remove on failure."""
    missing = None
    while not folder.exists():
        missing = folder
        folder = folder.parent
    return missing


def _remove_parents(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def new_command(root: Path, template_name: str, name: str) -> int:
    """``yard new``: render, then say what was made and what to do next."""
    created = new(root, template_name, name)
    print(f"created {created.path} ({created.variables['dist']}, {len(created.files)} files):")
    for file in created.files:
        print(f"  {created.path}/{file}")
    for command in created.ran:
        print(f"ran {command}")
    return 0
