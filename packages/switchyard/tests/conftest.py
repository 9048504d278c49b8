"""Fixtures: real plugin distributions written to a temporary folder on sys.path.

``plugins.add(...)`` writes a package module and a hand-made ``<name>-<version>.dist-info``
(METADATA + entry_points.txt), exactly what an installer leaves behind, so importlib.metadata
and the manifest's freshness check see a real installed distribution.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import switchyard

MODELS = """
from __future__ import annotations

import os
from pydantic import BaseModel, ConfigDict, Field
from switchyard import Context, action

with open(os.environ["SYTEST_IMPORT_LOG"], "a") as _log:
    _log.write(__name__ + "\\n")


class AddIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: int
    b: int = Field(ge=0)


class AddOut(BaseModel):
    total: int
"""


def plugin_source(prefix: str, *, extra: str = "") -> str:
    """A plugin module defining ``<prefix>.add`` and ``<prefix>.echo_context``."""
    return (
        MODELS
        + textwrap.dedent(
            f'''

        @action("{prefix}.add", description="Add two integers.", queue="fast", retries=2)
        def add(data: AddIn) -> AddOut:
            return AddOut(total=data.a + data.b)


        @action("{prefix}.echo_context")
        async def echo_context(data: AddIn, ctx: Context) -> AddOut:
            return AddOut(total=ctx.attempt)
        '''
        )
        + textwrap.dedent(extra)
    )


class Plugins:
    """Writes plugin distributions into ``site`` (which is on sys.path)."""

    def __init__(self, site: Path, log: Path) -> None:
        self.site = site
        self.log = log
        self.modules: set[str] = set()

    def add(
        self,
        dist: str,
        version: str = "0.1.0",
        *,
        actions: Mapping[str, str] | None = None,
        hooks: Mapping[str, str] | None = None,
        commands: Mapping[str, str] | None = None,
        modules: Mapping[str, str] | None = None,
    ) -> Path:
        for module, source in (modules or {}).items():
            path = self.site / (module.replace(".", "/") + ".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source)
            self.modules.add(module.split(".")[0])
        info = self.site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        sections = []
        groups = (
            ("switchyard.actions", actions),
            ("switchyard.hooks", hooks),
            ("switchyard.commands", commands),
        )
        for group, entries in groups:
            if entries:
                lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
                sections.append(f"[{group}]\n{lines}\n")
        (info / "entry_points.txt").write_text("\n".join(sections))
        importlib.invalidate_caches()
        return info

    @staticmethod
    def source(prefix: str, *, extra: str = "") -> str:
        return plugin_source(prefix, extra=extra)

    def remove(self, info: Path) -> None:
        for child in info.iterdir():
            child.unlink()
        info.rmdir()
        importlib.invalidate_caches()

    def imported(self) -> list[str]:
        """Plugin modules imported so far (each import appends its name to the log)."""
        return self.log.read_text().split() if self.log.exists() else []


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    site = tmp_path / "site"
    site.mkdir()
    log = tmp_path / "imports.log"
    monkeypatch.setenv("SYTEST_IMPORT_LOG", str(log))
    monkeypatch.delenv("SWITCHYARD_MANIFEST", raising=False)
    monkeypatch.syspath_prepend(str(site))
    found = Plugins(site, log)
    yield found
    for name in list(sys.modules):
        if name.split(".")[0] in found.modules:
            del sys.modules[name]


@pytest.fixture(autouse=True)
def _fresh_default_registry() -> Iterator[None]:
    switchyard.set_default_registry(None)
    yield
    switchyard.set_default_registry(None)


@pytest.fixture(scope="session")
def isolated_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway venv holding only switchyard's dependencies (switchyard comes from src).

    The shared development venv holds every workspace module; CLI tests that count actions or
    expect a clean ``doctor`` need an environment holding only the test plugins.
    """
    import shutil
    import subprocess

    import pluggy
    import pydantic

    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("the CLI tests need uv on PATH to build a throwaway venv")
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [uv, "pip", "install", "-q", "--python", str(python)]
    install += [f"pydantic=={pydantic.VERSION}", f"pluggy=={pluggy.__version__}"]
    if subprocess.run([*install, "--offline"], capture_output=True).returncode != 0:
        subprocess.run(install, check=True)
    return python


class Cli:
    """Runs ``python -m switchyard`` in the isolated venv with the test plugins installed."""

    def __init__(self, python: Path, plugins: Plugins, cwd: Path) -> None:
        self.python = python
        self.cwd = cwd
        src = Path(switchyard.__file__).parent.parent
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
        self.env["PYTHONPATH"] = os.pathsep.join([str(plugins.site), str(src)])
        self.env["SYTEST_IMPORT_LOG"] = str(plugins.log)

    def __call__(
        self, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-m", "switchyard", *args],
            capture_output=True,
            text=True,
            input=stdin,
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            timeout=60,
        )


@pytest.fixture
def cli(isolated_python: Path, plugins: Plugins, tmp_path: Path) -> Cli:
    work = tmp_path / "work"
    work.mkdir()
    return Cli(isolated_python, plugins, work)
